"""The BLIP image-text backbone that unlearning edits.

`Backbone` wraps `transformers.BlipForImageTextRetrieval` (the class of
`Salesforce/blip-itm-base-coco`) and its `BlipProcessor`, and names the views the method,
the baselines and the metrics need: image and text token embeddings, ITC features and
similarity, the fused cross-attention embedding, the ITM match probability, a 3-way VE head
on the fused CLS, and the hidden state membership inference reads.

What HF's class lacks lives beside it in `mmu_extras.safetensors`: a learnable ITC
temperature (the HF forward returns raw cosines) and the VE head (a real checkpoint starts
it untrained).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from mmu_core.models import real_size
from mmu_core.models.building import serialised

EXTRAS_FILE = "mmu_extras.safetensors"
ASSETS = Path(__file__).resolve().parents[2] / "assets"
# Embedded defaults: small models of the real classes, trained by `python -m mmu_core train`
# on the procedural world (see assets/models/README.md).
EMBEDDED = {
    "embedded": "blip-embedded-privacy",
    "embedded:privacy": "blip-embedded-privacy",
    "embedded:copyright": "blip-embedded-copyright",
    "embedded:pretrained": "blip-embedded-pretrained",
}
REAL_IDS = ("Salesforce/blip-itm-base-coco", "Salesforce/blip-itm-large-coco",
            "Salesforce/blip-itm-base-flickr", "Salesforce/blip-itm-large-flickr")
NUM_VE_LABELS = 3
# backbones above this many parameters recompute their layers in the backward pass
# (`Backbone.checkpoint_layers`): every real BLIP; never the embedded default (about 1M)
CHECKPOINT_ABOVE = 20_000_000


class UnknownModelError(ValueError):
    pass


class Backbone(nn.Module):
    def __init__(self, model, processor, temp: float = 0.07):
        super().__init__()
        self.model = model
        self.processor = processor
        # ALBEF/BLIP keep the ITC temperature as a learnable scalar clamped to [0.001, 0.5].
        self.temp = nn.Parameter(torch.tensor(float(temp)))
        hidden = model.config.text_config.hidden_size
        self.ve_head = nn.Linear(hidden, NUM_VE_LABELS)  # 3-way VE on the fused CLS
        self.max_text_len = 32
        self.checkpointing = False

    # ---- memory -------------------------------------------------------------------------
    def checkpoint_layers(self) -> "Backbone":
        """Keep only each encoder layer's input in a gradient step and recompute the rest in
        the backward pass (BLIP's own `vit_grad_ckpt` for fine-tuning). At BLIP-base size a
        step of 32 pairs otherwise needs more than 24 GB (measured: killed on a 24 GB
        machine; docs/results/bench/cost); it costs about a third more compute. transformers
        checkpoints a layer only while it is in training mode, and the methods edit in eval
        mode (no dropout): the layers themselves are kept in training mode (`train`), their
        dropouts and everything else follow the model's mode."""
        self.model.activation_checkpointing_enable({"use_reentrant": False})
        # transformers then makes the input embeddings' output require grad (for reentrant
        # checkpoints over frozen embeddings); non-reentrant ones need no such hook, and with
        # the embeddings frozen (ours-local edits linear weights only) the text encoder's
        # in-place position add fails on that leaf (found at real size)
        if getattr(self.model, "_require_grads_hook", None) is not None:
            self.model.disable_input_require_grads()
        self.checkpointing = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if self.checkpointing:
            from transformers.modeling_layers import GradientCheckpointingLayer

            for m in self.model.modules():
                if isinstance(m, GradientCheckpointingLayer):
                    m.training = True  # the layer's flag only: its children keep `mode`
        return self

    # ---- inputs -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def pixels(self, images) -> torch.Tensor:
        return self.processor.image_processor(images=images, return_tensors="pt")[
            "pixel_values"].to(self.device)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.processor.tokenizer(list(texts), padding="longest", truncation=True,
                                       max_length=self.max_text_len, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    # ---- unimodal views -----------------------------------------------------------------
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image token embeddings [B, 1+L, Dv] (CLS first)."""
        return self.model.vision_model(pixel_values=pixel_values).last_hidden_state

    def encode_text(self, input_ids, attention_mask) -> torch.Tensor:
        """Unimodal text token embeddings [B, 1+K, Dt] (no cross-attention)."""
        return self.model.text_encoder(input_ids=input_ids,
                                       attention_mask=attention_mask).last_hidden_state

    def image_feat(self, image_embeds: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.vision_proj(image_embeds[:, 0]), dim=-1)

    def text_feat(self, text_embeds: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.text_proj(text_embeds[:, 0]), dim=-1)

    def itc_logits(self, image_feat, text_feat) -> torch.Tensor:
        return image_feat @ text_feat.t() / self.temp.clamp(0.001, 0.5)

    # ---- fused views --------------------------------------------------------------------
    def fuse(self, image_embeds, input_ids, attention_mask) -> torch.Tensor:
        """Cross-modal fusion E = f_F(f_CA(T, I, I)): text tokens attending to the image
        through the text encoder's cross-attention layers. [B, 1+K, Dt]."""
        image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                device=image_embeds.device)
        return self.model.text_encoder(
            input_ids=input_ids, attention_mask=attention_mask,
            encoder_hidden_states=image_embeds, encoder_attention_mask=image_atts,
        ).last_hidden_state

    def itm_logits(self, fused: torch.Tensor) -> torch.Tensor:
        return self.model.itm_head(fused[:, 0])

    def ve_logits(self, fused: torch.Tensor) -> torch.Tensor:
        return self.ve_head(fused[:, 0])

    @torch.no_grad()
    def score_pairs(self, images, texts, batch_size: int = 64) -> dict[str, torch.Tensor]:
        """ITM match probability, ITC cosine and the fused CLS (the final-layer hidden state
        membership inference reads) for aligned lists of PIL images and texts."""
        out = {"itm": [], "itc": [], "fused_cls": []}
        for s in range(0, len(texts), batch_size):
            pix = self.pixels(images[s:s + batch_size])
            ids, mask = self.tokenize(texts[s:s + batch_size])
            img = self.encode_image(pix)
            fused = self.fuse(img, ids, mask)
            out["itm"].append(self.itm_logits(fused).softmax(-1)[:, 1])
            out["itc"].append((self.image_feat(img) * self.text_feat(
                self.encode_text(ids, mask))).sum(-1))
            out["fused_cls"].append(fused[:, 0])
        return {k: torch.cat(v).cpu() for k, v in out.items()}

    # ---- persistence --------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, card: dict | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)  # safetensors
        self.processor.save_pretrained(folder)
        extras = {"temp": self.temp.detach().reshape(1).cpu().contiguous()}
        extras.update({f"ve_head.{k}": v.detach().cpu().contiguous()
                       for k, v in self.ve_head.state_dict().items()})
        save_file(extras, str(folder / EXTRAS_FILE))
        if card is not None:
            (folder / "mmu_card.json").write_text(json.dumps(card, indent=1))

    def copy(self) -> "Backbone":
        """A deep copy: editing never mutates the model it started from."""
        import copy

        return copy.deepcopy(self)


def _from_folder_or_hub(ref: str, **kw) -> Backbone:
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    model = BlipForImageTextRetrieval.from_pretrained(ref, **kw)
    processor = BlipProcessor.from_pretrained(ref, **kw)
    bb = Backbone(model, processor)
    extras_path = Path(ref) / EXTRAS_FILE if Path(ref).is_dir() else None
    if extras_path is None:
        try:
            from huggingface_hub import hf_hub_download

            extras_path = Path(hf_hub_download(ref, EXTRAS_FILE, **kw))
        except Exception:  # noqa: BLE001 - a real checkpoint has no extras: keep defaults
            extras_path = None
    if extras_path is not None and extras_path.is_file():
        extras = load_file(str(extras_path))
        with torch.no_grad():
            bb.temp.copy_(extras["temp"][0])
        state = {k[len("ve_head."):]: v for k, v in extras.items() if k.startswith("ve_head.")}
        if state:
            bb.ve_head.load_state_dict(state)
    return bb


HUB_TIMEOUT_S = 1.5  # how long an uncached hub id may wait for the hub before failing


def check_hub_id(name: str, marker: str = "config.json", kind: str = "model id") -> None:
    """Fail fast on a hub id that cannot load: not in the local cache and the hub not
    reachable within HUB_TIMEOUT_S (or offline), or no such repository. Without this,
    `from_pretrained` retries an unreachable hub for ~30 s before its error. `marker` is
    a file every snapshot of the repository holds (a pipeline's: model_index.json)."""
    import os

    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(name, marker), str):
        return  # cached: from_pretrained reads it (offline too)
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise UnknownModelError(f"unknown {kind} {name!r}: not in the local Hugging Face "
                                f"cache, and the hub is switched off (HF_HUB_OFFLINE)")
    try:
        HfApi().model_info(name, timeout=HUB_TIMEOUT_S)
    except RepositoryNotFoundError:
        raise UnknownModelError(f"unknown {kind} {name!r}: no such model on the Hugging Face "
                                f"hub (or it is private and no token was given)") from None
    except HfHubHTTPError:
        return  # the hub answered (e.g. gated): let from_pretrained say what it needs
    except Exception as err:  # noqa: BLE001 - DNS, refused, timeout: the hub is out of reach
        raise UnknownModelError(
            f"unknown {kind} {name!r}: not in the local Hugging Face cache, and the hub "
            f"could not be reached within {HUB_TIMEOUT_S} s ({type(err).__name__})") from None


