"""The Retrain reference of a visitor's request, trained once in the background and shared
by Compare, Audit, the report and the export, in whichever order they ask.

Retrain is the slow part of every check against the gold standard (minutes on a CPU). The
first tab that needs it queues it, with an estimate said before it starts; the others wait
for the same job (with its progress) or use its model once it is there. Every visitor's
Retrain goes through one worker (`mmu_core.erasure.background`): a FIFO queue, one job at
a time, each in a child process at the lowest CPU priority, so visitors' requests in the
app process go first; a Retrain whose result is let go, replaced or whose page closed is
taken out of the line or killed.
"""

from __future__ import annotations

import csv
import json
import statistics
import threading
from pathlib import Path

from mmu_core.erasure.background import Cancelled, Worker

# the benchmark's cells (docs/benchmark.md), whose Retrain runs give the first estimate
CELLS = Path(__file__).resolve().parents[1] / "docs" / "results" / "bench" / "paper" / "cells.csv"
POLL_S = 1.0
MAX_JOBS = 6  # the result store's size (mmu_ui.engine): one Retrain per result at most

REPLACED = ("This Retrain was replaced by one of another epoch count (asked for in "
            "Compare); ask again to use that one.")
RELEASED = "This result was let go (a newer request, or its time ran out): nothing to audit."
CLOSED = "The page was closed: its Retrain was stopped."
_LOCK = threading.Lock()  # one Retrain per request, whichever queues ask at once
_WORKER_LOCK = threading.Lock()
_WORKER: Worker | None = None

__all__ = ["Cancelled", "SharedRetrain", "close_session", "release", "shared_retrain",
           "worker"]


def worker() -> Worker:
    """The app's one background worker (made on first use)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = Worker(max_jobs=MAX_JOBS)
        return _WORKER


def retrain_task(outcome, epochs: int):
    """The background task of a request's Retrain (tests put a stand-in here)."""
    from mmu_core.erasure import forget_request

    return forget_request.retrain_task(outcome, epochs)


def benchmark_seconds_per_epoch(scenario: str, path: Path = CELLS) -> float | None:
    """Mean seconds per epoch of the benchmark's Retrain cells of the scenario's smallest
    forget set (D_r about the whole training set, as for a visitor's request), as measured
    on a 2-core CPU (docs/results/bench/paper). None without those cells."""
    if not path.is_file():
        return None
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "retrain"
                and r["scenario"] == scenario]
    if not rows:
        return None
    smallest = min(int(r["size"]) for r in rows)
    runs = [json.loads((path.parent / "cells" / f"{r['cell']}.json").read_text())["unlearning"]
            for r in rows if int(r["size"]) == smallest]
    return statistics.mean(u["seconds"] / u["epochs"] for u in runs)


def seconds_per_epoch(outcome) -> tuple[float | None, str]:
    """(seconds per Retrain epoch, what the figure stands on) for the model this request
    was made against, on its device: the benchmark's Retrain runs for the embedded default;
    for a BLIP-base-sized model the cost benchmark's figure (privacy), scaled by the
    embedded ratio of this scenario's epoch to privacy's; none for other sizes."""
    from mmu_core.bench.cost import expected_seconds, size_class

    model = outcome.shipped
    gpu = next(model.parameters()).device.type == "cuda"
    here = benchmark_seconds_per_epoch(outcome.scenario)
    if size_class(model) == "embedded":
        return here, ("by the benchmark's Retrain runs on a 2-core CPU (faster on a GPU; "
                      "longer while visitors' requests run, which go first)")
    got = expected_seconds("retrain-epoch", model, gpu)
    if got is None:
        return None, ""
    privacy = benchmark_seconds_per_epoch("privacy")
    scale = here / privacy if here and privacy else 1.0
    return got[0] * scale, f"{got[1]}, for a model of this size"


