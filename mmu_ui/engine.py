"""What every visitor shares read-only (models, data, generators) and what each one owns
(results in a TTL store, reached through the key their `gr.State` holds).

The page is served before torch is imported: the world, the scenarios and the shipped model
load in a thread started with the engine, and every request waits for it (`ready`). The
tabs import the engine's heavy modules inside their handlers for the same reason.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
import time

import gradio as gr

from mmu_core.data.generate import default_world
from mmu_core.data.inputs import InputError
from mmu_core.data.loaders import DataError, open_image
from mmu_core.data.scenarios import load_scenario
from mmu_core.erasure.export import ExportError
from mmu_core.erasure.sessions import Expired, SessionStore
from mmu_ui import reference
from mmu_ui.reference import release

MODEL_ID = os.environ.get("MMU_MODEL", "embedded")
# MVI's frozen generators: embedded unless set, e.g. MMU_CAPTIONER=Salesforce/blip2-opt-2.7b
# and MMU_PAINTER=stable-diffusion-v1-5/stable-diffusion-v1-5 on a GPU Space
CAPTIONER_ID = os.environ.get("MMU_CAPTIONER", "embedded")
PAINTER_ID = os.environ.get("MMU_PAINTER", "embedded")
# real checkpoints offered when a GPU is present (the embedded default always is)
GPU_MODELS = ("Salesforce/blip-itm-base-coco", "Salesforce/blip-itm-large-coco")
RESULT_TTL_S = 30 * 60
MAX_RESULTS = 6  # results kept at once (the oldest goes first)
# the app process's resident memory with the store full and Retrains queued stays under
# this (docs/app.md: measured by tests/test_background.py and `bench app --visitors`); the
# one Retrain child runs beside it in a process of its own
APP_MEMORY_BOUND_MB = 3072
SWEEP_S = 30.0  # how often expired results are let go (their Retrain stopped) unasked
# visitors waiting for their Retrain at once (Compare, Audit): one per result; the waits
# take no model time, Retrain runs in the background worker (mmu_ui/reference.py)
REFERENCE_QUEUE = MAX_RESULTS
GALLERY_SIZE = 24
# the registry's names (`mmu_core.unlearn.names()`, a test keeps them equal), known without
# importing torch
METHODS = ("ours", "ours-local", "calibrated", "calibrated-rank", "calibrated-near", "retrain",
           "finetune", "ga", "badt", "multidelete", "slug", "adv")


def default_method() -> tuple[str, str]:
    """(the Forget tab's first method, why): the best on the confirm half by the four-axis
    figure (issue 32) within the neighbours' budget, as the page runs it by default (else
    without, where no guarded form is computed yet); else the paper's."""
    from mmu_core.bench.confirm import confirmed_best

    best, why = confirmed_best(guarded=True)
    if best is None:
        best, why = confirmed_best()
    return (best, why) if best in METHODS else ("ours", f"the paper's method ({why})")


LOADING = ("**Loading the models** (a few seconds): the page works already; a request made "
           "now starts as soon as they are in.")

try:  # ZeroGPU on Hugging Face Spaces; elsewhere a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_):
        return fn if fn is not None else (lambda f: f)


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def model_choices() -> list[str]:
    return ["embedded"] + (list(GPU_MODELS) if has_gpu() else [])


