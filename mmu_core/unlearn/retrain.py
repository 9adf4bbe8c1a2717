"""Retrain: the original recipe on D_r only, from the pretrained weights (the gold
standard every other method is measured against)."""

from __future__ import annotations

import tempfile

from mmu_core.unlearn import register
from mmu_core.unlearn.request import Request


@register("retrain")
def retrain(request: Request, epochs: int | None = None):
    from mmu_core.models.backbone import load_backbone
    from mmu_core.training.recipes import RECIPES, scenario_inputs, train

    bb = request.extras.get("pretrained") or load_backbone("embedded:pretrained")
    bb = bb.copy()
    # the scenario's recipe, or the one the caller names (real models: BLIP's fine-tuning)
    recipe = RECIPES[request.extras.get("recipe") or request.scenario_name]
    pairs, mix, ve = scenario_inputs(request.scenario, recipe,
                                     {p.pair_id for p in request.forget})
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(bb, recipe, pairs, tmp, mix=mix, ve=ve, seed=request.seed,
                        resume=False, epochs=epochs,
                        log=request.extras.get("train_log") or (lambda *_: None))
    return bb, {"epochs": summary["epochs"], "recipe_epochs": recipe.epochs}
