"""What every visitor shares read-only (models, data, generators) and what each one owns
(results in a TTL store, reached through the key their `gr.State` holds)."""

from __future__ import annotations

import os
import tempfile
import threading

import gradio as gr

from mmu_core.data.generate import default_world
from mmu_core.data.inputs import InputError
from mmu_core.data.loaders import DataError, open_image
from mmu_core.data.scenarios import load_scenario
from mmu_core.erasure.export import ExportError
from mmu_core.erasure.sessions import Expired, SessionStore
from mmu_core.models.backbone import UnknownModelError, load_backbone

MODEL_ID = os.environ.get("MMU_MODEL", "embedded")
# MVI's frozen generators: embedded unless set, e.g. MMU_CAPTIONER=Salesforce/blip2-opt-2.7b
# and MMU_PAINTER=stable-diffusion-v1-5/stable-diffusion-v1-5 on a GPU Space
CAPTIONER_ID = os.environ.get("MMU_CAPTIONER", "embedded")
PAINTER_ID = os.environ.get("MMU_PAINTER", "embedded")
# real checkpoints offered when a GPU is present (the embedded default always is)
GPU_MODELS = ("Salesforce/blip-itm-base-coco", "Salesforce/blip-itm-large-coco")
RESULT_TTL_S = 30 * 60
GALLERY_SIZE = 24

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
    import functools

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, DataError, UnknownModelError, Expired, ExportError) as err:
            raise gr.Error(str(err)) from None
    return wrapped


class Engine:
    def __init__(self, model_id: str = MODEL_ID):
        self.default_model = model_id
        self.world = default_world()
        self.scenarios = {n: load_scenario(self.world, n) for n in ("privacy", "copyright")}
        self.store = SessionStore(ttl_s=RESULT_TTL_S, max_items=6)
        self.files = tempfile.mkdtemp(prefix="mmu-app-")  # the only folder the app serves
        self._models: dict[tuple[str, str], object] = {}
        self._generators = None
        self._lock = threading.Lock()
        self.model("privacy")  # fail at start, not on the first request, if it is missing

    def device(self) -> str:
        return "cuda" if has_gpu() else "cpu"

    def model(self, scenario: str, model_id: str | None = None):
        """The shared, never-edited model for a scenario ("embedded" picks the scenario's
        own embedded model)."""
        model_id = (model_id or self.default_model).strip()
        if scenario not in self.scenarios:
            raise InputError(f"Unknown scenario {scenario!r}.")
        name = f"embedded:{scenario}" if model_id == "embedded" else model_id
        with self._lock:
            if (name, scenario) not in self._models:
                if len(self._models) >= 4:  # bounded: drop the oldest
                    self._models.pop(next(iter(self._models)))
                self._models[(name, scenario)] = load_backbone(name, self.device())
            return self._models[(name, scenario)]

    def generators(self):
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
        where = "a GPU" if has_gpu() else "the CPU"
        return (f"Running **{self.default_model}** on {where}. The embedded default is a small "
                f"BLIP (`BlipForImageTextRetrieval`, one per scenario) "
                f"trained by this project on its own procedural world of fictitious people "
                f"and coloured-shape scenes. MVI's generators: image-to-text "
                f"**{CAPTIONER_ID}**, text-to-image **{PAINTER_ID}** (embedded: a small BLIP-2 "
                f"and a small Stable Diffusion of the real classes)."
                + ("" if has_gpu() else " Real checkpoints are offered when a GPU is present."))
