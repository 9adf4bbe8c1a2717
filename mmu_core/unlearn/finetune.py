"""Finetune: continue the original's training loss on D_r only, so that D_f fades by
catastrophic forgetting (the usual unlearning baseline, e.g. Golatkar et al. 2020)."""

from __future__ import annotations

import functools

import torch

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request, group_ids, optimiser, sample


@register("finetune")
def finetune(request: Request, steps: int = 60, lr: float = 1e-4, batch_size: int = 32):
    from mmu_core.data.loaders import open_image
    from mmu_core.training.distributed import Stepper, shard_of
    from mmu_core.training.recipes import recipe_losses

    bb = request.fresh_model()
    gen = torch.Generator().manual_seed(request.seed)
    # the recipes' training step (accelerate: any device, any process count)
    with Stepper({"bb": bb}, functools.partial(recipe_losses, bb), optimiser(bb, lr),
                 clip=5.0) as stepper:
        for _ in range(steps):
            batch = sample(request.retain, batch_size, gen)  # the same in every process
            shard = shard_of(stepper.acc, len(batch))
            ids, mask = bb.tokenize([p.text for p in batch])
            stepper(bb.pixels([open_image(p) for p in batch[shard.rows]]), ids, mask,
                    group_ids(batch).to(bb.device), gen, shard)
    return bb, {"steps": steps, "lr": lr}
