"""Text-to-image generator: a diffusers `StableDiffusionPipeline` (real: an SD 1.5 / 2.1
id), frozen.

For MVI it offers K' of a text (the CLIP text encoder's hidden states: what SD itself
feeds its UNet) and its image decoder (the UNet with the VAE), conditioned on any sequence
of conditioning tokens, for the denoising loss and for generation through
`prompt_embeds`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Painter:
    def __init__(self, pipe):
        self.pipe = pipe
        for m in (pipe.vae, pipe.text_encoder, pipe.unet):
            m.eval().requires_grad_(False)
        self.pipe.set_progress_bar_config(disable=True)

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def cond_dim(self) -> int:
        return self.pipe.text_encoder.config.hidden_size

    @property
    def image_size(self) -> int:
        return self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor

    def knowledge(self, texts: list[str]) -> torch.Tensor:
        """K' of texts: [B, max_length, cond_dim]."""
        tok = self.pipe.tokenizer
        ids = tok(list(texts), padding="max_length", truncation=True,
                  max_length=tok.model_max_length, return_tensors="pt").input_ids
        return self.pipe.text_encoder(ids.to(self.device))[0]

    def pixels(self, images) -> torch.Tensor:
        """PIL images -> [-1, 1] tensors at the model's resolution."""
        import numpy as np

        size = self.image_size
        arr = np.stack([np.asarray(im.convert("RGB").resize((size, size))) for im in images])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return x.to(self.device)

    def latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        return vae.encode(pixel_values).latent_dist.sample() * vae.config.scaling_factor

    def latents_mean(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The VAE posterior's mean (deterministic targets for MVI's reconstruction)."""
        vae = self.pipe.vae
        return vae.encode(pixel_values).latent_dist.mean * vae.config.scaling_factor

    def denoise(self, latents: torch.Tensor, cond: torch.Tensor,
                generator: torch.Generator | None = None, max_t: int | None = None):
        """One denoising step at a random timestep t < max_t (default: the whole schedule):
        the per-sample epsilon-prediction MSE (the UNet's training loss) and the clean
        latents it implies, x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)."""
        sched = self.pipe.scheduler
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        t = torch.randint(0, max_t or sched.config.num_train_timesteps, (latents.shape[0],),
                          generator=generator).to(latents.device)
        noisy = sched.add_noise(latents, noise, t)
        pred = self.pipe.unet(noisy, t, encoder_hidden_states=cond).sample
        a = sched.alphas_cumprod.to(latents.device)[t].view(-1, 1, 1, 1)
        clean = (noisy - (1 - a).sqrt() * pred) / a.sqrt()
        return F.mse_loss(pred, noise, reduction="none").flatten(1).mean(1), clean

    def denoise_loss(self, latents: torch.Tensor, cond: torch.Tensor,
                     generator: torch.Generator | None = None,
                     reduction: str = "mean") -> torch.Tensor:
        """The UNet's own training loss (epsilon prediction MSE at a random timestep),
        conditioned on `cond` [B, T, cond_dim]."""
        per_sample = self.denoise(latents, cond, generator)[0]
        return per_sample.mean() if reduction == "mean" else per_sample

    def perceptual_features(self, latents: torch.Tensor, cond: torch.Tensor,
                            t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The UNet's mid-block output for `latents` noised to t with `noise`: the frozen
        diffusion model as its own perceptual network (Lin & Yang 2024)."""
        got = []
        hook = self.pipe.unet.mid_block.register_forward_hook(lambda m, i, o: got.append(o))
        try:
            self.pipe.unet(self.pipe.scheduler.add_noise(latents, noise, t), t,
                           encoder_hidden_states=cond)
        finally:
            hook.remove()
        return got[0]

    @torch.no_grad()
    def generate(self, cond: torch.Tensor, steps: int = 20, guidance: float = 3.0,
                 seed: int = 0):
        """PIL images from conditioning tokens, with classifier-free guidance against the
        empty prompt's K' (padded to the same length, as the pipeline requires)."""
        uncond = self.knowledge([""] * cond.shape[0])
        if cond.shape[1] > uncond.shape[1]:
            pad = uncond[:, -1:].expand(-1, cond.shape[1] - uncond.shape[1], -1)
            uncond = torch.cat([uncond, pad], 1)
        gen = torch.Generator().manual_seed(seed)
        size = self.image_size
        return self.pipe(prompt_embeds=cond, negative_prompt_embeds=uncond[:, :cond.shape[1]],
                         num_inference_steps=steps, guidance_scale=guidance, generator=gen,
                         height=size, width=size, output_type="pil").images
