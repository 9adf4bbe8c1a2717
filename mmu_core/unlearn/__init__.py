"""Unlearning methods behind one registry: ours (contrastive semantic editing) and the
seven baselines. Every method takes a `Request` and returns a new model and a summary;
none mutates the original. One file per method; `request` holds what they share.

May import: data, models, training, metrics, mvi.
"""

from __future__ import annotations

import time
from typing import Callable

from mmu_core.unlearn.request import Request

METHODS: dict[str, Callable] = {}


def register(name: str):
    def wrap(fn):
        METHODS[name] = fn
        return fn
    return wrap


def run(name: str, request: Request, **settings):
    """(unlearned model, summary with wall time) for a registered method."""
    _load_all()
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    start = time.perf_counter()
    model, info = METHODS[name](request, **settings)
    info = {"method": name, "seconds": round(time.perf_counter() - start, 2), **info}
    return model.eval(), info


def names() -> list[str]:
    _load_all()
    return list(METHODS)


def _load_all() -> None:
    from mmu_core.unlearn import (adv, badteacher, finetune, gradient_ascent,  # noqa: F401
                                  multidelete, ours, retrain, slug)
