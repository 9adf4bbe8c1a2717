"""MVI's learnable part (phi_U'_1, phi_U'_2, psi_1, psi_2, theta_M), the features the
frozen generators supply, the ELBO of Eq. 2 and the Table 5 modality probe.

The ELBO's reconstruction terms are the frozen decoders' own losses: the UNet's denoising
loss of X_1 conditioned on [K'; psi_1(U'_1)] with K' = CLIP(X_2), and the LM's negative
log-likelihood of X_2 conditioned on [K'; psi_2(U'_2)] with K' = Q-Former(X_1) (the reading
chosen in docs/method.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin

from mmu_core.data.inputs import InputError
from mmu_core.data.loaders import Pair, open_image
from mmu_core.models.building import serialised

IMAGE, TEXT = 0, 1  # theta_M's classes
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
    # auxiliary generation losses beside the ELBO (Table 7; mvi/auxiliary.py), 0 = off
    adversarial: float = 0.0
    perceptual: float = 0.0


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


@serialised
def new_mvi(captioner, painter, config: MVIConfig = MVIConfig()) -> MVI:
    tok = painter.pipe.tokenizer
    torch.manual_seed(config.seed)
    return MVI(latent_dim=config.latent_dim, cond_tokens=config.cond_tokens,
               hidden=config.hidden, vocab_size=len(tok),
               pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 0,
               image_cond_dim=painter.cond_dim, text_cond_dim=captioner.lm_dim
               ).to(captioner.device)


# --- Eq. 2 ------------------------------------------------------------------------------------

def elbo_terms(mvi: MVI, captioner, painter, f: Features, generator=None,
               config: MVIConfig | None = None, discriminator=None) -> dict:
    """The negative ELBO's terms for a batch (each a scalar, mean over the batch):
    modality cross-entropy (-log p(M|U')), the two reconstruction losses, and the two KLs;
    with `config`'s auxiliary weights on, the Table 7 terms too (mvi/auxiliary.py)."""
    mu1, lv1 = mvi.encode_image(f.pixels)
    mu2, lv2 = mvi.encode_text(f.ids)
    u1, u2 = sample(mu1, lv1, generator), sample(mu2, lv2, generator)
    logits = mvi.modality(torch.cat([u1, u2]))
    labels = torch.tensor([IMAGE] * len(u1) + [TEXT] * len(u2), device=logits.device)
    cond_image = torch.cat([f.k_text, mvi.psi(u1, "image")], 1)
    terms = {
        "modality": F.cross_entropy(logits, labels),
        "rec_image": painter.denoise_loss(f.latents, cond_image, generator=generator),
        "rec_text": captioner.lm_loss(torch.cat([f.k_image, mvi.psi(u2, "text")], 1), f.texts,
                                        ignore_unknown=True),
        "kl_image": kl_to_prior(mu1, lv1).mean(),
        "kl_text": kl_to_prior(mu2, lv2).mean(),
    }
    if config is not None and (config.adversarial or config.perceptual):
        from mmu_core.mvi.auxiliary import auxiliary_terms

        terms.update(auxiliary_terms(painter, f.latents, cond_image, config.adversarial,
                                     config.perceptual, discriminator, generator))
    return terms


def negative_elbo(terms: dict, kl_weight: float, adversarial: float = 0.0,
                  perceptual: float = 0.0) -> torch.Tensor:
    """Reconstruction terms are per-element means (the decoders' own losses), so the KL is
    weighted to the same scale; kl_weight=1 with summed log-likelihoods is the plain ELBO.
    The auxiliary terms add with their weights; the discriminator's own loss adds as it
    is (it reaches only the discriminator's weights)."""
    loss = (terms["modality"] + terms["rec_image"] + terms["rec_text"]
            + kl_weight * (terms["kl_image"] + terms["kl_text"]))
    for name, weight in (("adversarial", adversarial), ("perceptual", perceptual)):
        if name in terms:
            loss = loss + weight * terms[name]
    return loss + terms.get("discriminator", 0.0)


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

