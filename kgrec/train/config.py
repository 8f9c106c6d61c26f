"""Training configuration: frozen dataclasses read from a TOML file.

    graph = "artifacts/amazon_cloth_to_sport"   # a graph artifact (relative to this file)
    mode = "transfer"                           # or "target_only"
    seed = 0
    device = "cpu"                              # "cuda", "cuda:1", or "auto"
    [model]        dim, layers, layer, composition, combine, head, item_features, ...
    [loss]         loss, negatives, sampler, source_weight, target_weight, kg_weight, align, ...
    [pretrain]     epochs, lr, batch_size, patience, ...
    [finetune]     mode = "full" | "upper" | "frozen", upper_layers, epochs, lr, ...
    [target_only]  epochs, lr, batch_size, patience, ...
    [eval]         k, ks, memory_mb

Every key is optional except ``graph``; see ``kgrec train --help`` and docs/guide/training.md.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from kgrec.errors import SpecError
from kgrec.models.encoder import ModelConfig
from kgrec.tomlconfig import MAX_SEED, TomlTable, read_dataclass, read_extended

MODES = ("transfer", "target_only")
LR_SCALINGS = ("sqrt", "linear", "none")
DEVICE = re.compile(r"cpu|auto|cuda(:\d+)?|mps")
FINETUNE_MODES = ("full", "upper", "frozen")


@dataclass(frozen=True)
class LossConfig:
    """Pre-training loss ``L = source_weight·L_S + target_weight·L_T + kg_weight·L_KG + align_weight·L_align``
    (fine-tuning uses ``L_T`` alone), plus ``l2`` on the batch's input embeddings and, when
    ``cl_weight`` > 0, ``cl_weight·L_CL``: the XSimGCL contrastive loss (InfoNCE at
    ``cl_temperature`` between the final embeddings and layer ``cl_layer``'s, both perturbed by
    noise of length ``cl_noise``, over the batch's distinct users and items)."""

    loss: str = field(default="softmax", metadata={"choices": ("bpr", "bce", "softmax")})
    negatives: int = field(default=32, metadata={"lo": 1})
    sampler: str = field(default="uniform", metadata={"choices": ("uniform", "popularity")})
    source_weight: float = field(default=1.0, metadata={"lo": 0.0})
    target_weight: float = field(default=1.0, metadata={"lo": 0.0})
    kg_weight: float = field(default=0.1, metadata={"lo": 0.0})
    kg_loss: str = field(default="transe", metadata={"choices": ("transe", "distmult")})
    kg_batch_size: int = field(default=2048, metadata={"lo": 1})
    align: str = field(default="none", metadata={"choices": ("none", "mmd", "adversarial")})
    align_weight: float = field(default=0.1, metadata={"lo": 0.0})
    l2: float = field(default=1e-4, metadata={"lo": 0.0})
    cl_weight: float = field(default=0.0, metadata={"lo": 0.0})
    cl_noise: float = field(default=0.1, metadata={"lo": 0.0})
    cl_temperature: float = field(default=0.2, metadata={"gt": 0.0})
    cl_layer: int = field(default=1, metadata={"lo": 1})


@dataclass(frozen=True)
class StageConfig:
    """One training stage: Adam for up to ``epochs`` epochs (an epoch is one pass over
    the target training interactions), early stopping after ``patience`` epochs
    without a better validation score. ``cold_users``: the share of the target's training
    users whose target edges are hidden from message passing each epoch (their target pairs
    still train), so that the model learns to reach target items through the source
    alone, as it must for cold-start users (simulated cold start; ``0`` hides nothing).

    ``max_steps``: the most optimiser steps per epoch (each one full-graph propagation, so
    an epoch costs at most ``max_steps`` propagations: linear in the edges). Where the target
    has more than ``max_steps·batch_size`` training interactions the batch grows to cover them
    in ``max_steps`` steps and the learning rate by ``lr_scaling`` of the growth
    (:meth:`for_interactions`); ``0`` never caps (``n / batch_size`` steps, quadratic).

    ``cold_items``: as ``cold_users``, for items: the share of the target's training items whose
    interaction edges are hidden each epoch (their pairs still train; with
    ``model.cold_item_id = "zero"`` their ID embedding goes too), so that the model learns to
    score an item from its KG neighbours and features, as it must for new items."""

    epochs: int = field(default=40, metadata={"lo": 0})
    lr: float = field(default=0.005, metadata={"gt": 0.0})
    batch_size: int = field(default=2048, metadata={"lo": 1})
    patience: int = field(default=3, metadata={"lo": 1})
    weight_decay: float = field(default=0.0, metadata={"lo": 0.0})
    cold_users: float = field(default=0.0, metadata={"lo": 0.0, "hi": 1.0})
    cold_items: float = field(default=0.0, metadata={"lo": 0.0, "hi": 1.0})
    max_steps: int = field(default=64, metadata={"lo": 0})
    lr_scaling: str = field(default="sqrt", metadata={"choices": LR_SCALINGS})

    def for_interactions(self, n: int) -> "StageConfig":
        """This stage as it trains on ``n`` interactions per epoch: under ``max_steps`` it is
        unchanged; above, ``batch_size = ceil(n / max_steps)`` and ``lr`` times ``g ** 0.5``
        (``sqrt``), ``g`` (``linear``) or 1 (``none``), ``g`` the batch's growth."""
        if self.max_steps == 0 or n <= self.max_steps * self.batch_size:
            return self
        batch = math.ceil(n / self.max_steps)
        growth = batch / self.batch_size
        factor = {"sqrt": math.sqrt(growth), "linear": growth, "none": 1.0}[self.lr_scaling]
        return dataclasses.replace(self, batch_size=batch, lr=self.lr * factor)


@dataclass(frozen=True)
class FinetuneConfig(StageConfig):
    """Fine-tuning on the target: ``mode`` ``full`` (everything), ``upper`` (the last
    ``upper_layers`` layers and the head) or ``frozen`` (the head only). ``graph``: message
    passing over the ``merged`` graph (the source keeps informing the target) or over the
    ``target`` domain's own graph (the target-only view, warm-started from pre-training: the
    source shaped the embeddings but no longer sends messages; the final model scores on it)."""

    mode: str = field(default="full", metadata={"choices": FINETUNE_MODES})
    graph: str = field(default="merged", metadata={"choices": ("merged", "target")})
    upper_layers: int = field(default=1, metadata={"lo": 1})
    lr: float = field(default=0.001, metadata={"gt": 0.0})
    epochs: int = field(default=20, metadata={"lo": 0})
    patience: int = field(default=3, metadata={"lo": 1})


@dataclass(frozen=True)
class EvalConfig:
    """Validation: early stopping on full-ranking NDCG@``k``; reports at ``ks``. ``valid_users``:
    the validation users early stopping, the filter and the blend weight are chosen on, at most (a
    seeded sample of that many where there are more; 0: all); the test always ranks every test user."""

    k: int = field(default=10, metadata={"lo": 1})
    ks: tuple[int, ...] = (10, 20)
    memory_mb: int = field(default=256, metadata={"lo": 1})
    valid_users: int = field(default=10_000, metadata={"lo": 0})


@dataclass(frozen=True)
class TrainConfig:
    """A training run: which graph, which mode, and every setting of every stage."""

    graph: str
    mode: str = "transfer"
    seed: int = 0
    device: str = "cpu"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    pretrain: StageConfig = field(default_factory=StageConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    target_only: StageConfig = field(default_factory=StageConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _device(t: TomlTable) -> str:
    device = t.get("device", str, "cpu")
    if not DEVICE.fullmatch(device):
        raise t.err("device", f"expected cpu, cuda, cuda:N, mps or auto, got {device!r}")
    return device


def _eval(t: TomlTable | None) -> EvalConfig:
    if t is None:
        return EvalConfig()
    k = t.get("k", int, 10, lo=1)
    ks = t.get("ks", list, [10, 20])
    if not ks or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in ks):
        raise t.err("ks", f"expected a list of positive integers, got {ks!r}")
    mem = t.get("memory_mb", int, 256, lo=1)
    valid_users = t.get("valid_users", int, EvalConfig.valid_users, lo=0)
    t.done()
    return EvalConfig(k, tuple(sorted(set(ks) | {k})), mem, valid_users)


def parse_config(data: dict, path: str = "<config>", root: str | Path = ".",
                 origins: Mapping[str, str] | None = None) -> TrainConfig:
    """Validate a parsed TOML table into a :class:`TrainConfig`; ``graph`` is resolved against ``root``
    (``origins``: see :func:`kgrec.tomlconfig.read_extended`).

    Raises:
        SpecError: naming the file and the dotted key.
    """
    t = TomlTable(path, "", data, origins)
    graph = t.get("graph", str)
    graph_path = Path(graph)
    if not graph_path.is_absolute():
        graph_path = Path(root) / graph_path
    cfg = TrainConfig(
        graph=str(graph_path),
        mode=t.get("mode", str, "transfer", choices=MODES),
        seed=t.get("seed", int, 0, lo=0, hi=MAX_SEED),
        device=_device(t),
        model=read_dataclass(ModelConfig, t.sub("model")),
        loss=read_dataclass(LossConfig, t.sub("loss")),
        pretrain=read_dataclass(StageConfig, t.sub("pretrain")),
        finetune=read_dataclass(FinetuneConfig, t.sub("finetune")),
        target_only=read_dataclass(StageConfig, t.sub("target_only")),
        eval=_eval(t.sub("eval")),
    )
    t.done()
    if cfg.finetune.mode == "frozen" and cfg.model.head == "dot" and cfg.mode == "transfer":
        raise SpecError(path, "finetune.mode", "'frozen' trains the head only, and the 'dot' head has no "
                                               "parameters: choose model.head = 'distmult', 'bilinear' or 'mlp'")
    if cfg.finetune.mode == "upper" and cfg.model.layer == "compgcn" and not cfg.model.transform \
            and cfg.mode == "transfer":
        raise SpecError(path, "finetune.mode", "'upper' trains the last layers' weights, and CompGCN layers "
                                               "have none without model.transform = true")
    if cfg.finetune.mode == "upper" and cfg.finetune.upper_layers > cfg.model.layers:
        raise SpecError(path, "finetune.upper_layers",
                        f"{cfg.finetune.upper_layers} exceeds model.layers = {cfg.model.layers}")
    if cfg.model.path_hops % 2 == 0 and cfg.model.path_hops > 0:
        raise SpecError(path, "model.path_hops", f"must be odd (a walk from a user reaches items in 1, 3, 5 ... "
                                                 f"steps) or 0 (no path scores), got {cfg.model.path_hops}")
    if cfg.loss.cl_weight > 0 and cfg.loss.cl_layer > cfg.model.layers:
        raise SpecError(path, "loss.cl_layer", f"{cfg.loss.cl_layer} exceeds model.layers = {cfg.model.layers} "
                                               f"(the contrastive view is a layer's output)")
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config TOML file, on top of the configs it ``extends`` (if any)."""
    path = Path(path)
    data, origins = read_extended(path, "config")
    return parse_config(data, str(path), path.parent, origins)


def to_toml(cfg: TrainConfig) -> str:
    """The resolved config as TOML (every key written, so a run can be repeated from it)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    d = cfg.to_dict()
    lines = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def make_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config from an optional TOML file plus dotted-key overrides, e.g.
    ``{"graph": "artifacts/x", "pretrain.epochs": 5, "model.head": "distmult"}``.

    Raises:
        SpecError: a missing ``graph`` or any bad key, naming where it came from.
    """
    data, origins = read_extended(path, "config") if path is not None else ({}, {})
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(path or "<overrides>", key, f"'{part}' is not a table")
        node[leaf] = value
    root = Path(path).parent if path is not None else Path(".")
    # an overridden key is no longer the parent file's
    origins = {k: v for k, v in origins.items() if not any(k == o or k.startswith(o + ".") for o in overrides or {})}
    return parse_config(data, str(path) if path is not None else "<command line>", root, origins)
