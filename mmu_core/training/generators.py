"""Train the embedded generators on the generic pretraining corpus only (never on task data
or forget sets): `python -m mmu_core train-generators --data WORLD --out DIR`.

captioner: BLIP-2 trained end to end on captioning (the LM's next-token loss after the
           Q-Former prefix)
painter:   the VAE on the images (reconstruction + a small KL), then the UNet and the CLIP
           text encoder on epsilon prediction, with 10% empty prompts so classifier-free
           guidance works
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mmu_core.data.loaders import Pair, open_image
from mmu_core.training.distributed import Stepper, noise_generator, shard_of


def _bar(total, desc, acc):
    return tqdm(total=total, desc=desc, mininterval=0.1 if sys.stderr.isatty() else 10.0,
                disable=not acc.is_main_process)


def _log(log, acc, record: dict) -> None:
    if acc.is_main_process:
        log(json.dumps(record))


def _schedule(opt, total, warmup=50):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total))))))


def train_captioner(cap, pairs: list[Pair], epochs: int = 6, lr: float = 2e-3,
                    batch_size: int = 32, seed: int = 0, log=print) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = cap.model.train().requires_grad_(True)
    pix = torch.cat([cap.pixels([open_image(p) for p in pairs[s:s + 256]])
                     for s in range(0, len(pairs), 256)])
    steps = math.ceil(len(pairs) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    stepper = Stepper({"captioner": model}, lambda idx: {"lm": cap.lm_loss(
        cap.knowledge(pix[idx]), [pairs[i].text for i in idx])}, opt,
        _schedule(opt, steps * epochs), clip=1.0)
    bar, history, t0 = _bar(steps * epochs, "captioner", stepper.acc), [], time.time()
    for epoch in range(epochs):
        order, total = rng.permutation(len(pairs)), 0.0
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]  # every process: its rows
            total += stepper(idx[shard_of(stepper.acc, len(idx)).rows])["lm"]
            bar.update(1)
        history.append({"epoch": epoch + 1, "lm_loss": total / steps,
                        "elapsed_s": round(time.time() - t0, 1)})
        _log(log, stepper.acc, history[-1])
    stepper.close()
    bar.close()
    model.eval().requires_grad_(False)
    return {"history": history, "seconds": round(time.time() - t0, 1)}


def train_painter(painter, pairs: list[Pair], vae_epochs: int = 4, unet_epochs: int = 30,
                  lr: float = 1e-3, batch_size: int = 32, seed: int = 0, log=print) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    pipe = painter.pipe
    images = sorted({p.image: p for p in pairs}.values(), key=lambda p: p.image)
    pix_of = {p.image: i for i, p in enumerate(images)}
    pix = torch.cat([painter.pixels([open_image(p) for p in images[s:s + 256]])
                     for s in range(0, len(images), 256)])
    t0, out = time.time(), {}

    # 1. VAE: reconstruction + a light KL keeps the latents near N(0, I).
    vae = pipe.vae.train().requires_grad_(True)
    steps = math.ceil(len(images) / batch_size)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr)

    def vae_loss(x):
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=noise)).sample
        return {"vae": F.mse_loss(rec, x) + 1e-6 * post.kl().mean()}

    stepper = Stepper({"vae": vae}, vae_loss, opt, _schedule(opt, steps * vae_epochs))
    noise = noise_generator(gen, stepper.acc, seed)
    bar, hist = _bar(steps * vae_epochs, "vae", stepper.acc), []
    for epoch in range(vae_epochs):
        order, total = rng.permutation(len(images)), 0.0
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            total += stepper(pix[idx[shard_of(stepper.acc, len(idx)).rows]])["vae"]
            bar.update(1)
        hist.append({"epoch": epoch + 1, "vae_loss": total / steps})
        _log(log, stepper.acc, hist[-1])
    stepper.close()
    bar.close()
    vae.eval().requires_grad_(False)
    out["vae"] = hist
    with torch.no_grad():  # latents fixed from here on (the posterior mean, scaled)
        lat = torch.cat([vae.encode(pix[s:s + 256]).latent_dist.mean
                         for s in range(0, len(pix), 256)])
        scale = float(1.0 / lat.std())
    pipe.vae.register_to_config(scaling_factor=scale)
    lat = lat * scale

    # 2. UNet + text encoder on epsilon prediction, 10% empty prompts.
    modules = [pipe.unet, pipe.text_encoder]
    params = [q for m in modules for q in m.parameters()]
    for m in modules:
        m.train().requires_grad_(True)
    steps = math.ceil(len(pairs) / batch_size)
    opt = torch.optim.AdamW(params, lr=lr)

    def unet_loss(idx, texts):
        return {"denoise": painter.denoise_loss(
            lat[[pix_of[pairs[i].image] for i in idx]], painter.knowledge(texts), noise)}

    stepper = Stepper({"unet": pipe.unet, "text_encoder": pipe.text_encoder}, unet_loss, opt,
                      _schedule(opt, steps * unet_epochs), clip=1.0)
    noise = noise_generator(gen, stepper.acc, seed)
    bar, hist = _bar(steps * unet_epochs, "unet", stepper.acc), []
    for epoch in range(unet_epochs):
        order, total = rng.permutation(len(pairs)), 0.0
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            texts = ["" if rng.random() < 0.1 else pairs[i].text for i in idx]
            rows = shard_of(stepper.acc, len(idx)).rows
            total += stepper(idx[rows], texts[rows])["denoise"]
            bar.update(1)
        hist.append({"epoch": epoch + 1, "denoise_loss": total / steps,
                     "elapsed_s": round(time.time() - t0, 1)})
        _log(log, stepper.acc, hist[-1])
    stepper.close()
    bar.close()
    for m in modules:
        m.eval().requires_grad_(False)
    out["unet"] = hist
    out["seconds"] = round(time.time() - t0, 1)
    return out


def train_and_save(kind: str, size, pairs: list[Pair], folder, seed: int = 0,
                   captioner_epochs: int = 6, vae_epochs: int = 4, unet_epochs: int = 30,
                   provenance: dict | None = None) -> Path:
    """Build a generator of `kind` ("captioner" or "painter") at `size`
    (`CaptionerSize` / `PainterSize`), train it by its recipe on `pairs` and save it (main
    process) to `folder` with its train_summary.json (holding `provenance`, which the
    caller makes: metrics is not a layer training may import). Returns the folder."""
    from mmu_core.models.embedded_generators import new_captioner, new_painter
    from mmu_core.models.generators import save_captioner, save_painter
    from mmu_core.training.distributed import accelerator

    texts = [p.text for p in pairs]
    if kind == "captioner":
        gen = new_captioner(texts, size, seed=seed)
        summary = train_captioner(gen, pairs, epochs=captioner_epochs, seed=seed)
    elif kind == "painter":
        gen = new_painter(texts, size, seed=seed)
        summary = train_painter(gen, pairs, vae_epochs=vae_epochs, unet_epochs=unet_epochs,
                                seed=seed)
    else:
        raise ValueError(f"unknown generator kind {kind!r}: 'captioner' or 'painter'")
    folder = Path(folder)
    if accelerator().is_main_process:  # under several processes only the main one writes
        (save_captioner if kind == "captioner" else save_painter)(gen, folder)
        summary["provenance"] = provenance
        (folder / "train_summary.json").write_text(json.dumps(summary, indent=1))
    accelerator().wait_for_everyone()  # no process reads the folder before it is written
    return folder


def train_variant(name: str, data, out, seed: int = 0, captioner_epochs: int = 6,
                  vae_epochs: int = 4, unet_epochs: int = 30, provenance: dict | None = None
                  ) -> Path:
    """Another generator of the same class for the paper's Table 8 (`VARIANTS`: "t5", "v2"),
    trained by the recipe of the shipped one on the same generic corpus, into
    out/<kind>-<name> (`train_and_save`)."""
    from mmu_core.models.embedded_generators import VARIANTS
    from mmu_core.training.recipes import pretrain_pairs

    if name not in VARIANTS:
        raise ValueError(f"unknown generator variant {name!r}; choose from {sorted(VARIANTS)}")
    kind, size = VARIANTS[name]
    # generic corpus only: never task data or forget sets
    return train_and_save(kind, size, pretrain_pairs(data), Path(out) / f"{kind}-{name}", seed,
                          captioner_epochs, vae_epochs, unet_epochs, provenance)