def _minutes(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class SharedRetrain:
    """One request's Retrain, queued in the background worker when made (`shared_retrain`
    makes it, with the epochs capped at the recipe's); `wait` blocks (reporting its place
    in line, then its progress) until the model is there. For taught uploads the model
    before teaching is it (no training, `forget_request.retrain_reference`)."""

    def __init__(self, outcome, epochs: int, owner=None):
        from mmu_core.erasure.forget_request import needs_retrain

        self.trains = needs_retrain(outcome)  # else: the model before teaching, at once
        self.epochs = epochs
        per_epoch, self.basis = seconds_per_epoch(outcome)
        self.estimate_s = None if per_epoch is None else per_epoch * self.epochs
        self.job = None
        if self.trains:
            task = retrain_task(outcome, epochs)
            task.expected_s = self.estimate_s
            self.job = worker().submit(task, owner=owner)
        else:
            self._ready = (outcome.shipped, "the model before teaching (never saw the uploads)")

    @property
    def done(self) -> bool:
        return self.job is None or self.job.done

    @property
    def error(self) -> BaseException | None:
        return None if self.job is None else self.job.error

    @property
    def done_epochs(self) -> int:
        return 0 if self.job is None else self.job.last.get("epoch", 0)

    def cancel(self, reason: str = RELEASED) -> None:
        if self.job is not None:
            self.job.cancel(reason)

    def announce(self) -> str:
        """What a visitor is told when it is queued: where in line, how long, on what that
        figure stands."""
        if not self.trains:
            return "Retrain reference: the model before teaching (never saw the uploads)."
        n = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        ahead = self.job.worker.ahead(self.job)
        basis = self.basis
        if not ahead:
            guess = "" if self.estimate_s is None else f", about {_minutes(self.estimate_s)} {basis}"
            return f"Retrain ({n}) is training in the background{guess}."
        wait = self.job.worker.wait_s(self.job)
        guess = ("" if wait is None or self.estimate_s is None else
                 f": about {_minutes(wait)} before it starts and "
                 f"{_minutes(wait + self.estimate_s)} until it is done, {basis}")
        return (f"Retrain ({n}) is queued in the background, number {len(ahead) + 1} in line "
                f"(one Retrain at a time, at the lowest priority){guess}.")

    def status(self) -> tuple[float, str]:
        """(fraction done, words) while it waits or trains: its place in line and the wait,
        then the epochs done and the time left from the measured speed (else the
        estimate)."""
        if self.job is None or self.job.done:
            return 1.0, "Retrain: done"
        if self.job.position:  # still in line
            line = self.job.worker
            ahead, wait = len(line.ahead(self.job)), line.wait_s(self.job)
            return 0.0, f"Retrain: waiting in line, {ahead} ahead of it" + (
                "" if wait is None else f", about {_minutes(wait)} before it starts")
        left = self.job.remaining_s()
        words = f"Retrain: epoch {self.done_epochs} of {self.epochs}" + (
            "" if left is None else f", about {_minutes(left)} left")
        return self.done_epochs / self.epochs, words

    def wait(self, progress=None):
        """(model, how it was made); raises what training raised (Cancelled when it was
        stopped)."""
        if self.job is None:
            return self._ready
        while not self.job.wait(POLL_S):
            if progress is not None:
                fraction, words = self.status()
                progress(fraction, desc=words)
        if self.job.error is not None:
            raise self.job.error
        model, info = self.job.result
        return model, info["how"]


def shared_retrain(entry: dict, epochs: int | None = None, replace: bool = False,
                   owner=None) -> SharedRetrain:
    """The request's Retrain: the one there is (whichever tab started it), else a new one of
    `epochs` (default: the recipe's). `replace`: a different epoch count (Compare's slider)
    replaces the one there is (and stops it). `owner`: the visitor's session, whose closed
    page stops it (`close_session`)."""
    from mmu_core.training.recipes import RECIPES

    out = entry["outcome"]
    full = RECIPES[out.scenario].epochs
    wanted = min(int(epochs or full), full)
    with _LOCK:
        job = entry.get("reference")
        if job is not None and job.error is None and (
                not replace or not job.trains or job.epochs == wanted):
            return job
        if job is not None:
            job.cancel(REPLACED)
        entry["reference"] = job = SharedRetrain(out, wanted, owner)
        return job


def release(entry: dict | None) -> None:
    """Stop the Retrain of a result let go (`SessionStore.on_drop`: a newer request, expiry,
    eviction)."""
    if entry and entry.get("reference") is not None:
        entry["reference"].cancel()


def close_session(owner) -> int:
    """Stop every background job of a closed page's session; how many."""
    return worker().cancel_owner(owner, CLOSED)
