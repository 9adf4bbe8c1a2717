"""What a run computes, counted by kind, and what each kind costs on a given model.

`counting_work()` counts, for every call of a heavy module (the backbone's image encoder,
its text encoder with or without the image, the generators' towers and denoiser), the
calls and the samples (tokens for a language model), split by whether the call builds a
graph (forward + backward: "train") or not ("infer"); plus the images the backbone's
processor prepares. The counts do not depend on the model's size, so the counts of a run
on the embedded model times the per-call and per-sample seconds measured on a real-size
model (`unit_seconds`) say what the same run costs there.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch

# module class -> kind; the text encoder is "fused" when it attends to an image
KINDS = {
    "BlipVisionModel": "vision", "BlipTextModel": "text",
    "Blip2VisionModel": "cap_vision", "Blip2QFormerModel": "qformer",
    "OPTForCausalLM": "lm", "T5ForConditionalGeneration": "lm",
    "UNet2DConditionModel": "unet", "CLIPTextModel": "clip_text",
}
DIFFUSERS_VAE = {"Encoder": "vae_enc", "Decoder": "vae_dec"}  # AutoencoderKL's halves


def _kind(module, kwargs) -> str | None:
    name = type(module).__name__
    kind = KINDS.get(name)
    if kind is None and name in DIFFUSERS_VAE and type(module).__module__.startswith(
            "diffusers"):
        kind = DIFFUSERS_VAE[name]
    if kind == "text" and kwargs.get("encoder_hidden_states") is not None:
        kind = "fused"
    return kind


def _first_tensor(args, kwargs):
    for key in ("pixel_values", "input_ids", "inputs_embeds", "query_embeds", "sample"):
        if isinstance(kwargs.get(key), torch.Tensor):
            return kwargs[key]
    return next((a for a in args if isinstance(a, torch.Tensor)), None)


def _requires_grad(output) -> bool:
    if isinstance(output, torch.Tensor):
        return output.requires_grad
    values = output.values() if isinstance(output, dict) else (
        output if isinstance(output, (tuple, list)) else [getattr(output, "sample", None)])
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in values)


class Work:
    """calls[(kind, mode)], samples[(kind, mode)]; mode "train" or "infer"."""

    def __init__(self):
        self.calls: dict = defaultdict(int)
        self.samples: dict = defaultdict(int)

    def add(self, kind: str, mode: str, samples: int) -> None:
        self.calls[(kind, mode)] += 1
        self.samples[(kind, mode)] += samples

    def as_dict(self) -> dict:
        return {f"{k}/{m}": {"calls": self.calls[(k, m)], "samples": self.samples[(k, m)]}
                for k, m in sorted(self.calls)}


@contextmanager
def counting_work():
    """Count the heavy modules' calls in the block (every thread; a global hook)."""
    from torch.nn.modules.module import register_module_forward_hook

    from mmu_core.models.backbone import Backbone

    work = Work()

    def hook(module, args, kwargs, output):
        kind = _kind(module, kwargs)
        if kind is None:
            return
        x = _first_tensor(args, kwargs)
        if x is None:
            return
        n = x.shape[0] * (x.shape[1] if kind == "lm" and x.dim() >= 2 else 1)
        work.add(kind, "train" if _requires_grad(output) else "infer", int(n))

    pixels = Backbone.pixels

    def counted_pixels(self, images):
        work.add("pixels", "infer", len(images))
        return pixels(self, images)

    handle = register_module_forward_hook(hook, with_kwargs=True)
    Backbone.pixels = counted_pixels
    try:
        yield work
    finally:
        handle.remove()
        Backbone.pixels = pixels


# ---- unit costs --------------------------------------------------------------------------

