"""One factory per generator: an embedded name, a local folder, or a Hugging Face id
(real: `Salesforce/blip2-opt-2.7b`; an SD 1.5 / 2.1 id), or a real-size stand-in
(`real-size:blip2-opt-2.7b`, `real-size:sd-1.5`: models/real_size.py)."""

from __future__ import annotations

from pathlib import Path

from mmu_core.models import real_size
from mmu_core.models.backbone import ASSETS, UnknownModelError, check_hub_id
from mmu_core.models.building import serialised

EMBEDDED_CAPTIONER = "embedded"
EMBEDDED_PAINTER = "embedded"


def _resolve(name: str, folder: str, kind: str, marker: str = "config.json") -> str:
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError("model id is empty")
    if name == "embedded":
        path = ASSETS / "generators" / folder
        if not path.is_dir():
            raise UnknownModelError(f"embedded generator missing at {path}; train it with "
                                    f"`python -m mmu_core train-generators`")
        return str(path)
    if not Path(name).is_dir():
        check_hub_id(name, marker, kind)  # fail in a second, not after the hub's retries
    return name


@serialised
def load_captioner(name: str = EMBEDDED_CAPTIONER, device: str = "cpu"):
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    from mmu_core.models.captioner import Captioner

    if isinstance(name, str) and name.startswith(real_size.PREFIX):
        cap = real_size.build(name, "image-to-text model")
        cap.model.to(device)
        return cap
    ref = _resolve(name, "blip2-embedded", "image-to-text model")
    try:
        model = Blip2ForConditionalGeneration.from_pretrained(ref)
        processor = Blip2Processor.from_pretrained(ref)
    except OSError as err:
        raise UnknownModelError(f"unknown image-to-text model {name!r}: not 'embedded', a "
                                f"local folder, or a cached hub id ({str(err).splitlines()[0]})"
                                ) from None
    return Captioner(model.to(device), processor)


@serialised
def load_painter(name: str = EMBEDDED_PAINTER, device: str = "cpu"):
    from diffusers import StableDiffusionPipeline

    from mmu_core.models.painter import Painter

    if isinstance(name, str) and name.startswith(real_size.PREFIX):
        painter = real_size.build(name, "text-to-image model")
        painter.pipe.to(device)
        return painter
    ref = _resolve(name, "sd-embedded", "text-to-image model", marker="model_index.json")
    try:
        pipe = StableDiffusionPipeline.from_pretrained(ref, safety_checker=None,
                                                       requires_safety_checker=False)
    except (OSError, EnvironmentError, ValueError) as err:
        raise UnknownModelError(f"unknown text-to-image model {name!r}: not 'embedded', a "
                                f"local folder, or a cached hub id ({str(err).splitlines()[0]})"
                                ) from None
    return Painter(pipe.to(device))


def save_captioner(cap, folder: str | Path) -> None:
    cap.model.save_pretrained(folder)
    cap.processor.save_pretrained(folder)


def save_painter(painter, folder: str | Path) -> None:
    painter.pipe.save_pretrained(folder)


@serialised
def load_image_classifier(name: str = "embedded"):
    """The classifier behind the Inception-Score-style measure (image_classifier.py)."""
    from mmu_core.models.image_classifier import ImageClassifier

    ref = _resolve(name, "image-classifier", "image classifier")
    try:
        return ImageClassifier.from_pretrained(ref).eval()
    except (OSError, ValueError) as err:
        raise UnknownModelError(f"unknown image classifier {name!r} ({str(err).splitlines()[0]})"
                                ) from None
