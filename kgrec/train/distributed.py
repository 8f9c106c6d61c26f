"""Training under ``torchrun``: which rank this is, its share of a batch, and the collectives.

The scheme (see ``docs/distributed.md``): every rank holds the whole graph and the whole model,
runs the same propagation, and draws the same random numbers as one process would (the same
seed, the same generator calls, for the *global* batch); each rank then scores only its
:meth:`World.share` of the batch's interactions and KG triples. A loss that is a mean over the
batch is computed on the share and weighted by ``share / batch``, so summing the ranks'
gradients (:meth:`World.sum_gradients`, one ``all_reduce``) gives exactly the one-process
gradient of the global batch; the global batch and learning rate mean what they mean on one
process. Losses that are not a mean over pairs (MMD/adversarial alignment, the contrastive
loss over the batch's distinct nodes) are computed whole, by rank 0 alone.

Ranking is sharded over users: each rank ranks a contiguous block and the top-k lists are
gathered in order (:meth:`World.rank_each`), so every rank computes the same metrics as one
process, and early stopping and the path-weight choice agree everywhere.

Why not ``DistributedDataParallel``: a training step calls the encoder, both heads and the KG
relation table separately, not one ``forward``; and DDP averages gradients (divides by the
world size), which equals the global-batch gradient only for equal shares. Summing the gradients
with ``all_reduce`` (the tables in place, the small ones in one bucket) is what DDP does underneath,
without either catch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor

from kgrec.errors import KgrecError
from kgrec.eval.ranking import RankingTask, rank_each

#: gradients of at least this many elements are all-reduced in place, one collective each; smaller
#: ones share one buffer (a collective's fixed cost outweighs their copy)
BUCKET_NUMEL = 1 << 16

#: how long a collective waits for a rank that died or hangs before the job fails
TIMEOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size``, on ``device``; ``backend`` is
    ``""`` for one process (every method is then the one-process identity)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def is_main(self) -> bool:
        """Whether this rank writes the run directory, logs and checkpoints."""
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's contiguous block of ``n`` items (blocks differ in length by at most one)."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    def sum_gradients(self, params: list[torch.nn.Parameter], values: Tensor) -> Tensor:
        """Sum ``params``' gradients over the ranks (in place; a missing one counts as zero), and the
        ``values`` ``[V]`` riding along (the step's weighted loss parts); returns the summed ``values``.

        The large gradients (the embedding tables) are all-reduced where they lie, one collective each,
        issued together: no flattened copy of the tables is made and copied back (two passes over every
        table a step, on a CPU about as long as the collective itself). The small
        ones ride in one buffer with the values and the flags of which parameters have a gradient
        anywhere: one no rank touched stays ``None``, as on one process (Adam skips it; a zero gradient
        would still decay it and count a step)."""
        if self.size == 1:
            return values
        device = params[0].device if params else values.device
        touched = torch.tensor([float(p.grad is not None) for p in params], device=device)
        small = [i for i, p in enumerate(params) if p.numel() < BUCKET_NUMEL]
        large = [i for i, p in enumerate(params) if p.numel() >= BUCKET_NUMEL]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([grads[i].reshape(-1) for i in small] + [touched, values.detach().float().to(device).reshape(-1)])
        for i in large:  # contiguous, so the collective writes into the gradient itself
            grads[i] = grads[i].contiguous()
        works = [dist.all_reduce(grads[i], async_op=True) for i in large] + [dist.all_reduce(flat, async_op=True)]
        for w in works:
            w.wait()
        at = sum(grads[i].numel() for i in small)
        touched = (flat[at:at + len(params)] > 0).tolist()
        at = 0
        for i in small:
            grads[i] = flat[at:at + grads[i].numel()].view_as(params[i]).clone()
            at += grads[i].numel()
        for p, g, t in zip(params, grads, touched):
            p.grad = g if t else None
        return flat[at + len(params):].cpu()

    def rank_each(self, score_fn: Callable[[Tensor], list[Tensor]], task: RankingTask, k: int,
                  memory_mb: int = 256, device: torch.device | str = "cpu", matrices: int = 3,
                  user_bytes: int = 0) -> list[Tensor]:
        """:func:`kgrec.eval.ranking.rank_each`, each rank ranking its block of ``task.users``; every
        rank gets the whole ``[U, k]`` rankings, in ``task.users``' order."""
        if self.size == 1:
            return rank_each(score_fn, task, k, memory_mb, device, matrices, user_bytes)
        mask = torch.zeros(len(task.users), dtype=torch.bool)
        mask[self.share(len(task.users))] = True
        mine = rank_each(score_fn, task.subset(mask), k, memory_mb, device, matrices, user_bytes)
        parts: list[list[Tensor] | None] = [None] * self.size
        dist.all_gather_object(parts, mine)
        return [torch.cat([p[i] for p in parts]) for i in range(len(mine))]  # type: ignore[index]

    def device(self, name: str) -> str:
        """The device a rank trains on: ``cuda:LOCAL_RANK`` under NCCL, else ``name``."""
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else name


SINGLE = World()


def init_from_env(device: str = "auto", timeout: timedelta = TIMEOUT) -> World:
    """The :class:`World` that ``torchrun`` describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``
    (:data:`SINGLE` without them), with the process group started: NCCL when ``device`` wants
    CUDA and it is here (one GPU per rank: ``cuda:LOCAL_RANK``), gloo otherwise.

    Raises:
        KgrecError: the variables are malformed, or a rank's GPU is missing.
    """
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return SINGLE
    try:
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise KgrecError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if size == 1:
        return SINGLE
    cuda = device != "cpu" and device.startswith(("cuda", "auto")) and torch.cuda.is_available()
    if cuda:
        if local >= torch.cuda.device_count():
            raise KgrecError(f"rank {rank}: LOCAL_RANK {local} but this machine has {torch.cuda.device_count()} "
                             f"GPU(s); start at most that many processes per node (--nproc_per_node)")
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timeout)
    return World(rank, size, local, backend)


def is_lost_rank(error: BaseException) -> bool:
    """Whether ``error`` is a collective failing because a peer rank went away or timed out."""
    dist_error = getattr(dist, "DistError", ())
    text = str(error).lower()
    return isinstance(error, dist_error) or any(w in text for w in ("gloo", "nccl", "connection", "timed out"))


def lost_rank_message(world: World, error: BaseException) -> str:
    """What a rank says when a collective fails: another rank died or hung past :data:`TIMEOUT`."""
    first = (str(error).splitlines() or [type(error).__name__])[0][:160]
    return (f"rank {world.rank} of {world.size}: lost contact with another rank ({first}); it died or hung for "
            f"over {int(TIMEOUT.total_seconds())} s. The last finished epoch is checkpointed: rerun the same "
            f"torchrun command with --resume")


def shutdown(world: World) -> None:
    """End the process group (a no-op for one process)."""
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
