"""Long work off the request path: one FIFO queue with a single worker (`Worker`), each job
(`Job`) run in a child process at the lowest CPU priority.

Why a child process, not a thread: torch's intra-op thread pool belongs to the process, so
a niced thread still runs its matrix products on pool threads at the app's priority and
takes both cores from visitors' requests. A child at nice 19 under SCHED_IDLE, in the
app's own session (`_lower`, `Worker._run`), gets the CPU only when the app leaves it
idle, and cancelling it is a kill: nothing keeps running for nobody. Why
`python -m` rather than multiprocessing's spawn: the child imports only what its task
needs (not the app's page and gradio), and its stdout is the progress channel.

A task (`Task`) names a function "module:function", called in the child as
`fn(out=<folder>, report=<callable>, **kwargs)`: it writes its result into `out` and calls
`report(dict)` as it goes (`{"epoch": e, "epochs": n}` lets the worker estimate what is
left). In the parent, `prepare(folder)` runs just before the child starts (e.g. saves the
model the child reads) and `collect(out)` turns the folder into the job's result (e.g.
loads the trained model) before the folder is removed.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mmu_core.data.inputs import InputError

ROOT = Path(__file__).resolve().parents[2]
PROGRESS = "mmu-progress "  # a child's progress lines on stdout start with this
NICE = 19  # the lowest CPU priority a process can take


class Cancelled(InputError):
    """The job stopped before it finished (taken out of the queue, or its child killed);
    the message says why."""


class QueueFull(InputError):
    """The worker already holds as many jobs as it may (waiting and running)."""


@dataclass
class Task:
    target: str  # "module:function", run in the child
    kwargs: dict = field(default_factory=dict)  # pickled to the child
    prepare: Callable[[Path], None] | None = None  # in the parent, before the child starts
    collect: Callable[[Path], object] | None = None  # in the parent: the `out` folder -> result
    expected_s: float | None = None  # how long it should take alone, if known


class Job:
    """One task in the worker: waiting, running (in a child process), then done, failed or
    cancelled. `wait` blocks until it ends; `result` or `error` then says how."""

    def __init__(self, task: Task, worker: Worker, owner=None):
        self.task, self.owner, self.worker = task, owner, worker
        self.state = "waiting"
        self.last: dict = {}  # the child's latest progress record
        self.result, self.error = None, None
        self.pid: int | None = None
        self.started: float | None = None  # time.monotonic() when its child started
        self._proc: subprocess.Popen | None = None
        self._cancelled: str | None = None  # the reason, once cancelled
        self._first: tuple[float, int] | None = None  # (when, epoch) of its first record
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def cancel(self, reason: str = "cancelled") -> None:
        self.worker.cancel(self, reason)

    @property
    def position(self) -> int | None:
        """0 while running, k when k-th in line (1 = next), None once ended."""
        return self.worker.position(self)

    def remaining_s(self) -> float | None:
        """Seconds left: from the speed measured between its progress records (the child's
        start-up, importing torch and loading data, is not an epoch), else the expected time
        less what has run. None when neither is known."""
        if self.done:
            return 0.0
        now = time.monotonic()
        done, total = self.last.get("epoch", 0), self.last.get("epochs")
        if self._first and total and done > self._first[1]:
            per_epoch = (now - self._first[0]) / (done - self._first[1])
            return per_epoch * (total - done)
        if self.task.expected_s is None:
            if done and total:  # one record so far: start-up included, an overestimate
                return (now - self.started) / done * (total - done)
            return None
        if done and total:
            return self.task.expected_s * (total - done) / total
        return max(0.0, self.task.expected_s - (0.0 if self.started is None
                                                else now - self.started))

    def _record(self, record: dict) -> None:
        if self._first is None and "epoch" in record:
            self._first = (time.monotonic(), record["epoch"])
        self.last = record

    def _finish(self, state: str) -> None:
        self.state, self._proc = state, None
        self._done.set()


class Worker:
    """A FIFO queue of jobs and one thread that runs them one after another, each in a child
    process (`python -m mmu_core.erasure.background`) at nice `nice`. At most `max_jobs`
    jobs wait or run at once (`submit` raises QueueFull beyond that)."""

    def __init__(self, max_jobs: int = 6, nice: int = NICE):
        self.max_jobs, self.nice = max_jobs, nice
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, task: Task, owner=None) -> Job:
        with self._cond:
            if len(self._waiting) + (self._running is not None) >= self.max_jobs:
                raise QueueFull(f"The background queue is full ({self.max_jobs} jobs waiting "
                                f"or running); please try again in a few minutes.")
            job = Job(task, self, owner)
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="mmu-background")
                self._thread.start()
            self._cond.notify()
        return job

    def jobs(self) -> list[Job]:
        """The running job (if any), then the waiting ones in order."""
        with self._cond:
            return ([self._running] if self._running else []) + list(self._waiting)

    def position(self, job: Job) -> int | None:
        with self._cond:
            if job is self._running:
                return 0
            return self._waiting.index(job) + 1 if job in self._waiting else None

    def ahead(self, job: Job) -> list[Job]:
        """The jobs that run before `job` (the running one first); [] once it runs."""
        jobs = self.jobs()
        return jobs[:jobs.index(job)] if job in jobs else []

    def wait_s(self, job: Job) -> float | None:
        """Seconds before `job` starts: what the jobs ahead of it have left (None when one of
        them has no estimate)."""
        left = [j.remaining_s() for j in self.ahead(job)]
        return None if None in left else sum(left)

    def cancel(self, job: Job, reason: str = "cancelled") -> None:
        """Take a waiting job out of the line, or kill a running job's child at once."""
        with self._cond:
            if job.done or job._cancelled:
                return
            job._cancelled = reason
            if job in self._waiting:
                self._waiting.remove(job)
                job.error = Cancelled(reason)
                job._finish("cancelled")
            elif job._proc is not None:
                _kill(job._proc)
            # else: starting right now; `_run` sees the reason before it starts the child

    def cancel_owner(self, owner, reason: str = "cancelled") -> int:
        """Cancel every job of `owner` (e.g. a closed page's session); how many."""
        mine = [j for j in self.jobs() if owner is not None and j.owner == owner]
        for job in mine:
            self.cancel(job, reason)
        return len(mine)

    def children(self) -> list[int]:
        """Pids of the child processes alive now (at most one)."""
        with self._cond:
            proc = self._running._proc if self._running else None
        return [proc.pid] if proc is not None and proc.poll() is None else []

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting:
                    self._cond.wait()
                job = self._running = self._waiting.popleft()
                job.state = "running"
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running = None

    def _run(self, job: Job) -> None:
        folder = Path(tempfile.mkdtemp(prefix="mmu-job-"))
        try:
            if job.task.prepare is not None:
                job.task.prepare(folder)
            (folder / "task.pkl").write_bytes(pickle.dumps(
                {"target": job.task.target, "kwargs": job.task.kwargs, "nice": self.nice}))
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
            with self._cond, open(folder / "stderr.txt", "wb") as err:
                if job._cancelled:  # cancelled while `prepare` ran
                    raise Cancelled(job._cancelled)
                # not a session of its own: Linux's autogroup scheduler shares the CPU
                # fairly between sessions whatever their nice value, so a child in its own
                # session takes a whole core from the app (measured: the app's requests
                # then ran on one core). In the app's session, `_lower` makes it yield.
                job._proc = subprocess.Popen(
                    [sys.executable, "-m", "mmu_core.erasure.background", str(folder)],
                    stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT,
                    env=env, text=True)
                job.pid, job.started = job._proc.pid, time.monotonic()
                _lower(job.pid, self.nice)  # at once, from here (the child does it too)
            for line in job._proc.stdout:
                if line.startswith(PROGRESS):
                    job._record(json.loads(line[len(PROGRESS):]))
            code = job._proc.wait()
            if job._cancelled:
                raise Cancelled(job._cancelled)
            if code != 0:
                tail = (folder / "stderr.txt").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"background job {job.task.target} failed (exit code "
                                   f"{code}):\n{tail}")
            job.result = job.task.collect(folder / "out") if job.task.collect else None
            job._finish("done")
        except BaseException as err:  # noqa: BLE001 - handed to whoever waits
            if job._proc is not None and job._proc.poll() is None:
                _kill(job._proc)
                job._proc.wait()
            job.error = err
            job._finish("cancelled" if isinstance(err, Cancelled) else "failed")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()  # SIGKILL: a Retrain starts no processes of its own
    except ProcessLookupError:
        pass


