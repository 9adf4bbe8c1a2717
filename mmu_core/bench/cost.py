"""What a request costs at the real model's size, and how it grows with the forget set
(`python -m mmu_core bench cost`; docs/results/bench/cost/).

Three measured parts and one computed:
1. **scan** (embedded default, privacy): every method with its tuned settings at 1, 5, 50
   and 500 forget pairs, plus one Retrain epoch, MVI's fit, one anchor, Inspect's views
   and the reference-free audit: wall seconds, peak resident memory above the start, and
   the work counted by kind (`bench/work.py`: calls and samples through each heavy module).
2. **units**: seconds per call and per sample of each kind on the embedded model, on the
   real-size stand-ins (`models/real_size.py`: BLIP ITM base; BLIP-2 OPT-2.7B in bf16; SD
   1.5), in fp32 and under bf16 autocast, with each unit's FLOPs (torch's FlopCounterMode).
3. **check** (real size): a few methods run at BLIP-base size on one person with short
   settings, measured, against what the counts and units predict for that same run.
4. **predict**: each scan cell at real size = its counted work times the real units, plus
   what the embedded run spent outside the counted modules. Fitted to a + b*n per method;
   a part whose marginal cost per pair rises from 5->50 to 50->500 grows faster than the
   work. On a GPU: the units' FLOPs at an assumed achieved rate (`GPU_ASSUMPTION`), since no
   GPU was lent.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import torch

from mmu_core.bench.work import (backbone_units, counting_work, generator_units,
                                 predict_seconds)
from mmu_core.metrics.provenance import provenance

SIZES = (1, 5, 50, 500)
BACKBONE_KINDS = ("vision", "text", "fused", "pixels")
CONFIRM_SETTINGS = (Path(__file__).resolve().parents[2] / "docs" / "results" / "bench"
                    / "confirm" / "settings.json")
# no GPU has been lent: a GPU figure is the units' FLOPs at this achieved rate, plus the
# per-call overhead measured on the CPU divided by 10 (kernel launches, not Python)
GPU_ASSUMPTION = {"name": "one A10G-class GPU (a Hugging Face Space's GPU upgrade)",
                  "achieved_tflops_fp32": 15.0, "achieved_tflops_bf16": 50.0,
                  "basis": "about 40% of an A10G's 31 TFLOP/s fp32 and 125 TFLOP/s bf16 "
                           "dense peaks, a typical share for transformer training steps"}


class _MallInfo2(__import__("ctypes").Structure):
    _fields_ = [(name, __import__("ctypes").c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def _heap_in_use() -> int | None:
    """Bytes malloc has handed out and not taken back (tensors included: torch's CPU
    allocator is malloc), unlike the resident size, which keeps freed pages. None where the
    C library has no mallinfo2 (not glibc >= 2.33)."""
    import ctypes

    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    info = fn()
    return info.uordblks + info.hblkhd


class PeakMemory:
    """Peak memory of this process during the block, sampled every 20 ms in a thread (the
    allocator's own counters exist on CUDA only): `extra_mb`, the peak of malloc's bytes
    in use above the start (what the block needed), and `peak_mb`, the peak resident size
    (what the machine had to hold, everything loaded before included)."""

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        self.peak = max(self.peak, self._rss())
        used = _heap_in_use()
        if used is not None:
            self.heap_peak = max(self.heap_peak, used)

    def __enter__(self):
        self.peak = self._rss()
        self.heap_start = self.heap_peak = _heap_in_use() or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.02):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def extra_mb(self) -> float:
        return round((self.heap_peak - self.heap_start) / 2 ** 20, 1)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2 ** 20, 1)


def measured(fn) -> dict:
    """Run `fn` counting its work: seconds, memory, work."""
    with PeakMemory() as mem, counting_work() as work:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "extra_mb": mem.extra_mb, "peak_mb": mem.peak_mb,
            "work": work.as_dict(), "result": result}


# ---- 1. scan ------------------------------------------------------------------------------

def forget_ids(root, n: int) -> list[str]:
    """The reported privacy list of n pairs (list 0); one pair: the first of the 5-list.
    Cost only: nothing here is a quality figure."""
    from mmu_core.data.scenarios import forget_list_path, load_forget_ids

    ids = load_forget_ids(forget_list_path(root, "privacy", max(n, 5), 0))
    return ids[:n]


def method_settings(method: str, n: int, path: Path = CONFIRM_SETTINGS) -> tuple[dict, str]:
    from mmu_core.unlearn.tuned import tuned_settings

    return tuned_settings(method, "privacy", n, path=path)


def scan_cell(method: str, n: int, bb=None, sc=None, root=None) -> dict:
    """One method at n forget pairs on the embedded privacy model (or the given one)."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import METHODS, _load_all
    from mmu_core.unlearn.request import Request

    _load_all()
    root = root or default_world()
    sc = sc or load_scenario(root, "privacy")
    bb = bb or load_backbone("embedded:privacy")
    if method == "retrain-epoch":
        settings, source = {"epochs": 1}, "one epoch of the privacy recipe"
    else:
        settings, source = method_settings(method, n)
    request = Request.build(bb, sc, forget_ids(root, n), "privacy")
    name = "retrain" if method == "retrain-epoch" else method
    out = measured(lambda: METHODS[name](request, **settings)[1])
    info = out.pop("result")
    return {"method": method, "n": n, "settings": settings, "settings_from": source,
            "steps": info.get("steps", info.get("epochs")), **out}


def extras_cells(bb=None, sc=None, root=None, captioner=None, painter=None) -> dict:
    """MVI's fit (the default config, a fresh fit: no cache), one anchor for one pair,
    Inspect's views and the reference-free audit of a one-person request (GA, short)."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.erasure.audit import AuditConfig, audit
    from mmu_core.erasure.forget_request import forget
    from mmu_core.erasure.inspection import build_views
    from mmu_core.models.backbone import load_backbone
    from mmu_core.models.generators import load_captioner, load_painter
    from mmu_core.mvi.anchors import anchors
    from mmu_core.mvi.fit import fit, fit_pairs
    from mmu_core.mvi.model import MVIConfig

    root = root or default_world()
    sc = sc or load_scenario(root, "privacy")
    bb = bb or load_backbone("embedded:privacy")
    cap = captioner or load_captioner()
    paint = painter or load_painter()
    config = MVIConfig()
    ids = forget_ids(root, 5)
    cells = {}
    fitted = {}

    def do_fit():
        fitted["mvi"] = fit(cap, paint, fit_pairs(sc.train, config.max_fit_pairs), config)[0]
        return {}

    cells["mvi-fit"] = measured(do_fit)
    pair = sc.split(ids)[0][:1]
    cells["anchor"] = measured(lambda: anchors(fitted["mvi"], cap, paint, pair, n_images=1,
                                               n_texts=1) and {})
    outcome = forget(bb, sc, "privacy", sc.split(ids)[0], "ga", {"steps": 20})
    cells["inspect"] = measured(lambda: build_views(outcome, cap, paint) and {})
    reference = load_backbone("embedded:pretrained")
    cells["audit"] = measured(lambda: audit(outcome.unlearned, bb, None, reference, sc, ids,
                                            AuditConfig()) and {})
    for c in cells.values():
        c.pop("result", None)
    return cells


# ---- 2. units -----------------------------------------------------------------------------

def units(which: str) -> dict:
    """Unit seconds (and FLOPs per sample) of "embedded", "real-size" (fp32 and bf16
    autocast) or "generators" (the real-size BLIP-2 and SD 1.5)."""
    from mmu_core.models import real_size
    from mmu_core.models.backbone import load_backbone

    if which == "embedded":
        return {"fp32": backbone_units(load_backbone("embedded:privacy"), 1, 8, 3)}
    if which == "real-size":
        bb = load_backbone(real_size.BACKBONE)
        return {"fp32": backbone_units(bb), "bf16-autocast": backbone_units(bb, autocast=True),
                "parameters_m": real_size.parameters_m(bb)}
    from mmu_core.models.generators import load_captioner, load_painter

    cap, paint = load_captioner(real_size.CAPTIONER), load_painter(real_size.PAINTER)
    return {"fp32": generator_units(cap, paint),
            "parameters_m": {"captioner": real_size.parameters_m(cap.model),
                             "unet": real_size.parameters_m(paint.pipe.unet),
                             "vae": real_size.parameters_m(paint.pipe.vae),
                             "text_encoder": real_size.parameters_m(paint.pipe.text_encoder)},
            "dtypes": {"captioner": str(cap.model.dtype), "painter": str(paint.pipe.unet.dtype)}}


# ---- 4. predict ---------------------------------------------------------------------------

def real_seconds(cell: dict, emb_units: dict, real_units: dict) -> dict:
    """A cell's seconds at real size: the counted work at the real units, plus the
    embedded run's time outside the counted modules (tokenising, sampling, sklearn...)."""
    counted_emb = predict_seconds(cell["work"], emb_units)
    other = max(0.0, cell["seconds"] - counted_emb)
    counted_real = predict_seconds(cell["work"], real_units)
    return {"seconds": round(other + counted_real, 1), "other_s": round(other, 2),
            "explained_share": round(min(1.0, counted_emb / cell["seconds"]), 3)
            if cell["seconds"] else None}


def fit_linear(ns, ys) -> dict:
    """Least squares a + b*n, and the marginal seconds per pair between the sizes: a rise
    of more than 1.5x from the lower to the upper stretch flags super-linear growth."""
    import numpy as np

    n, y = np.asarray(ns, float), np.asarray(ys, float)
    b, a = np.polyfit(n, y, 1)
    marginal = [(y[i + 1] - y[i]) / (n[i + 1] - n[i]) for i in range(len(n) - 1)]
    # noise decides nothing: a stretch counts only beyond 5% of the run's time per pair
    floor = 0.05 * y.max() / n.max()
    rises = [m2 > 1.5 * max(m1, floor) for m1, m2 in zip(marginal, marginal[1:])]
    return {"a": round(float(a), 2), "b": round(float(b), 4),
            "marginal_per_pair": [round(float(m), 4) for m in marginal],
            "super_linear": bool(any(rises))}


# ---- 3. check at real size ----------------------------------------------------------------

# short settings: each method's own loop and checks, one step (a real-size step at the
# methods' batch sizes takes a minute or more on 2 CPU cores)
SHORT = {"finetune": {"steps": 1}, "ga": {"steps": 1}, "badt": {"steps": 1},
         "multidelete": {"steps": 1}, "slug": {"search_steps": 1}, "adv": {"steps": 1},
         "ours": {"max_steps": 1}, "ours-local": {"max_steps": 1},
         "calibrated": {"max_steps": 1, "check_every": 1}, "retrain": {"epochs": 1}}


def reduced(sc, ids: list[str], groups: int = 6, per_split: int = 12):
    """The scenario cut to the forget groups plus `groups` other training groups and
    `per_split` pairs of every other split: a real-size run of every path in minutes."""
    from dataclasses import replace

    forget_groups = {p.group for p in sc.train if p.pair_id in set(ids)}
    others = sorted({p.group for p in sc.train} - forget_groups)[:groups]
    keep = forget_groups | set(others)
    cut = {f: getattr(sc, f)[:per_split] for f in ("test", "unseen", "normal", "val",
                                                   "calib", "ve_train", "ve_test",
                                                   "mcq_train", "mcq_test")}
    return replace(sc, train=[p for p in sc.train if p.group in keep], **cut)


# checked at real size by the benchmark (a real-size step at full batch takes minutes on 2
# CPU cores): one method per kind of loop, Retrain's epoch and MVI; tests/test_real_size.py
# runs every method there at small batches
CHECKED = ("finetune", "multidelete", "ours", "calibrated", "retrain", "mvi")


def real_size_check(methods=CHECKED, sizes=("embedded", "real-size"),
                    log=print, path: Path | None = None) -> list[dict]:
    """Each method at BLIP-base size on one person (reduced scenario, short settings), and
    "mvi": a 2-step MVI fit on 4 pairs and one anchor (2 diffusion steps) with the
    real-size generators: measured seconds and memory, and the counted work. The same runs
    on the embedded model come first: what the prediction starts from."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.models import real_size
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import METHODS, _load_all
    from mmu_core.unlearn.request import Request

    _load_all()
    root = default_world()
    ids = forget_ids(root, 5)
    sc = reduced(load_scenario(root, "privacy"), ids)
    # each row is kept on disk as it comes (`path`): a run that fails later loses nothing
    rows = (_load(path) or {}).get("rows", []) if path else []
    done = {(r["method"], r["size"]) for r in rows}

    def record(row, **fields):
        row.pop("result", None)
        row.update(fields)
        rows.append(row)
        if path:
            _save(path, {"rows": rows, "provenance": provenance({"bench": "cost check"})})
        log({k: row[k] for k in ("method", "size", "seconds", "extra_mb", "peak_mb")})

    for size in sizes:
        real = size == "real-size"
        name = real_size.BACKBONE if real else "embedded:privacy"
        bb = load_backbone(name)
        # Retrain starts from the pretrained model: at real size, another stand-in
        extras = {"pretrained": load_backbone(name)} if real else {}
        for m in methods:
            if m == "mvi" or (m, size) in done:
                continue
            request = Request.build(bb, sc, ids, "privacy", **extras)
            record(measured(lambda: METHODS[m](request, **SHORT[m])[1]), method=m, size=size,
                   settings=SHORT[m])
        del bb, extras
        if "mvi" in methods and ("anchor", size) not in done:
            for row, m in zip(mvi_check(sc, ids, real), ("mvi-fit", "anchor")):
                if (m, size) not in done:
                    record(row, method=m, size=size)
    return rows


def mvi_check(sc, ids, real: bool) -> list[dict]:
    """A 2-step MVI fit on 4 pairs and one anchor of one pair (2 diffusion steps), with the
    embedded or the real-size generators."""
    from mmu_core.models import real_size
    from mmu_core.models.generators import load_captioner, load_painter
    from mmu_core.mvi.anchors import anchors
    from mmu_core.mvi.fit import fit
    from mmu_core.mvi.model import MVIConfig

    cap = load_captioner(real_size.CAPTIONER if real else "embedded")
    paint = load_painter(real_size.PAINTER if real else "embedded")
    got = {}

    def do_fit():
        got["mvi"] = fit(cap, paint, sc.train[:4], MVIConfig(steps=2, batch_size=4,
                                                             max_fit_pairs=4))[0]
    pair = sc.split(ids)[0][:1]
    return [measured(do_fit), measured(lambda: anchors(got["mvi"], cap, paint, pair,
                                                       steps=2) and None)]


# ---- the benchmark ------------------------------------------------------------------------

def _load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _save(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def cost(out: str | Path, parts=("scan", "extras", "units", "check"), methods=None,
         sizes=SIZES, log=print) -> dict:
    """Run the parts not yet on disk (resumable: each cell is a file), then the tables."""
    from mmu_core.unlearn import names

    out = Path(out)
    methods = methods or [m for m in names() if m != "retrain"] + ["retrain-epoch"]
    if "units" in parts:
        for which in ("embedded", "real-size", "generators", "embedded-generators"):
            path = out / "units" / f"{which}.json"
            if path.is_file():
                continue
            if which == "embedded-generators":
                from mmu_core.models.generators import load_captioner, load_painter
                data = {"fp32": generator_units(load_captioner(), load_painter(), 3, 1, 4)}
            else:
                data = units(which)
            _save(path, {**data, "threads": torch.get_num_threads(),
                         "provenance": provenance({"bench": "cost", "units": which})})
            log(f"units {which}")
    if "scan" in parts:
        for m in methods:
            for n in ([5] if m == "retrain-epoch" else sizes):
                path = out / "cells" / f"{m}-{n}.json"
                if path.is_file():
                    continue
                cell = scan_cell(m, n)
                _save(path, {**cell, "provenance": provenance({"bench": "cost", "cell": m,
                                                               "n": n})})
                log(f"{m} n={n}: {cell['seconds']} s, +{cell['extra_mb']} MB")
    if "extras" in parts and not (out / "extras.json").is_file():
        _save(out / "extras.json", {**extras_cells(),
                                    "provenance": provenance({"bench": "cost extras"})})
        log("extras")
    if "check" in parts:
        real_size_check(log=log, path=out / "check.json")
    return tables(out)


def _units(out: Path) -> dict:
    """The unit tables by device: "embedded", "cpu-fp32", "cpu-bf16" (the backbone under
    bf16 autocast), each with the generators' units beside the backbone's."""
    u = {k: _load(out / "units" / f"{k}.json") for k in
         ("embedded", "real-size", "generators", "embedded-generators")}
    if any(v is None for v in u.values()):
        return {}
    gens = u["generators"]["fp32"]
    return {"embedded": {**u["embedded"]["fp32"], **u["embedded-generators"]["fp32"]},
            "cpu-fp32": {**u["real-size"]["fp32"], **gens},
            "cpu-bf16": {**u["real-size"]["bf16-autocast"], **gens}}


def at_real_size(cell: dict, units: dict) -> dict:
    """One measured embedded cell at real size: CPU fp32, CPU with bf16 autocast, and the
    GPU estimate (bf16, `GPU_ASSUMPTION`)."""
    cpu = real_seconds(cell, units["embedded"], units["cpu-fp32"])
    bf16 = real_seconds(cell, units["embedded"], units["cpu-bf16"])
    gpu = cpu["other_s"] + predict_seconds(
        cell["work"], units["cpu-bf16"], GPU_ASSUMPTION["achieved_tflops_bf16"] * 1e12, 0.1)
    return {"cpu_fp32_s": cpu["seconds"], "cpu_bf16_s": bf16["seconds"],
            "gpu_estimate_s": round(gpu, 1), "other_s": cpu["other_s"],
            "explained_share": cpu["explained_share"]}


GROWTH_FROM, GROWTH_TO = 50, 500  # both run privacy-50's tuned settings: only n differs


def growth(cells: list[dict]) -> dict:
    """How each counted part grows from 50 to 500 forget pairs, per step (the step caps
    are equal there; per run for a method without steps): the exponent e in samples ~ n^e.
    e near 0: a batch per step, whatever n; near 1: the part reads the whole forget set
    (O(n) per step, O(n x steps) in all); above 1.2: faster than the forget set grows."""
    import math

    by_n = {c["n"]: c for c in cells}
    if GROWTH_FROM not in by_n or GROWTH_TO not in by_n:
        return {}
    lo, hi = by_n[GROWTH_FROM], by_n[GROWTH_TO]
    out = {}
    for k in sorted(set(lo["work"]) | set(hi["work"])):
        a = lo["work"].get(k, {}).get("samples", 0) / (lo.get("steps") or 1)
        b = hi["work"].get(k, {}).get("samples", 0) / (hi.get("steps") or 1)
        if a and b:
            e = math.log(b / a) / math.log(GROWTH_TO / GROWTH_FROM)
            out[k] = {"per_step": [round(a, 1), round(b, 1)], "exponent": round(e, 2),
                      "per_pair_per_step": round((b - a) / (GROWTH_TO - GROWTH_FROM), 3)}
    return out


def linear_50_500(n: list, seconds: list) -> dict | None:
    """a + b*n through the 50- and 500-pair runs (same settings)."""
    if GROWTH_FROM not in n or GROWTH_TO not in n:
        return None
    y0, y1 = seconds[n.index(GROWTH_FROM)], seconds[n.index(GROWTH_TO)]
    b = (y1 - y0) / (GROWTH_TO - GROWTH_FROM)
    return {"a": round(y0 - b * GROWTH_FROM, 1), "b": round(b, 3)}


def _minutes(s: float) -> str:
    if s >= 5400:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.1f} s"


def tables(out: str | Path) -> dict:
    out = Path(out)
    units = _units(out)
    cells = [_load(p) for p in sorted((out / "cells").glob("*.json"))]
    by_method: dict = {}
    for c in cells:
        if units:
            c["real"] = at_real_size(c, units)
        by_method.setdefault(c["method"], []).append(c)
    summary = {"gpu_assumption": GPU_ASSUMPTION, "methods": {}}
    for m, cs in sorted(by_method.items()):
        cs.sort(key=lambda c: c["n"])
        row = {"n": [c["n"] for c in cs], "seconds": [c["seconds"] for c in cs],
               "extra_mb": [c["extra_mb"] for c in cs],
               "steps": [c.get("steps") for c in cs]}
        if len(cs) > 2:
            row["fit_embedded"] = fit_linear(row["n"], row["seconds"])
            row["growth_50_500"] = growth(cs)
        if units:
            row["real"] = [c["real"] for c in cs]
            row["fit_cpu_fp32"] = linear_50_500(row["n"], [r["cpu_fp32_s"] for r in row["real"]])
        summary["methods"][m] = row
    extras = _load(out / "extras.json")
    if extras and units:
        summary["extras"] = {k: {"seconds": v["seconds"], "extra_mb": v["extra_mb"],
                                 **at_real_size({**v, "n": 0}, units)}
                             for k, v in extras.items() if k != "provenance"}
    check = _load(out / "check.json")
    if check and units:
        emb = {r["method"]: r for r in check["rows"] if r["size"] == "embedded"}
        # the checked methods ran the real-size backbone with the embedded generators (ours'
        # anchors); the MVI rows, the real-size generators
        backbone_only = {**units["cpu-fp32"], **{k: v for k, v in units["embedded"].items()
                                                 if k.split("/")[0] not in BACKBONE_KINDS}}
        summary["check"] = []
        for r in check["rows"]:
            if r["size"] != "real-size" or r["method"] not in emb:
                continue
            priced = units["cpu-fp32"] if r["method"] in ("mvi-fit", "anchor") else backbone_only
            predicted = real_seconds(emb[r["method"]], units["embedded"], priced)["seconds"]
            summary["check"].append({
                "method": r["method"], "measured_s": r["seconds"], "predicted_s": predicted,
                "predicted_over_measured": round(predicted / r["seconds"], 2),
                "peak_mb": r["peak_mb"], "extra_mb": r["extra_mb"]})
    summary["provenance"] = provenance({"bench": "cost tables"})
    _save(out / "cost.json", summary)
    (out / "cost.md").write_text(markdown(summary, units))
    return summary


def markdown(s: dict, units: dict) -> str:
    md = ["# What a request costs (`python -m mmu_core bench cost`)", "",
          "Embedded default measured on this machine (2 CPU cores, torch "
          f"{torch.__version__}); real size = the counted work of the same runs at the "
          "real-size stand-ins' measured unit costs (models/real_size.py; method in "
          "mmu_core/bench/cost.py). GPU: estimated, not measured: "
          f"{s['gpu_assumption']['name']}, {s['gpu_assumption']['achieved_tflops_bf16']} "
          f"TFLOP/s achieved in bf16 ({s['gpu_assumption']['basis']}).", ""]
    md += ["## Per method and forget-set size (privacy, tuned settings)", "",
           "| method | n | steps | embedded s | real CPU fp32 | real CPU bf16 | GPU "
           "(est.) | counted share |", "|---|---|---|---|---|---|---|---|"]
    for m, r in s["methods"].items():
        for i, n in enumerate(r["n"]):
            real = r.get("real", [{}] * len(r["n"]))[i]
            md.append(f"| {m} | {n} | {r['steps'][i]} | {r['seconds'][i]:.1f} | "
                      f"{_minutes(real.get('cpu_fp32_s', 0))} | "
                      f"{_minutes(real.get('cpu_bf16_s', 0))} | "
                      f"{_minutes(real.get('gpu_estimate_s', 0))} | "
                      f"{real.get('explained_share')} |")
    md += ["", "## What grows with the forget set", "",
           f"From {GROWTH_FROM} to {GROWTH_TO} pairs (both with privacy-50's settings and "
           "step caps, so only n differs): each counted part's samples per step, and the "
           "exponent e in samples ~ n^e. A step's work is a batch (no growth); a part that "
           "reads every forget pair each k steps adds 1/k sample per pair per step (O(n) per "
           "step, O(n x steps) in all); e above 1.2 would be a part growing faster than the "
           "forget set. a + b*n: real-size CPU seconds through the two runs.",
           "", "| method | a (s) | b (s per pair) | parts that grow: samples per step at "
           f"{GROWTH_FROM} -> {GROWTH_TO} (per pair per step; e) | faster than n |",
           "|---|---|---|---|---|"]
    for m, r in s["methods"].items():
        f, g = r.get("fit_cpu_fp32"), r.get("growth_50_500", {})
        if not f:
            continue
        grows = {k: v for k, v in g.items() if v["per_pair_per_step"] >= 0.01}
        parts = "; ".join(f"{k}: {v['per_step'][0]} -> {v['per_step'][1]} "
                          f"(+{v['per_pair_per_step']}; {v['exponent']})"
                          for k, v in grows.items()) or "none"
        faster = [k for k, v in g.items() if v["exponent"] > 1.2]
        md.append(f"| {m} | {f['a']:.0f} | {f['b']:.1f} | {parts} | "
                  f"{', '.join(faster) or 'no'} |")
    if "extras" in s:
        md += ["", "## MVI, Inspect, audit (one person)", "",
               "| part | embedded s | real CPU fp32 | real CPU bf16 | GPU (est.) |",
               "|---|---|---|---|---|"]
        for k, v in s["extras"].items():
            md.append(f"| {k} | {v['seconds']:.1f} | {_minutes(v['cpu_fp32_s'])} | "
                      f"{_minutes(v['cpu_bf16_s'])} | {_minutes(v['gpu_estimate_s'])} |")
    if "check" in s:
        md += ["", "## Check: measured at BLIP-base size against the prediction", "",
               "One person, reduced scenario (`reduced`), short settings (`SHORT`): "
               "predicted from the same run on the embedded model, as every real-size "
               "figure above is.", "",
               "| run | measured s | predicted s | predicted / measured | +MB (malloc) | "
               "peak resident MB |", "|---|---|---|---|---|---|"]
        for r in s["check"]:
            md.append(f"| {r['method']} | {r['measured_s']:.1f} | {r['predicted_s']:.1f} | "
                      f"{r['predicted_over_measured']} | {r['extra_mb']:.0f} | "
                      f"{r['peak_mb']:.0f} |")
    return "\n".join(md) + "\n"


# ---- what the app tells a visitor ---------------------------------------------------------

COST_JSON = (Path(__file__).resolve().parents[2] / "docs" / "results" / "bench" / "cost"
             / "cost.json")
BLIP_BASE_M = 223.7  # the real-size stand-in's parameters (millions)


def size_class(model) -> str | None:
    """"embedded" or "blip-base" by the backbone's parameter count; None for any other
    size (no figure was measured for it)."""
    from mmu_core.models.backbone import CHECKPOINT_ABOVE

    count = sum(p.numel() for p in model.parameters())
    if count <= CHECKPOINT_ABOVE:  # the one line between embedded and real sizes
        return "embedded"
    millions = count / 1e6
    if abs(millions - BLIP_BASE_M) / BLIP_BASE_M < 0.05:
        return "blip-base"
    return None


def expected_seconds(method: str, model, gpu: bool, n: int = 5,
                     path: Path = COST_JSON) -> tuple[float, str] | None:
    """(seconds, where the figure comes from) of `method` on n privacy forget pairs for a
    model of this size on this kind of device, from the committed cost benchmark; None
    when it holds no figure for that size, method or n."""
    size = size_class(model)
    data = _load(Path(path))
    row = data and data["methods"].get(method)
    if size is None or not row or n not in row["n"]:
        return None
    i = row["n"].index(n)
    if size == "embedded":
        if gpu:
            return None  # measured on the CPU only
        return row["seconds"][i], "measured on the embedded default, 2 CPU cores"
    real = row.get("real", [None] * len(row["n"]))[i]
    if not real:
        return None
    if gpu:
        return real["gpu_estimate_s"], (f"estimated for BLIP-base size on "
                                        f"{data['gpu_assumption']['name']}")
    return real["cpu_fp32_s"], "predicted for BLIP-base size on 2 CPU cores (bench cost)"
