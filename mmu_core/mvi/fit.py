"""Fitting MVI by the ELBO with the generators frozen, and the fit cache (user cache,
then the fits shipped in assets/mvi) so every forget request on the same data reuses one."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from mmu_core.data.loaders import Pair
from mmu_core.models.building import LOCK
from mmu_core.mvi.model import (MVI, Features, MVIConfig, elbo_terms, features, negative_elbo,
                                new_mvi)
from mmu_core.training.distributed import Stepper, noise_generator, shard_of


def fit(captioner, painter, pairs: list[Pair], config: MVIConfig = MVIConfig(),
        feats: Features | None = None) -> tuple[MVI, dict]:
    """Train phi_U', psi and theta_M by the ELBO with the generators frozen."""
    start = time.perf_counter()
    feats = feats if feats is not None else features(captioner, painter, pairs)
    mvi = new_mvi(captioner, painter, config).train()
    parts = {"mvi": mvi}
    if config.adversarial:  # Table 7's discriminator, trained beside MVI and then dropped
        from mmu_core.mvi.auxiliary import new_discriminator

        parts["discriminator"] = new_discriminator(painter, config.seed).train()
    opt = torch.optim.AdamW([p for m in parts.values() for p in m.parameters()], lr=config.lr,
                            weight_decay=0.0)
    gen = torch.Generator().manual_seed(config.seed)
    history, last = [], {}

    def loss_fn(rows):
        terms = elbo_terms(mvi, captioner, painter, feats.select(rows), generator=noise,
                           config=config, discriminator=parts.get("discriminator"))
        last.update({k: v.detach() for k, v in terms.items()})
        return {"loss": negative_elbo(terms, config.kl_weight, config.adversarial,
                                      config.perceptual)}

    # through accelerate like every training loop (training/distributed.py): each process
    # takes its share of the batch the shared generator drew
    # each part clipped on its own: the discriminator's gradient must not shrink MVI's step
    stepper = Stepper(parts, loss_fn, opt, clip=1.0, clip_each=True)
    noise = noise_generator(gen, stepper.acc, config.seed)
    bar = tqdm(range(config.steps), desc="MVI (ELBO)", disable=not stepper.acc.is_main_process,
               mininterval=0.1 if sys.stderr.isatty() else 5.0)
    with stepper:
        for step in bar:
            idx = torch.randint(0, len(feats), (min(config.batch_size, len(feats)),),
                                generator=gen)
            loss = stepper(idx[shard_of(stepper.acc, len(idx)).rows])["loss"]
            if step % 10 == 0 or step == config.steps - 1:
                history.append({"step": step, "loss": round(loss, 4),
                                **{k: round(float(v), 4) for k, v in last.items()}})
                bar.set_postfix(loss=f"{loss:.3f}")
    mvi.eval()
    return mvi, {"seconds": round(time.perf_counter() - start, 2), "pairs": len(feats),
                 "config": asdict(config), "history": history}


# --- cache ------------------------------------------------------------------------------------

def _model_fingerprint(module: nn.Module) -> str:
    total = sum(float(p.double().sum()) for p in module.parameters())
    count = sum(p.numel() for p in module.parameters())
    return f"{count}:{total:.6e}"


ADDED_LATER = {"adversarial": 0.0, "perceptual": 0.0}  # MVIConfig fields -> their "off"


def cache_key(captioner, painter, pairs: list[Pair], config: MVIConfig) -> str:
    """Same generators, same fitting pairs, same settings -> same key. Settings added later
    are left out while off, so the fits made before them keep their keys."""
    settings = {k: v for k, v in asdict(config).items()
                if not (k in ADDED_LATER and v == ADDED_LATER[k])}
    payload = json.dumps({
        "version": 1, "config": settings,
        "captioner": _model_fingerprint(captioner.model),
        "painter": [_model_fingerprint(m) for m in
                    (painter.pipe.unet, painter.pipe.text_encoder, painter.pipe.vae)],
        "pairs": [[p.pair_id, p.group, p.text] for p in pairs],
    }, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def cache_root() -> Path:
    return Path(os.environ.get("MMU_CACHE_DIR", Path.home() / ".cache" / "mmu")) / "mvi"


# Fits shipped with the project (the embedded scenarios, seed 0), read-only: a fresh
# install or Space answers its first forget request without a 15 s fit.
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "mvi"


def _cached_folder(key: str) -> Path | None:
    for root in (cache_root(), SHIPPED):
        if (root / key / "config.json").is_file():
            return root / key
    return None


def fit_pairs(pairs: list[Pair], max_pairs: int, seed: int = 0) -> list[Pair]:
    """A deterministic subsample of the data MVI is fitted on (all of it when small)."""
    if len(pairs) <= max_pairs:
        return list(pairs)
    g = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(pairs), generator=g)[:max_pairs].tolist())
    return [pairs[i] for i in keep]


def fit_or_load(captioner, painter, pairs: list[Pair], config: MVIConfig = MVIConfig(),
                cache: bool = True) -> tuple[MVI, dict]:
    """A fitted MVI for these generators and data: from the cache when it holds one, else
    fitted (and cached). The summary says which (`cache_hit`)."""
    pairs = fit_pairs(pairs, config.max_fit_pairs, config.seed)
    key = cache_key(captioner, painter, pairs, config)
    folder = cache_root() / key
    found = _cached_folder(key) if cache else None
    if found is not None:
        start = time.perf_counter()
        with LOCK:  # see models.building
            mvi = MVI.from_pretrained(found).to(captioner.device).eval()
        summary = json.loads((found / "fit_summary.json").read_text())
        return mvi, {**summary, "cache_hit": True, "cache_key": key,
                     "shipped": found.parent == SHIPPED,
                     "load_seconds": round(time.perf_counter() - start, 3)}
    mvi, summary = fit(captioner, painter, pairs, config)
    if cache:
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        mvi.save_pretrained(tmp)
        (tmp / "fit_summary.json").write_text(json.dumps(summary, indent=1))
        if folder.exists():  # another process cached the same fit meanwhile
            import shutil
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    return mvi, {**summary, "cache_hit": False, "cache_key": key}