def _timed(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, kernels
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def _flops(run, b: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run(b)
    return float(counter.get_total_flops())


def _per_call_and_sample(run, small: int, large: int, repeats: int) -> dict:
    """Seconds per call (c0) and per sample (c1) from timings at two batch sizes, and the
    FLOPs per sample (matrix products and convolutions, forward and backward)."""
    t_small, t_large = _timed(lambda: run(small), repeats), _timed(lambda: run(large), repeats)
    per_sample = max(0.0, (t_large - t_small) / (large - small))
    return {"per_call": max(0.0, t_small - per_sample * small), "per_sample": per_sample,
            "flops_per_sample": _flops(run, small) / small,
            "batches": [small, large], "seconds": [round(t_small, 5), round(t_large, 5)]}


def backbone_units(bb, small: int = 1, large: int = 4, repeats: int = 2,
                   autocast: bool = False) -> dict:
    """Per-call and per-sample seconds of each backbone kind, infer and train (forward +
    backward with every parameter trainable, as the methods edit), on random inputs of the
    backbone's own image size and a 20-token text."""
    from PIL import Image

    size = bb.model.config.vision_config.image_size
    vocab = bb.model.config.text_config.vocab_size
    trainable = [p.requires_grad for p in bb.parameters()]
    bb.requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    ctx = (torch.autocast("cpu", dtype=torch.bfloat16) if autocast
           else torch.autocast("cpu", enabled=False))

    def inputs(b):
        pix = torch.randn(b, 3, size, size, generator=gen).to(bb.device)
        ids = torch.randint(5, min(vocab, 1000), (b, 20), generator=gen).to(bb.device)
        return pix, ids, torch.ones_like(ids)

    def run(kind: str, train: bool):
        def go(b):
            pix, ids, mask = inputs(b)
            with ctx, torch.set_grad_enabled(train):
                if kind == "vision":
                    out = bb.encode_image(pix)
                elif kind == "text":
                    out = bb.encode_text(ids, mask)
                else:  # fused: the image tokens as given, as a method's fusion sees them
                    img = torch.randn(b, (size // bb.model.config.vision_config.patch_size)
                                      ** 2 + 1, bb.model.config.vision_config.hidden_size,
                                      generator=gen).to(bb.device).requires_grad_(train)
                    out = bb.fuse(img, ids, mask)
                if train:
                    out.float().sum().backward()
                    bb.zero_grad(set_to_none=True)
        return go

    out = {f"{k}/{'train' if t else 'infer'}": _per_call_and_sample(run(k, t), small, large,
                                                                    repeats)
           for k in ("vision", "text", "fused") for t in (False, True)}
    images = [Image.new("RGB", (64, 64), (i, 0, 0)) for i in range(large)]
    out["pixels/infer"] = _per_call_and_sample(lambda b: bb.pixels(images[:b]), small, large,
                                               repeats)
    for p, flag in zip(bb.parameters(), trainable):
        p.requires_grad_(flag)
    return out


def generator_units(captioner, painter, repeats: int = 1, small: int = 1,
                    large: int = 2) -> dict:
    """Per-call and per-sample seconds of the generators' kinds: the captioner's towers and
    LM (per token; "train" = gradients into a prefix, the weights frozen, as MVI's ELBO
    does), the painter's text encoder, VAE halves and UNet."""
    gen = torch.Generator().manual_seed(0)
    cap, pipe = captioner.model, painter.pipe
    isz = cap.config.vision_config.image_size
    lsz = pipe.unet.config.sample_size
    dtype_c, dtype_p = cap.dtype, pipe.unet.dtype
    # 32 query tokens + a caption (fewer where the LM's positions end sooner)
    tokens = min(64, cap.config.text_config.max_position_embeddings)
    text_len = pipe.text_encoder.config.max_position_embeddings  # 77 for SD's CLIP

    def lm(train: bool):
        def go(b):
            emb = torch.randn(b, tokens, cap.config.text_config.hidden_size, generator=gen,
                              dtype=dtype_c).requires_grad_(train)
            with torch.set_grad_enabled(train):
                out = cap.language_model(inputs_embeds=emb).logits
                if train:
                    out.float().sum().backward()
        return go

    def unet(train: bool):
        def go(b):
            x = torch.randn(b, 4, lsz, lsz, generator=gen, dtype=dtype_p).requires_grad_(train)
            cond = torch.randn(b, text_len, pipe.unet.config.cross_attention_dim, generator=gen,
                               dtype=dtype_p)
            with torch.set_grad_enabled(train):
                out = pipe.unet(x, torch.tensor([500] * b), encoder_hidden_states=cond).sample
                if train:
                    out.float().sum().backward()
        return go

    def simple(fn):
        return lambda b: (torch.no_grad()(fn))(b)

    units = {
        "cap_vision/infer": simple(lambda b: cap.vision_model(pixel_values=torch.randn(
            b, 3, isz, isz, generator=gen, dtype=dtype_c))),
        "qformer/infer": simple(lambda b: cap.get_image_features(pixel_values=torch.randn(
            b, 3, isz, isz, generator=gen, dtype=dtype_c))),
        "lm/infer": lm(False), "lm/train": lm(True),
        "clip_text/infer": simple(lambda b: pipe.text_encoder(torch.randint(
            0, min(400, pipe.text_encoder.config.vocab_size), (b, text_len), generator=gen))),
        "vae_enc/infer": simple(lambda b: pipe.vae.encode(torch.randn(
            b, 3, lsz * 8, lsz * 8, generator=gen, dtype=dtype_p))),
        "vae_dec/infer": simple(lambda b: pipe.vae.decode(torch.randn(
            b, 4, lsz, lsz, generator=gen, dtype=dtype_p))),
        "unet/infer": unet(False), "unet/train": unet(True),
    }
    out = {k: _per_call_and_sample(fn, small, large, repeats) for k, fn in units.items()}
    # the LM's unit is a token: spread its per-sample cost over the sequence
    for k in ("lm/infer", "lm/train"):
        out[k]["per_sample"] /= tokens
        out[k]["flops_per_sample"] /= tokens
    # qformer's unit above ran the vision tower too: keep the Q-Former's share
    for part in ("per_call", "per_sample", "flops_per_sample"):
        out["qformer/infer"][part] = max(0.0, out["qformer/infer"][part]
                                         - out["cap_vision/infer"][part])
    return out


def predict_seconds(work: dict, units: dict, flop_rate: float | None = None,
                    call_scale: float = 1.0) -> float:
    """Seconds of a counted run (`Work.as_dict()`) on the model whose `units` are given;
    kinds without a unit count nothing (the caller reports them). With `flop_rate`
    (FLOP/s) the per-sample time is the unit's FLOPs at that rate (a device not measured
    here), and each call costs `call_scale` times the measured per-call seconds."""
    total = 0.0
    for key, c in work.items():
        u = units.get(key)
        if u is None:
            continue
        on_device = flop_rate is not None and u.get("flops_per_sample")
        # work with no FLOPs (the processor's resizing) stays on the CPU
        per_sample = u["flops_per_sample"] / flop_rate if on_device else u["per_sample"]
        total += c["calls"] * u["per_call"] * call_scale + c["samples"] * per_sample
    return total
