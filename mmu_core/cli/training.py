"""`train` (pretrain, fine-tune, Retrain) and `train-generators` (MVI's embedded
BLIP-2 and Stable Diffusion, the IS-style classifier)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_train(sub) -> None:
    """`train`: ITC + ITM training by one of the recipes."""
    p = sub.add_parser("train", help="ITC+ITM training (pretrain / fine-tune / retrain)")
    p.add_argument("--recipe", required=True, choices=["pretrain", "privacy", "copyright",
                                                      "privacy-real", "copyright-real"])
    p.add_argument("--data", required=True, help="world root (output of data generate)")
    p.add_argument("--out", required=True)
    p.add_argument("--init", default=None, help="starting model (default: a new embedded "
                   "backbone for pretrain, embedded:pretrained otherwise)")
    p.add_argument("--exclude", default=None, help="forget list: train on D_r only (Retrain)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even with a GPU")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"],
                   help="accelerate's mixed precision (GPUs)")
    p.add_argument("--grad-accum", type=int, default=1,
                   help="batches per optimiser step (each keeps its own ITC negatives)")
    p.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                   help="stop after this many epochs of this run, keeping the checkpoint "
                        "(the same command resumes, on any process count)")
    p.set_defaults(func=run_train)


def run_train(a) -> None:
    import torch

    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.backbone import load_backbone
    from mmu_core.training.distributed import accelerator, close_process_group
    from mmu_core.training.recipes import (RECIPES, pretrain_pairs, scenario_inputs, train,
                                           world_texts)

    torch.set_num_threads(a.threads) if a.threads else None
    # one process per device under `accelerate launch` / torchrun; plain: this machine's GPU
    acc = accelerator(a.cpu or not torch.cuda.is_available(), a.mixed_precision)
    recipe = RECIPES[a.recipe]
    if a.recipe == "pretrain":
        if a.init:
            bb = load_backbone(a.init)
        else:
            from mmu_core.models.embedded import new_backbone

            bb = new_backbone(world_texts(a.data), seed=a.seed)
        pairs, mix, ve = pretrain_pairs(a.data), [], []
    else:
        bb = load_backbone(a.init or "embedded:pretrained")
        sc = load_scenario(a.data, a.recipe.removesuffix("-real"))
        ids = sc.check_forget(load_forget_ids(a.exclude)) if a.exclude else set()
        pairs, mix, ve = scenario_inputs(sc, recipe, ids)
    summary = train(bb.to(acc.device), recipe, pairs, a.out, mix=mix, ve=ve, seed=a.seed,
                    resume=not a.no_resume, epochs=a.epochs, mixed_precision=a.mixed_precision,
                    grad_accum=a.grad_accum, stop_after=a.stop_after)
    close_process_group(acc)
    if "stopped_at_epoch" in summary:
        return
    if acc.is_main_process:
        summary["provenance"] = provenance({"command": sys.argv, **vars(a)})
        Path(a.out, "train_summary.json").write_text(json.dumps(summary, indent=1))
        print(f"saved {a.out} ({summary['train_seconds_this_run']} s, "
              f"{acc.num_processes} process(es) on {acc.device})")


def add_train_generators(sub) -> None:
    """`train-generators`: the embedded generators, on the generic corpus only."""
    p = sub.add_parser("train-generators", help="train the embedded BLIP-2 and Stable "
                       "Diffusion on the generic pretraining corpus")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="folder for blip2-embedded/ and sd-embedded/")
    p.add_argument("--which", default="both",
                   choices=["captioner", "painter", "classifier", "both"],
                   help="both = all three (the classifier serves the IS-style measure)")
    p.add_argument("--variant", default=None, choices=["t5", "v2"],
                   help="instead: another generator of the same class for Table 8 (t5: "
                   "BLIP-2 with a T5 LM; v2: SD with a larger text encoder), into "
                   "OUT/captioner-t5 or OUT/painter-v2; --which is ignored (the benchmark "
                   "reads $MMU_CACHE_DIR/generators, default ~/.cache/mmu/generators)")
    p.add_argument("--captioner-epochs", type=int, default=6)
    p.add_argument("--vae-epochs", type=int, default=4)
    p.add_argument("--unet-epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_train_generators)


def run_train_generators(a) -> None:
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.embedded_generators import CaptionerSize, PainterSize
    from mmu_core.training.distributed import accelerator, close_process_group
    from mmu_core.training.generators import train_and_save, train_variant
    from mmu_core.training.recipes import pretrain_pairs

    out = Path(a.out)
    if a.variant:  # another generator of the same class (Table 8), into out/<kind>-<name>
        train_variant(a.variant, a.data, out, a.seed, a.captioner_epochs, a.vae_epochs,
                      a.unet_epochs, provenance=provenance(vars(a)))
        return
    pairs = pretrain_pairs(a.data)  # generic corpus only: never task data or forget sets
    epochs = dict(captioner_epochs=a.captioner_epochs, vae_epochs=a.vae_epochs,
                  unet_epochs=a.unet_epochs)
    if a.which in ("captioner", "both"):
        train_and_save("captioner", CaptionerSize(), pairs, out / "blip2-embedded", a.seed,
                       provenance=provenance(vars(a)), **epochs)
    if a.which in ("painter", "both"):
        train_and_save("painter", PainterSize(), pairs, out / "sd-embedded", a.seed,
                       provenance=provenance(vars(a)), **epochs)
    if a.which in ("classifier", "both") and accelerator().is_main_process:
        from mmu_core.models.image_classifier import train_classifier  # one process

        clf, summary = train_classifier(pairs, seed=a.seed)
        clf.save_pretrained(out / "image-classifier")
        summary["provenance"] = provenance(vars(a))
        (out / "image-classifier" / "train_summary.json").write_text(
            json.dumps(summary, indent=1))
    close_process_group(accelerator())
