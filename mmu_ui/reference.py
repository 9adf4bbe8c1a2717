"""The Retrain reference of a visitor's request, trained once in a background thread and
shared by Compare, Audit, the report and the export, in whichever order they ask.

Retrain is the slow part of every check against the gold standard (minutes on a CPU). The
first tab that needs it starts it with an estimate said before it starts; the others wait
for the same thread (with its progress) or use its model once it is there.
"""

from __future__ import annotations

import csv
import json
import statistics
import threading
import time
from pathlib import Path

from mmu_core.data.inputs import InputError

# the benchmark's cells (docs/benchmark.md), whose Retrain runs give the first estimate
CELLS = Path(__file__).resolve().parents[1] / "docs" / "results" / "bench" / "paper" / "cells.csv"
POLL_S = 1.0

REPLACED = ("This Retrain was replaced by one of another epoch count (asked for in "
            "Compare); ask again to use that one.")
RELEASED = "This result was let go (a newer request, or its time ran out): nothing to audit."
_LOCK = threading.Lock()  # one Retrain per request, whichever queues ask at once


class Cancelled(InputError):
    """A Retrain stopped at its next epoch (replaced, or its result let go); the message
    says which."""


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


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class SharedRetrain:
    """One request's Retrain, started in a thread when made (`shared_retrain` makes it, with
    the epochs capped at the recipe's); `wait` blocks (reporting progress) until the model
    is there. For taught uploads the model before teaching is it (no training,
    `forget_request.retrain_reference`)."""

    def __init__(self, outcome, epochs: int):
        from mmu_core.erasure.forget_request import needs_retrain

        self.outcome = outcome
        self.trains = needs_retrain(outcome)  # else: the model before teaching, at once
        self.epochs = epochs
        per_epoch = benchmark_seconds_per_epoch(outcome.scenario)
        self.estimate_s = None if per_epoch is None else per_epoch * self.epochs
        self.done_epochs, self.started = 0, time.monotonic()
        self.model, self.how, self.error = None, None, None
        self._cancel = None  # the reason, once cancelled
        self._done = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="mmu-retrain").start()

    def _run(self) -> None:
        from mmu_core.erasure import forget_request

        try:
            self.model, info = forget_request.retrain_reference(
                self.outcome, epochs=self.epochs, train_log=self._log)
            self.how = info["how"]
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits
            self.error = err
        finally:
            self._done.set()

    def _log(self, line: str) -> None:
        """`training.recipes.train`'s log: one JSON record per finished epoch."""
        if self._cancel:
            raise Cancelled(self._cancel)
        if line.startswith("{"):
            self.done_epochs = json.loads(line)["epoch"]

    def cancel(self, reason: str = RELEASED) -> None:
        self._cancel = reason

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def announce(self) -> str:
        """What a visitor is told when it starts: how long, on what that figure stands."""
        if not self.trains:
            return "Retrain reference: the model before teaching (never saw the uploads)."
        guess = ("" if self.estimate_s is None else
                 f", about {_minutes(self.estimate_s)} by the benchmark's Retrain runs on a "
                 f"2-core CPU (faster on a GPU)")
        n = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return f"Retrain ({n}) is training in the background{guess}."

    def status(self) -> tuple[float, str]:
        """(fraction done, words) while it trains: the remaining time from the epochs done
        so far, else from the estimate."""
        elapsed = time.monotonic() - self.started
        if self.done_epochs:
            left = elapsed / self.done_epochs * (self.epochs - self.done_epochs)
        else:
            left = None if self.estimate_s is None else max(0.0, self.estimate_s - elapsed)
        words = f"Retrain: epoch {self.done_epochs} of {self.epochs}" + (
            "" if left is None else f", about {_minutes(left)} left")
        return self.done_epochs / self.epochs, words

    def wait(self, progress=None):
        """(model, how it was made); raises what training raised."""
        while not self._done.wait(POLL_S):
            if progress is not None:
                fraction, words = self.status()
                progress(fraction, desc=words)
        if self.error is not None:
            raise self.error
        return self.model, self.how


def shared_retrain(entry: dict, epochs: int | None = None, replace: bool = False
                   ) -> SharedRetrain:
    """The request's Retrain: the one there is (whichever tab started it), else a new one of
    `epochs` (default: the recipe's). `replace`: a different epoch count (Compare's slider)
    replaces the one there is."""
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
        entry["reference"] = job = SharedRetrain(out, wanted)
        return job


def release(entry: dict | None) -> None:
    """Stop the Retrain of a result let go (`SessionStore.on_drop`: a newer request, expiry,
    eviction)."""
    if entry and entry.get("reference") is not None:
        entry["reference"].cancel()
