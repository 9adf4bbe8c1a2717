"""Unlearning methods behind one registry: ours (contrastive semantic editing) and the
seven baselines. Every method takes a `Request` and returns a new model and a summary;
none mutates the original. One file per method; `request` holds what they share.

May import: data, models, training, metrics, mvi.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Callable

import torch

from mmu_core.unlearn.request import Request

METHODS: dict[str, Callable] = {}


def register(name: str):
    def wrap(fn):
        METHODS[name] = fn
        return fn
    return wrap


def run(name: str, request: Request, neighbour_budget: float | None = None, **settings):
    """(unlearned model, summary with wall time) for a registered method. With a
    `neighbour_budget`, an edit that moves the nearest other people's matches further is
    taken back to it (unlearn/budget.py; Retrain, no edit of the original, is left alone)."""
    _load_all()
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    start = time.perf_counter()
    with counting_gradients() as grads:
        model, info = METHODS[name](request, **settings)
    info = {"method": name, "seconds": round(time.perf_counter() - start, 2),
            "grad_evals": grads.count, **info,
            "resolved_settings": resolved_settings(name, settings, info)}
    model.eval()
    if neighbour_budget is not None and name != "retrain" and request.retain:
        from mmu_core.unlearn.budget import within_budget

        start = time.perf_counter()
        model, info["budget"] = within_budget(request.original, model, request.forget,
                                              request.retain, neighbour_budget)
        info["budget"]["seconds"] = round(time.perf_counter() - start, 2)
    info["forget_scores"] = forget_movement(request.original, model, request.forget)
    if request.retain:
        from mmu_core.metrics.collateral import collateral

        info["collateral"] = collateral(request.original, model, request.forget,
                                        request.retain)
    return model, info


def resolved_settings(name: str, settings: dict, info: dict) -> dict:
    """Every setting a method ran with, defaults included: the actual values, not
    "defaults". A method taking **settings reports its own (ours: info["settings"])."""
    import inspect

    params = list(inspect.signature(METHODS[name]).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(info.get("settings", settings))
    out = {p.name: settings.get(p.name, p.default) for p in params}
    # None = "the method decides" (Retrain's epochs: the recipe's): report what it chose
    return {k: info.get(k) if v is None else v for k, v in out.items()}


class _Count:
    count = 0


_active = threading.local()


def _counted(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        counter = getattr(_active, "counter", None)
        if counter is not None:
            counter.count += 1
        return fn(*args, **kwargs)
    wrapper.mmu_counted = True
    return wrapper


class counting_gradients:
    """Counts the backward passes (`Tensor.backward`, `torch.autograd.grad`) this thread
    makes inside the block: a method's gradient evaluations, whatever loop it runs. The
    wrappers are installed once and count only where a block is active."""

    def __enter__(self) -> _Count:
        for attr in ("backward", "grad"):
            fn = getattr(torch.autograd, attr)
            if not getattr(fn, "mmu_counted", False):
                setattr(torch.autograd, attr, _counted(fn))
        self.previous = getattr(_active, "counter", None)
        _active.counter = _Count()
        return _active.counter

    def __exit__(self, *exc) -> None:
        _active.counter = self.previous


# a method whose forgetting pairs' mean ITM match and ITC cosine both move less than this
# changed nothing a person could see: the summary says so instead of reporting success
UNTOUCHED = 1e-3


def forget_movement(before, after, pairs, max_pairs: int = 256) -> dict:
    """How far a method moved the forgetting pairs: mean ITM match probability and ITC
    cosine before and after (on up to `max_pairs` of them, evenly spaced)."""
    from mmu_core.data.loaders import open_image

    pairs = pairs[::max(1, -(-len(pairs) // max_pairs))]
    images, texts = [open_image(p) for p in pairs], [p.text for p in pairs]
    b, a = before.score_pairs(images, texts), after.score_pairs(images, texts)
    out = {f"{k}_{when}": round(float(s[k].mean()), 4)
           for k in ("itm", "itc") for when, s in (("before", b), ("after", a))}
    out["pairs"] = len(pairs)
    out["untouched"] = bool(abs(out["itm_after"] - out["itm_before"]) < UNTOUCHED
                            and abs(out["itc_after"] - out["itc_before"]) < UNTOUCHED)
    return out


def names() -> list[str]:
    _load_all()
    return list(METHODS)


def _load_all() -> None:
    from mmu_core.unlearn import (adv, badteacher, calibrated, finetune,  # noqa: F401
                                  gradient_ascent, multidelete, ours, ours_local, retrain,
                                  slug)