def user_errors(fn):
    """Turn the engine's errors about a person's input into a message on the page."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        from mmu_core.models.backbone import UnknownModelError  # loaded by then

        try:
            return fn(*args, **kwargs)
        except (InputError, DataError, UnknownModelError, Expired, ExportError) as err:
            raise gr.Error(str(err)) from None
    return wrapped


class Engine:
    def __init__(self, model_id: str = MODEL_ID, background: bool = True):
        self.default_model = model_id
        # a result let go (a new request, expiry, eviction) stops its background Retrain
        self.store = SessionStore(ttl_s=RESULT_TTL_S, max_items=MAX_RESULTS, on_drop=release)
        self._sessions: dict[str, str] = {}  # page session -> its result's key (see `own`)
        self._sessions_lock = threading.Lock()
        # expiry is otherwise noticed only when the store is next used
        threading.Thread(target=self._sweep, args=(SWEEP_S,), daemon=True,
                         name="mmu-sweep").start()
        self.files = tempfile.mkdtemp(prefix="mmu-app-")  # the only folder the app serves
        self._models: dict[tuple[str, str], object] = {}
        self._generators = None
        self._lock = threading.RLock()
        self._scenarios: dict = {}
        self._error: BaseException | None = None
        self.ready = threading.Event()
        if background:
            threading.Thread(target=self._load, daemon=True, name="mmu-load").start()
        else:
            self._load()
            self.wait()

    def _load(self) -> None:
        try:
            self._world = default_world()
            self._scenarios = {n: load_scenario(self._world, n)
                               for n in ("privacy", "copyright")}
            self._model("privacy")  # a missing model fails here, and every request says so
        except BaseException as err:  # noqa: BLE001 - handed to every request
            self._error = err
        finally:
            self.ready.set()

    def _sweep(self, every: float) -> None:
        while True:
            time.sleep(every)
            self.store.sweep()
            # forget the sessions whose result is gone (an API client may never close)
            with self._sessions_lock:
                self._sessions = {s: k for s, k in self._sessions.items() if k in self.store}

    def own(self, request: gr.Request | None, key: str | None) -> str | None:
        """Remember which page session holds result `key` (the handlers that start
        background work call this), so that closing the page lets it go. The session hash,
        the owner of that work."""
        session = getattr(request, "session_hash", None)
        if session and key:
            with self._sessions_lock:
                self._sessions[session] = key
        return session

    def close_session(self, request: gr.Request) -> None:
        """`demo.unload`: the page is closed, so nobody will see its result: let it go (the
        store stops its Retrain) and stop any other background work of that session."""
        session = getattr(request, "session_hash", None)
        with self._sessions_lock:
            key = self._sessions.pop(session, None)
        reference.close_session(session)  # first: the job says why it stopped
        self.store.drop(key)

    def wait(self) -> None:
        """Block until the shared data and model are loaded; raise what loading raised."""
        self.ready.wait()
        if self._error is not None:
            raise self._error

    @property
    def scenarios(self) -> dict:
        self.wait()
        return self._scenarios

    @property
    def world(self):
        self.wait()
        return self._world

    def device(self) -> str:
        return "cuda" if has_gpu() else "cpu"

    def model(self, scenario: str, model_id: str | None = None):
        """The shared, never-edited model for a scenario ("embedded" picks the scenario's
        own embedded model). Waits for the loading thread: importing the same libraries
        from two threads at once can meet a half-initialised module."""
        self.wait()
        return self._model(scenario, model_id)

    def _model(self, scenario: str, model_id: str | None = None):
        model_id = (model_id or self.default_model).strip()
        if scenario not in ("privacy", "copyright"):
            raise InputError(f"Unknown scenario {scenario!r}.")
        name = f"embedded:{scenario}" if model_id == "embedded" else model_id
        from mmu_core.models.backbone import load_backbone

        with self._lock:
            if (name, scenario) not in self._models:
                if len(self._models) >= 4:  # bounded: drop the oldest
                    self._models.pop(next(iter(self._models)))
                self._models[(name, scenario)] = load_backbone(name, self.device())
            return self._models[(name, scenario)]

    def generators(self):
        self.wait()  # see `model`
        from mmu_core.models.generators import load_captioner, load_painter

        with self._lock:
            if self._generators is None:
                self._generators = (load_captioner(CAPTIONER_ID, device=self.device()),
                                    load_painter(PAINTER_ID, device=self.device()))
            return self._generators

    def gallery(self, scenario: str) -> list:
        pairs = self.scenarios[scenario].train
        step = max(1, len(pairs) // GALLERY_SIZE)
        return [pairs[i] for i in range(0, len(pairs), step)][:GALLERY_SIZE]

    def image_file(self, pair) -> str:
        """A pair's image as a PNG in the app's folder (parquet rows hold bytes)."""
        name = os.path.join(self.files, pair.pair_id + ".png")
        if not os.path.exists(name):
            open_image(pair).save(name)
        return name

    def describe(self) -> str:
        try:
            self.wait()
        except Exception as err:  # noqa: BLE001 - the page says it instead of a blank header
            return f"**The models could not be loaded**: {err}"
        where = "a GPU" if has_gpu() else "the CPU"
        return (f"Running **{self.default_model}** on {where}. The embedded default is a small "
                f"BLIP (`BlipForImageTextRetrieval`, one per scenario) "
                f"trained by this project on its own procedural world of fictitious people "
                f"and coloured-shape scenes. MVI's generators: image-to-text "
                f"**{CAPTIONER_ID}**, text-to-image **{PAINTER_ID}** (embedded: a small BLIP-2 "
                f"and a small Stable Diffusion of the real classes)."
                + ("" if has_gpu() else " Real checkpoints are offered when a GPU is present.")
                + self.request_cost())

    def request_cost(self, method: str = "ours") -> str:
        """What a one-person request costs with the model actually loaded, on this device,
        from the committed cost benchmark (docs/results/bench/cost), or that no figure
        exists for a model of its size."""
        from mmu_core.bench.cost import expected_seconds

        got = expected_seconds(method, self._model("privacy"), has_gpu())
        if got is None:
            return (f" No measured cost for a one-person request with this model on this "
                    f"device (`bench cost` holds the embedded default on a CPU and BLIP-base).")
        seconds, basis = got
        took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
        return f" A one-person request with **{method}** takes about {took} ({basis})."