@serialised
def load_backbone(name: str = "embedded", device: str | torch.device = "cpu") -> Backbone:
    """One factory for every source: an embedded name ("embedded", "embedded:privacy",
    "embedded:copyright", "embedded:pretrained"), a real-size stand-in with random weights
    ("real-size:blip-itm-base", models/real_size.py), a local folder written by
    `save_pretrained`, or a Hugging Face id such as "Salesforce/blip-itm-base-coco"
    (downloaded, or read from the local cache when offline)."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError("model id is empty")
    name = name.strip()
    if name in EMBEDDED:
        folder = ASSETS / "models" / EMBEDDED[name]
        if not (folder / "config.json").is_file():
            raise UnknownModelError(f"embedded model {name!r} is missing at {folder}; "
                                    f"retrain it with the command in assets/models/README.md")
        bb = _from_folder_or_hub(str(folder))
    elif Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise UnknownModelError(f"{name}: folder has no config.json (not a saved model)")
        bb = _from_folder_or_hub(name)
    elif name.startswith(real_size.PREFIX):
        bb = real_size.build(name, "backbone")
    elif name.startswith("embedded"):
        raise UnknownModelError(f"unknown embedded model {name!r}; choose from "
                                f"{sorted(EMBEDDED)}")
    else:
        check_hub_id(name)
        try:
            bb = _from_folder_or_hub(name)
        except OSError as err:
            raise UnknownModelError(
                f"unknown model id {name!r}: not an embedded name ({', '.join(sorted(EMBEDDED))}),"
                f" not a local folder, and not loadable from the Hugging Face hub or its cache "
                f"({str(err).splitlines()[0]})") from None
    if sum(p.numel() for p in bb.parameters()) > CHECKPOINT_ABOVE:
        bb.checkpoint_layers()
    return bb.to(device).eval()
