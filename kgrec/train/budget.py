"""Memory a training run will need, checked before anything is allocated or written.

The dominant terms are the ``[N, dim]`` tables: the ID embeddings with their gradient
and Adam's two moments (4 tables), and per layer the forward output kept for the
backward pass plus its gradient (2 tables per layer, and the layer-0 input)::

    bytes ≈ 4 · N · dim · (4 + 2·(layers + 1))

with N the graph's node count. It is a lower bound (score matrices, the KG batch
and the path scores come on top), so a run it refuses could never fit.
"""
from __future__ import annotations

import os

import torch

from kgrec.errors import KgrecError
from kgrec.train.config import TrainConfig

_GIB = 2**30


def estimate_bytes(config: TrainConfig, num_nodes: int) -> int:
    """The lower-bound estimate above, in bytes."""
    m = config.model
    return 4 * num_nodes * m.dim * (4 + 2 * (m.layers + 1))


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (``MemAvailable`` for the CPU), or ``None`` where it cannot be told."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(config: TrainConfig, sizes: dict[str, int], device: torch.device,
                 available: int | None = None) -> None:
    """Refuse a run whose embedding tables alone exceed the free memory of ``device``.

    Args:
        sizes: node type -> node count of the graph the run trains on.
        available: free bytes (default: :func:`available_bytes`).

    Raises:
        KgrecError: naming ``model.dim``, the estimate and what is available.
    """
    n = sum(sizes.values())
    need = estimate_bytes(config, n)
    free = available if available is not None else available_bytes(device)
    if free is not None and need > free:
        raise KgrecError(f"model.dim = {config.model.dim}: the run needs at least {need / _GIB:,.1f} GiB "
                         f"({n:,} nodes x {config.model.dim} dims x {config.model.layers} layers, with gradients "
                         f"and optimiser state) but {free / _GIB:,.1f} GiB is free on {device.type}; lower "
                         f"model.dim or model.layers")
