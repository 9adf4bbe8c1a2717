"""Multimodal variational inference (MVI), paper section 4.2, Eq. 1-2 and appendix A.

Frozen cross-modal generators supply the modal-consistent knowledge K' and the decoders
theta_i; this module holds what MVI learns:

- phi_U'_1, phi_U'_2: Gaussian encoders (mean, log-variance; reparameterised) of the
  modal-specific knowledge U'_i of an image (X_1) and of a text (X_2), both into R^d;
- psi_1, psi_2: projectors from U' to a few conditioning tokens in decoder i's space
  (CLIP's for the image decoder, the LM's input space for the text decoder);
- theta_M: the modality classifier p(M | U').

The ELBO's reconstruction terms are the frozen decoders' own losses: the UNet's denoising
loss of X_1 conditioned on [K'; psi_1(U'_1)] with K' = CLIP(X_2), and the LM's negative
log-likelihood of X_2 conditioned on [K'; psi_2(U'_2)] with K' = Q-Former(X_1) (the reading
chosen in docs/method.md). Anchors swap: R_2 = LM([Q-Former(X_1); psi_2(U'_1)]) and
R_1 = UNet([CLIP(X_2); psi_1(U'_2)]).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from tqdm.auto import tqdm

from .data.loaders import Pair, open_image
from .inputs import InputError

IMAGE, TEXT = 0, 1  # theta_M's classes
STRATEGIES = ("swap", "no_swap", "only_u", "only_k", "random")  # paper Table 3
ENCODER_IMAGE_SIZE = 32  # phi_U'_1 reads a 32x32 thumbnail, whatever the painter's size


@dataclass(frozen=True)
class MVIConfig:
    latent_dim: int = 16
    cond_tokens: int = 4
    hidden: int = 256
    kl_weight: float = 0.01
    steps: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    max_fit_pairs: int = 1024
    seed: int = 0


class MVI(nn.Module, PyTorchModelHubMixin):
    """The learnable part of MVI; `save_pretrained` / `from_pretrained` (safetensors +
    config.json) come from huggingface_hub's mixin."""

    def __init__(self, latent_dim: int = 16, cond_tokens: int = 4, hidden: int = 256,
                 vocab_size: int = 2000, pad_token_id: int = 0, image_cond_dim: int = 128,
                 text_cond_dim: int = 128):
        super().__init__()
        self.latent_dim, self.cond_tokens = latent_dim, cond_tokens
        self.pad_token_id = pad_token_id
        d = latent_dim
        self.image_encoder = nn.Sequential(  # phi_U'_1
            nn.Conv2d(3, 32, 3, 2, 1), nn.SiLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.SiLU(), nn.Flatten(),
            nn.Linear(64 * (ENCODER_IMAGE_SIZE // 8) ** 2, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * d))
        self.token_embedding = nn.Embedding(vocab_size, 64)  # phi_U'_2: embeddings, pooled
        self.text_encoder = nn.Sequential(nn.Linear(128, hidden), nn.SiLU(),
                                          nn.Linear(hidden, 2 * d))
        self.psi_image = nn.Linear(d, cond_tokens * image_cond_dim)  # psi_1
        self.psi_text = nn.Linear(d, cond_tokens * text_cond_dim)  # psi_2
        self.modality = nn.Sequential(nn.Linear(d, 32), nn.SiLU(), nn.Linear(32, 2))  # theta_M
        for psi in (self.psi_image, self.psi_text):  # start as a small perturbation of K'
            nn.init.normal_(psi.weight, std=0.02)
            nn.init.zeros_(psi.bias)

    # q(U'_i | X_i)
    def encode_image(self, pixels: torch.Tensor):
        """pixels in [-1, 1], any size -> (mean, log-variance) of U'_1, [B, d] each."""
        if pixels.shape[-1] != ENCODER_IMAGE_SIZE:
            pixels = F.interpolate(pixels, size=ENCODER_IMAGE_SIZE, mode="bilinear",
                                   antialias=True, align_corners=False)
        return self.image_encoder(pixels).chunk(2, dim=-1)

    def encode_text(self, ids: torch.Tensor):
        """token ids [B, T] (padding = pad_token_id) -> (mean, log-variance) of U'_2."""
        emb = self.token_embedding(ids)
        mask = (ids != self.pad_token_id).unsqueeze(-1).float()
        mean = (emb * mask).sum(1) / mask.sum(1).clamp(min=1)
        peak = emb.masked_fill(mask == 0, -1e4).max(1).values
        return self.text_encoder(torch.cat([mean, peak], -1)).chunk(2, dim=-1)

    def psi(self, u: torch.Tensor, space: str) -> torch.Tensor:
        """psi_1 (space="image") or psi_2 (space="text"): U' [B, d] -> [B, cond_tokens, D]."""
        layer = self.psi_image if space == "image" else self.psi_text
        return layer(u).view(u.shape[0], self.cond_tokens, -1)

    def to_latent(self, knowledge: torch.Tensor, space: str) -> torch.Tensor:
        """K' [B, T, D] back to R^d for the Table 5 probe: the least-squares U' whose
        psi-projection has K's token mean (pseudo-inverse of the token-averaged psi)."""
        layer = self.psi_image if space == "image" else self.psi_text
        w = layer.weight.view(self.cond_tokens, -1, self.latent_dim).mean(0)  # [D, d]
        b = layer.bias.view(self.cond_tokens, -1).mean(0)
        return (knowledge.mean(1) - b) @ torch.linalg.pinv(w).T


def sample(mean: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
    """Reparameterised draw from N(mean, exp(logvar))."""
    eps = torch.randn(mean.shape, generator=generator).to(mean.device)
    return mean + eps * (0.5 * logvar).exp()


def kl_to_prior(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample, summed over dimensions."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


# --- inputs the frozen generators see -------------------------------------------------------

@dataclass
class Features:
    """Everything MVI needs from a batch of pairs, computed once with frozen models."""
    texts: list
    pixels: torch.Tensor  # [B, 3, S, S] in [-1, 1] at the painter's size (phi_U'_1's input)
    latents: torch.Tensor  # VAE latents of the images (the image decoder's target)
    ids: torch.Tensor  # painter-tokenizer ids of the texts (phi_U'_2's input)
    k_image: torch.Tensor  # K' of X_1: Q-Former outputs in the LM space [B, Q, D_lm]
    k_text: torch.Tensor  # K' of X_2: CLIP hidden states [B, T, D_clip]

    def __len__(self):
        return len(self.texts)

    def select(self, idx) -> "Features":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Features([self.texts[i] for i in idx.tolist()],
                        *(getattr(self, f)[idx] for f in
                          ("pixels", "latents", "ids", "k_image", "k_text")))


def _check_pair(p: Pair) -> tuple:
    text = (p.text or "").strip()
    if not text:
        raise InputError(f"pair {p.pair_id}: the text is empty")
    return open_image(p), text  # a corrupt or missing image raises DataError naming it


@torch.no_grad()
def features(captioner, painter, pairs: list[Pair], chunk: int = 64) -> Features:
    """Texts longer than a generator's tokenizer allows are truncated there (CLIP: its
    model_max_length; the LM: 40 tokens), as the generators themselves do."""
    if not pairs:
        raise InputError("no pairs given")
    parts = []
    for s in range(0, len(pairs), chunk):
        images, texts = zip(*(_check_pair(p) for p in pairs[s:s + chunk]))
        pix = painter.pixels(images)
        tok = painter.pipe.tokenizer
        ids = tok(list(texts), padding="max_length", truncation=True,
                  max_length=tok.model_max_length, return_tensors="pt").input_ids
        parts.append(Features(list(texts), pix, painter.latents_mean(pix), ids.to(pix.device),
                              captioner.knowledge(captioner.pixels(images)),
                              painter.knowledge(list(texts))))
    return Features(sum((p.texts for p in parts), []),
                    *(torch.cat([getattr(p, f) for p in parts]) for f in
                      ("pixels", "latents", "ids", "k_image", "k_text")))


def new_mvi(captioner, painter, config: MVIConfig = MVIConfig()) -> MVI:
    tok = painter.pipe.tokenizer
    torch.manual_seed(config.seed)
    return MVI(latent_dim=config.latent_dim, cond_tokens=config.cond_tokens,
               hidden=config.hidden, vocab_size=len(tok),
               pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 0,
               image_cond_dim=painter.cond_dim, text_cond_dim=captioner.lm_dim
               ).to(captioner.device)


# --- Eq. 2 ------------------------------------------------------------------------------------

def elbo_terms(mvi: MVI, captioner, painter, f: Features, generator=None) -> dict:
    """The negative ELBO's terms for a batch (each a scalar, mean over the batch):
    modality cross-entropy (-log p(M|U')), the two reconstruction losses, and the two KLs."""
    mu1, lv1 = mvi.encode_image(f.pixels)
    mu2, lv2 = mvi.encode_text(f.ids)
    u1, u2 = sample(mu1, lv1, generator), sample(mu2, lv2, generator)
    logits = mvi.modality(torch.cat([u1, u2]))
    labels = torch.tensor([IMAGE] * len(u1) + [TEXT] * len(u2), device=logits.device)
    return {
        "modality": F.cross_entropy(logits, labels),
        "rec_image": painter.denoise_loss(
            f.latents, torch.cat([f.k_text, mvi.psi(u1, "image")], 1), generator=generator),
        "rec_text": captioner.lm_loss(torch.cat([f.k_image, mvi.psi(u2, "text")], 1), f.texts,
                                        ignore_unknown=True),
        "kl_image": kl_to_prior(mu1, lv1).mean(),
        "kl_text": kl_to_prior(mu2, lv2).mean(),
    }


def negative_elbo(terms: dict, kl_weight: float) -> torch.Tensor:
    """Reconstruction terms are per-element means (the decoders' own losses), so the KL is
    weighted to the same scale; kl_weight=1 with summed log-likelihoods is the plain ELBO."""
    return (terms["modality"] + terms["rec_image"] + terms["rec_text"]
            + kl_weight * (terms["kl_image"] + terms["kl_text"]))


def fit(captioner, painter, pairs: list[Pair], config: MVIConfig = MVIConfig(),
        feats: Features | None = None) -> tuple[MVI, dict]:
    """Train phi_U', psi and theta_M by the ELBO with the generators frozen."""
    start = time.perf_counter()
    feats = feats if feats is not None else features(captioner, painter, pairs)
    mvi = new_mvi(captioner, painter, config).train()
    opt = torch.optim.AdamW(mvi.parameters(), lr=config.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    bar = tqdm(range(config.steps), desc="MVI (ELBO)",
               mininterval=0.1 if sys.stderr.isatty() else 5.0)
    for step in bar:
        idx = torch.randint(0, len(feats), (min(config.batch_size, len(feats)),), generator=gen)
        terms = elbo_terms(mvi, captioner, painter, feats.select(idx), generator=gen)
        loss = negative_elbo(terms, config.kl_weight)
        terms = {k: v.detach() for k, v in terms.items()}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(mvi.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == config.steps - 1:
            history.append({"step": step, "loss": round(float(loss.detach()), 4),
                            **{k: round(float(v), 4) for k, v in terms.items()}})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    mvi.eval()
    return mvi, {"seconds": round(time.perf_counter() - start, 2), "pairs": len(feats),
                 "config": asdict(config), "history": history}


# --- cache ------------------------------------------------------------------------------------

def _model_fingerprint(module: nn.Module) -> str:
    total = sum(float(p.double().sum()) for p in module.parameters())
    count = sum(p.numel() for p in module.parameters())
    return f"{count}:{total:.6e}"


def cache_key(captioner, painter, pairs: list[Pair], config: MVIConfig) -> str:
    """Same generators, same fitting pairs, same settings -> same key."""
    payload = json.dumps({
        "version": 1, "config": asdict(config),
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
SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "mvi"


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


# --- anchors (section 4.1: swapping encoders and decoders) -------------------------------------

@dataclass
class Anchors:
    pair_id: str
    text: str  # the forgetting text X_2
    images: list  # R_1: PIL images
    texts: list  # R_2: strings


def _draws(mean, logvar, n: int, generator) -> list[torch.Tensor]:
    """The posterior mean first, then reparameterised draws."""
    return [mean] + [sample(mean, logvar, generator) for _ in range(n - 1)]


@torch.no_grad()
def anchors(mvi: MVI, captioner, painter, pairs: list[Pair], strategy: str = "swap",
            n_images: int = 1, n_texts: int = 1, seed: int = 0, pool: list[Pair] | None = None,
            guidance: float = 3.0, steps: int = 20) -> list[Anchors]:
    """R_1 (images) and R_2 (texts) for each forgetting pair, by a Table 3 strategy:
    swap (ours): R_2 = LM([K'(X_1); psi_2(U'_1)]), R_1 = UNet([K'(X_2); psi_1(U'_2)]);
    no_swap: each modality's own U' (R_j reconstructs X_j); only_u / only_k: one factor;
    random: X_j of other pairs in `pool` (other groups)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown anchor strategy {strategy!r}; choose from {STRATEGIES}")
    if n_images < 1 or n_texts < 1:
        raise ValueError("n_images and n_texts must be at least 1")
    if strategy == "random":
        return _random_anchors(pairs, pool, n_images, n_texts, seed)
    f = features(captioner, painter, pairs)
    gen = torch.Generator().manual_seed(seed)
    mu1, lv1 = mvi.encode_image(f.pixels)
    mu2, lv2 = mvi.encode_text(f.ids)
    # which U' goes to which decoder
    u_for_text, u_for_image = {"swap": ((mu1, lv1), (mu2, lv2)),
                               "no_swap": ((mu2, lv2), (mu1, lv1)),
                               "only_u": ((mu1, lv1), (mu2, lv2)),
                               "only_k": (None, None)}[strategy]
    texts = []
    for u in (_draws(*u_for_text, n_texts, gen) if u_for_text else [None] * n_texts):
        parts = ([] if strategy == "only_u" else [f.k_image]) + (
            [] if u is None else [mvi.psi(u, "text")])
        texts.append(captioner.generate(torch.cat(parts, 1)))
    images = []
    for k, u in enumerate(_draws(*u_for_image, n_images, gen) if u_for_image
                          else [None] * n_images):
        parts = ([] if strategy == "only_u" else [f.k_text]) + (
            [] if u is None else [mvi.psi(u, "image")])
        images.append(painter.generate(torch.cat(parts, 1), steps=steps, guidance=guidance,
                                       seed=seed + k))
    return [Anchors(p.pair_id, f.texts[i], [ims[i] for ims in images], [ts[i] for ts in texts])
            for i, p in enumerate(pairs)]


def _random_anchors(pairs, pool, n_images, n_texts, seed) -> list[Anchors]:
    import random

    if not pool:
        raise ValueError("the 'random' strategy needs a pool of pairs to draw X_j from")
    rng = random.Random(seed)
    out = []
    for p in pairs:
        others = [q for q in pool if q.group != p.group]
        if not others:
            raise ValueError(f"no pair outside group {p.group} to draw from")
        out.append(Anchors(p.pair_id, p.text,
                           [open_image(rng.choice(others)) for _ in range(n_images)],
                           [rng.choice(others).text for _ in range(n_texts)]))
    return out


# --- Table 5 -----------------------------------------------------------------------------------

@torch.no_grad()
def modality_probe(mvi: MVI, f: Features) -> dict:
    """theta_M's accuracy (%) at naming the modality each factor came from: U'_1 and K'_1
    from images, U'_2 and K'_2 from texts (K' through `MVI.to_latent`)."""
    inputs = {"U'_1": (mvi.encode_image(f.pixels)[0], IMAGE),
              "U'_2": (mvi.encode_text(f.ids)[0], TEXT),
              "K'_1": (mvi.to_latent(f.k_image, "text"), IMAGE),
              "K'_2": (mvi.to_latent(f.k_text, "image"), TEXT)}
    out = {}
    for name, (z, label) in inputs.items():
        pred = mvi.modality(z).argmax(-1)
        out[name] = {"A_image": round(100 * float((pred == IMAGE).float().mean()), 2),
                     "A_text": round(100 * float((pred == TEXT).float().mean()), 2),
                     "accuracy": round(100 * float((pred == label).float().mean()), 2)}
    return out


def write_anchors(items: list[Anchors], out: str | Path) -> Path:
    """R_1 as PNGs under out/R1/, R_2 and the file index in out/anchors.json."""
    out = Path(out)
    (out / "R1").mkdir(parents=True, exist_ok=True)
    index = []
    for a in items:
        files = []
        for k, im in enumerate(a.images):
            name = f"R1/{a.pair_id}_{k}.png"
            im.save(out / name)
            files.append(name)
        index.append({"pair_id": a.pair_id, "text": a.text, "R1": files, "R2": a.texts})
    (out / "anchors.json").write_text(json.dumps(index, indent=1))
    return out / "anchors.json"
