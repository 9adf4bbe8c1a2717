"""Does the engine run on this device? (`python -m mmu_core bench device --device cuda`)

On the embedded default (privacy forget-5 seed 0): every unlearning method with short
settings, a fresh MVI fit and its anchors, one audit and one forget request the way the app
makes it, each timed, with the peak device memory of each step (CUDA's allocator counters;
on the CPU the process's peak resident memory so far). A step that fails is recorded with
its error and the others still run: the output says what works where.
"""

from __future__ import annotations

import resource
import time
import traceback

import torch

from mmu_core.data.generate import default_world
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.metrics.provenance import provenance
from mmu_core.models.backbone import load_backbone

# short settings: this checks that each code path runs on the device, not how well
QUICK = {"retrain": {"epochs": 1}, "finetune": {"steps": 5}, "ga": {"steps": 5},
         "badt": {"steps": 5}, "multidelete": {"steps": 5}, "slug": {"search_steps": 4},
         "adv": {"steps": 5}, "ours": {"max_steps": 10}}


def _peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _check(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("no CUDA device here: run with --device cpu, or on a GPU machine")


def _name(device: str) -> str:
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def device_check(device: str = "cuda", methods=tuple(QUICK), log=print) -> dict:
    from mmu_core.erasure.audit import AuditConfig, audit
    from mmu_core.erasure.forget_request import forget
    from mmu_core.models.generators import load_captioner, load_painter
    from mmu_core.mvi.anchors import anchors
    from mmu_core.mvi.fit import fit
    from mmu_core.mvi.model import MVIConfig
    from mmu_core.unlearn import run
    from mmu_core.unlearn.request import Request

    _check(device)
    root = default_world()
    sc = load_scenario(root, "privacy")
    ids = load_forget_ids(forget_list_path(root, "privacy", 5, 0))
    original = load_backbone("embedded:privacy", device)
    gens = (load_captioner(device=device), load_painter(device=device))
    state: dict = {}
    steps = []

    def step(name, fn):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            row = {"step": name, "ok": True}
        except Exception as err:  # noqa: BLE001 - recorded, the other steps still run
            row = {"step": name, "ok": False, "error": f"{type(err).__name__}: {err}",
                   "where": traceback.format_exc(limit=-3)}
        row.update(seconds=round(time.perf_counter() - t0, 2), peak_mb=_peak_mb(device))
        steps.append(row)
        log(row)

    def method(m):
        request = Request.build(original, sc, ids, "privacy", captioner=gens[0],
                                painter=gens[1], mvi_pairs=sc.train)
        state[m] = run(m, request, **QUICK.get(m, {}))[0]

    for m in methods:
        step(f"unlearn: {m}", lambda m=m: method(m))
    forget_pairs = sc.split(ids)[0]

    def mvi():
        state["mvi"] = fit(*gens, sc.train[:64], MVIConfig(steps=20, max_fit_pairs=64))[0]
        anchors(state["mvi"], *gens, forget_pairs, n_images=1, n_texts=1)

    step("MVI fit (20 steps) + anchors", mvi)
    step("audit", lambda: audit(state.get("ga") or original, original, original,
                                load_backbone("embedded:pretrained", device), sc, ids,
                                AuditConfig(relearn_steps=(0, 5), max_pairs=50)))
    step("app forget request (ours)", lambda: forget(
        original, sc, "privacy", forget_pairs[:1], "ours", QUICK["ours"], captioner=gens[0],
        painter=gens[1]))
    return {"device": device, "name": _name(device), "steps": steps,
            "all_ok": all(s["ok"] for s in steps),
            "provenance": provenance({"bench": "device", "device": device})}


def real_size_step(device: str = "cuda", batch: int = 32, steps: int = 3,
                   mixed_precision: str = "no", log=print) -> dict:
    """Seconds and peak memory of one Retrain / Finetune training step (the recipes' ITC +
    ITM with hard negatives, AdamW) of a model the size of `Salesforce/blip-itm-base-*`
    (BLIP's default configuration: ViT-B/16 at 384 px, BERT-base text encoder with
    cross-attention), randomly initialised: no download, the same compute. The first step
    (allocator and kernel warm-up) is reported apart from the mean of the others."""
    import functools

    from transformers import BlipConfig, BlipForImageTextRetrieval

    from mmu_core.models.backbone import Backbone
    from mmu_core.training.distributed import Shard, Stepper
    from mmu_core.training.recipes import recipe_losses

    _check(device)
    torch.manual_seed(0)
    config = BlipConfig()
    bb = Backbone(BlipForImageTextRetrieval(config), processor=None).to(device).train()
    size, vocab = config.vision_config.image_size, config.text_config.vocab_size
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(bb.parameters(), lr=1e-5, weight_decay=0.05)
    times = []
    with Stepper({"bb": bb}, functools.partial(recipe_losses, bb), opt, clip=5.0,
                 mixed_precision=mixed_precision) as stepper:
        for k in range(steps):
            pix = torch.randn(batch, 3, size, size, generator=gen).to(device)
            ids = torch.randint(1000, vocab, (batch, 30), generator=gen).to(device)
            mask = torch.ones_like(ids)
            groups = torch.arange(batch, device=device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            stepper(pix, ids, mask, groups, gen, Shard(0, 1, batch))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            log({"step": k, "seconds": round(times[-1], 2), "peak_mb": _peak_mb(device)})
    rest = times[1:] or times
    return {"device": device, "name": _name(device), "batch": batch,
            "mixed_precision": mixed_precision,
            "parameters_m": round(sum(p.numel() for p in bb.parameters()) / 1e6, 1),
            "first_step_s": round(times[0], 2), "step_s": round(sum(rest) / len(rest), 2),
            "peak_mb": _peak_mb(device), "threads": torch.get_num_threads(),
            "provenance": provenance({"bench": "device --real-size", "device": device,
                                      "batch": batch})}