def _lower(pid: int, nice: int) -> None:
    """The lowest CPU priority for process `pid` (0: this one): nice `nice` and, on Linux,
    the SCHED_IDLE policy, under which it runs only on a core nothing else wants and gives
    way as soon as an app thread wakes (with nice 19 alone it kept ~70% of a core beside a
    visitor's request and slowed it by up to 1.5x; measured, docs/results/bench/app-load)."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, max(nice, current))
    except (AttributeError, OSError):
        pass
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the app process ends, however it ends."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stand_in(out: Path, report, epochs: int = 3, seconds_per_epoch: float = 0.05,
             fail: bool = False) -> None:
    """A job that does nothing but take time, for tests and the memory check: `epochs`
    sleeps, each reported as an epoch; writes `out/done.json`."""
    for epoch in range(1, epochs + 1):
        time.sleep(seconds_per_epoch)
        report({"epoch": epoch, "epochs": epochs})
    if fail:
        raise RuntimeError("the stand-in failed, as asked")
    (out / "done.json").write_text(json.dumps({"epochs": epochs, "pid": os.getpid()}))


def _child(folder: str) -> None:
    spec = pickle.loads((Path(folder) / "task.pkl").read_bytes())
    _die_with_parent()
    _lower(0, spec["nice"])  # before anything heavy is imported
    module, name = spec["target"].split(":")
    fn = getattr(importlib.import_module(module), name)
    out = Path(folder) / "out"
    out.mkdir()
    fn(out=out, report=lambda record: print(PROGRESS + json.dumps(record), flush=True),
       **spec["kwargs"])


if __name__ == "__main__":
    _child(sys.argv[1])
