"""Auxiliary generation losses beside the ELBO (paper appendix, Table 7): an adversarial
loss (Goodfellow et al.) and a perceptual loss (Lin & Yang 2024, the diffusion model's
self-perceptual objective), both on the image decoder's reconstruction of X_1.

Both read the clean latents the frozen UNet implies in one denoising step from
[K'; psi_1(U'_1)] (`Painter.denoise`), at timesteps in the first half of the schedule
(`MAX_T`), where one step's prediction is an image rather than a blur:

- adversarial: a small discriminator on VAE latents tells the batch's own latents from the
  predicted ones; MVI is trained to fool it (non-saturating loss), the discriminator to
  tell them apart, in the same backward pass (its own loss reaches only its weights, and
  `fit` clips each one's gradient on its own, so neither shrinks the other's step);
- perceptual: the frozen UNet's mid-block features of the predicted and of the true
  latents, noised again to one shared timestep with one shared noise, are held close.

Text reconstruction stays the LM's likelihood: both cited losses are defined on images
(docs/method.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from mmu_core.models.building import serialised

MAX_T = 500  # of the 1000 training timesteps


class LatentDiscriminator(nn.Module):
    """Real VAE latents vs the UNet's one-step predictions: [B, C, h, w] -> logit [B]."""

    def __init__(self, channels: int, size: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, 2 * hidden, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
            nn.Linear(2 * hidden * ((size + 1) // 2) ** 2, 1))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents).squeeze(-1)


@serialised
def new_discriminator(painter, seed: int) -> LatentDiscriminator:
    torch.manual_seed(seed)
    unet = painter.pipe.unet
    return LatentDiscriminator(unet.config.in_channels, unet.config.sample_size).to(
        painter.device)


def auxiliary_terms(painter, latents: torch.Tensor, cond: torch.Tensor, adversarial: float,
                    perceptual: float, discriminator: LatentDiscriminator | None = None,
                    generator: torch.Generator | None = None) -> dict:
    """The switched-on terms for a batch (scalars): "adversarial" (MVI's, against a
    discriminator it cannot move), "discriminator" (the discriminator's own) and
    "perceptual". `cond` is the image decoder's conditioning [K'; psi_1(U'_1)]."""
    out = {}
    _, clean = painter.denoise(latents, cond, generator, max_t=MAX_T)
    if adversarial:
        if discriminator is None:
            raise ValueError("the adversarial loss needs a discriminator")
        # MVI's loss through a detached copy of the weights: it moves MVI, not them
        frozen = {k: v.detach() for k, v in discriminator.named_parameters()}
        out["adversarial"] = F.softplus(-functional_call(discriminator, frozen, (clean,))).mean()
        out["discriminator"] = (F.softplus(-discriminator(latents)).mean()
                                + F.softplus(discriminator(clean.detach())).mean())
    if perceptual:
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        t = torch.randint(0, MAX_T, (latents.shape[0],), generator=generator).to(latents.device)
        with torch.no_grad():
            target = painter.perceptual_features(latents, cond.detach(), t, noise)
        out["perceptual"] = F.mse_loss(
            painter.perceptual_features(clean, cond.detach(), t, noise), target)
    return out
