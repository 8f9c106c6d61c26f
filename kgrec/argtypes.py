"""Argument types of the command line: every number a user types is checked here, before any work starts.

Each function takes the raw string and returns the value, or raises
:class:`argparse.ArgumentTypeError`, which argparse reports as
``kgrec CMD: error: argument --NAME: <message>`` with exit status 2.
"""
from __future__ import annotations

import argparse

from kgrec.tomlconfig import MAX_SEED


def _int(text: str, what: str) -> int:
    try:
        v = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if abs(v) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected {what} of at most {MAX_SEED}, got {text!r}")
    return v


def positive_int(text: str) -> int:
    """An integer >= 1 (``--k``, ``--trials``, ``--jobs``)."""
    v = _int(text, "a positive integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def non_negative_int(text: str) -> int:
    """An integer >= 0 (``--epochs``, ``--sampled``)."""
    v = _int(text, "an integer >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def seed(text: str) -> int:
    """A seed: an integer in [0, 2**32 - 1]."""
    v = _int(text, f"a seed (an integer from 0 to {MAX_SEED})")
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed (an integer from 0 to {MAX_SEED}), got {text!r}")
    return v


def _list(text: str, item, what: str) -> tuple[int, ...]:
    parts = [p for p in text.split(",")]
    if not text.strip() or any(not p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
    try:
        return tuple(dict.fromkeys(item(p) for p in parts))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}") from None


def positive_ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, duplicates dropped (``--ks 10,20``)."""
    return _list(text, positive_int, "positive integers")


def seeds(text: str) -> tuple[int, ...]:
    """A comma-separated list of seeds, duplicates dropped (``--seeds 0,1,2``)."""
    return _list(text, seed, f"seeds (integers from 0 to {MAX_SEED})")
