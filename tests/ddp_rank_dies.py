"""Run by tests/test_distributed.py under torchrun: ``kgrec.fit`` on GRAPH into OUT with the
test's small config; with DIE_AFTER > 0, rank 1 exits abruptly after that many epochs (a rank
that dies mid-training); with ``--resume``, continues the run."""
import json
import os
import sys

from kgrec.train.config import make_config
from kgrec.train.distributed import init_from_env, shutdown
from kgrec.train.trainer import train

graph, out, die_after, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), "--resume" in sys.argv
cfg = make_config(None, {"graph": graph, "model.dim": 8, "pretrain.epochs": 3, "finetune.epochs": 3,
                         "pretrain.batch_size": 4, "finetune.batch_size": 4, "model.path_hops": 0})
world = init_from_env("cpu")


def on_epoch(epochs: int, _ndcg: float) -> None:
    if world.rank == 1 and epochs == die_after:
        os._exit(3)


result = train(cfg, out, resume=resume, progress=False, log=lambda m: None, on_epoch=on_epoch, world=world)
if world.is_main:
    print(json.dumps({"valid": result.valid, "test": result.test}))
shutdown(world)
