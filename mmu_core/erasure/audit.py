"""Does the forgetting hold? An audit of one unlearned model beside the original and Retrain:

relearning      fine-tune k steps on D_r only (benign) or on part of D_f mixed with D_r
                (targeted), then R@D_f and the population MI on the D_f pairs not relearned;
                the same for Retrain: the gap between the curves is what came back
                (Hu et al., ICLR 2025).
quantisation    torch's int8 dynamic quantisation of the Linear layers; R@D_f and MI before
                and after (Zhang et al., ICLR 2025).
per-pair        the loss and reference-calibrated attacks of `metrics.attacks`, for the
                original, the unlearned model and Retrain (Hayes et al., SaTML 2025).
representation  debiased linear CKA per layer against Retrain and against the original,
                on D_f and D_r.

Without Retrain (it takes minutes to train), the reference-free audit gives every check
that stands on the original and on never-seen pairs, relearning read as the share of the
forgetting that came back; the Retrain gaps are added when Retrain exists.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from mmu_core.data.loaders import Pair
from mmu_core.data.scenarios import Scenario
from mmu_core.metrics.attacks import contrast_texts, pair_losses, per_pair_attacks
from mmu_core.metrics.cka import MIN_EXAMPLES, cka_per_layer, layer_features
from mmu_core.metrics.evaluate import retrieval, subsample
from mmu_core.metrics.membership import membership_inference
from mmu_core.models.backbone import Backbone
from mmu_core.training.recipes import itc_itm_loss
from mmu_core.unlearn.request import group_ids, optimiser, sample, step, tensors


@dataclass(frozen=True)
class AuditConfig:
    relearn_steps: tuple[int, ...] = (0, 5, 20)
    relearn_lr: float = 1e-4
    batch_size: int = 16
    targeted_share: float = 0.5  # of D_f's groups (or pairs, for one group) relearned
    max_pairs: int = 100  # D_r members and never-trained pairs per attack
    cka_pairs: int = 64
    seed: int = 0

    def __post_init__(self):
        if 0 not in self.relearn_steps:  # every curve is read against its start
            raise ValueError(f"relearn_steps must include 0, the unlearned model before "
                             f"relearning (got {self.relearn_steps})")


def _forget_metrics(bb: Backbone, measured: list[Pair], members: list[Pair],
                    unseen: list[Pair], seed: int) -> dict:
    r = retrieval(bb, measured, distractors=unseen)["r_mean"]
    mi = membership_inference(bb, members=members, nonmembers=unseen, targets=measured,
                              seed=seed, cv=False)["member_prob_D_f"]
    return {"R@D_f": round(r, 2), "MI": round(mi, 2)}


def relearn_curve(bb: Backbone, pool: list[Pair], mix: list[Pair], config: AuditConfig,
                  measure) -> list[dict]:
    """Fine-tune a copy of `bb` with the training loss (ITC + ITM) on batches of `pool`
    (filled up with `mix` pairs when given), measuring at each of `relearn_steps`."""
    model = bb.copy().train()
    opt = optimiser(model, config.relearn_lr)
    gen = torch.Generator().manual_seed(config.seed)
    n_pool = config.batch_size // 2 if mix else config.batch_size
    curve, done = [], 0
    for k in sorted(config.relearn_steps):
        while done < k:
            batch = sample(pool, n_pool, gen)
            if mix:
                batch += sample(mix, config.batch_size - len(batch), gen)
            pix, ids, mask = tensors(model, batch)
            losses = itc_itm_loss(model, pix, ids, mask, group_ids(batch).to(ids.device), gen)
            step(opt, sum(losses.values()), model.parameters())
            done += 1
        model.eval()
        curve.append({"step": k, **measure(model)})
        model.train()
    return curve


def targeted_split(forget: list[Pair], share: float) -> tuple[list[Pair], list[Pair]]:
    """(relearned, measured): whole groups when D_f has several (an image with its captions,
    a person), else pairs of its one group. Empty when D_f is a single pair."""
    groups = sorted({p.group for p in forget})
    if len(groups) > 1:
        take = set(groups[:max(1, int(round(share * len(groups))))])
        if len(take) == len(groups):
            take = set(groups[:-1])
        return [p for p in forget if p.group in take], [p for p in forget if p.group not in take]
    if len(forget) < 2:
        return [], list(forget)
    n = min(len(forget) - 1, max(1, int(round(share * len(forget)))))
    return forget[:n], forget[n:]


def quantised(bb: Backbone) -> Backbone:
    """An int8 dynamically quantised copy (torch's own `quantize_dynamic`: every Linear
    layer, weights int8, activations quantised on the fly; CPU)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch points to torchao; its own still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(bb.copy().cpu().eval(), {torch.nn.Linear}, dtype=torch.qint8,
                                inplace=True)


def audit(unlearned: Backbone, original: Backbone, retrained: Backbone | None,
          reference: Backbone, sc: Scenario, forget_ids, config: AuditConfig = AuditConfig(),
          progress=None, cache: dict | None = None) -> dict:
    """Every check of the module docstring; JSON-ready. `reference` never saw the
    scenario's pairs (the calibrated attack's baseline).

    `retrained` None gives the reference-free audit: every check that stands on the
    original and on never-seen pairs (relearning measured as the share of the forgetting
    that came back, int8, the calibrated per-pair attack, CKA to the original), without the
    gaps to Retrain. `cache`, a dict the caller keeps, holds each model's measurements: a
    later call with Retrain then measures Retrain only, and the unlearned model's figures
    are the same ones (the audit is not thread-safe on one cache: the app locks it)."""
    t0 = time.time()
    cache = {} if cache is None else cache
    # measurements hold for one unlearned model, forget set and configuration; Retrain's
    # for one Retrain (Compare may replace it). The models are kept to compare by identity.
    if cache.get("for") != (tuple(forget_ids), config) or cache.get("unlearned") is not unlearned:
        cache.clear()
        cache.update({"for": (tuple(forget_ids), config), "unlearned": unlearned, "spent": {}})
    if retrained is not None and cache.get("retrain") is not retrained:
        for key in [k for k in cache if isinstance(k, tuple) and k[-1] == "retrain"]:
            del cache[key], cache["spent"][key]
        cache["retrain"] = retrained
    forget, retain = sc.split(forget_ids)
    members = subsample(retain, config.max_pairs, config.seed)
    unseen = subsample(sc.unseen, config.max_pairs, config.seed)
    relearned, held = targeted_split(forget, config.targeted_share)
    models = {"unlearned": unlearned}
    if retrained is not None:
        models["retrain"] = retrained
    # benign relearning is measured on all of D_f, targeted on the part not relearned
    measured = {"benign": (forget, []), **({"targeted": (held, relearned)} if relearned else {})}
    out: dict = {"config": {**asdict(config), "relearn_steps": list(config.relearn_steps)},
                 "reference_free": retrained is None, "n_forget_pairs": len(forget),
                 "n_members": len(members), "n_unseen": len(unseen)}

    def measure_on(pairs):
        return lambda bb: _forget_metrics(bb, pairs, members, unseen, config.seed)

    contrast = contrast_texts(retain, seed=config.seed)
    # a D_f too small for the debiased CKA (one uploaded pair) gets CKA on D_r only
    cka_sets = {s: ps for s, ps in (("D_f", forget[:config.cka_pairs]),
                                    ("D_r", members[:config.cka_pairs]))
                if len(ps) >= MIN_EXAMPLES}
    steps: dict = {}  # cache key -> (progress label, measurement)
    for name, bb in models.items():
        for mode, (pairs, relearn_on) in measured.items():
            steps[("relearn", mode, name)] = (
                f"relearn {mode} ({name})", lambda bb=bb, pairs=pairs, on=relearn_on:
                relearn_curve(bb, on or retain, retain if on else [], config, measure_on(pairs)))
        steps[("quantisation", name)] = (f"quantisation ({name})", lambda bb=bb: {
            "fp32": measure_on(forget)(bb), "int8": measure_on(forget)(quantised(bb))})
    for mode, (pairs, _) in measured.items():
        steps[("level", mode)] = (f"original's level ({mode})",
                                  lambda pairs=pairs: measure_on(pairs)(original))
    for name, bb in {**models, "original": original, "reference": reference}.items():
        steps[("losses", name)] = (f"pair losses ({name})", lambda bb=bb: (
            pair_losses(bb, forget, contrast), pair_losses(bb, unseen, contrast)))
    for name, bb in {**models, "original": original}.items():
        steps[("features", name)] = (f"layer features ({name})", lambda bb=bb: {
            s: layer_features(bb, ps) for s, ps in cka_sets.items()})
    todo = [(key, label, fn) for key, (label, fn) in steps.items() if key not in cache]
    reused = sum(cache["spent"][key] for key in steps if key in cache)
    for key, label, fn in tqdm(todo, desc="audit", disable=progress is False):
        if callable(progress):
            progress(label)
        start = time.time()
        cache[key] = fn()
        cache["spent"][key] = time.time() - start

    out["relearn"] = {mode: {n: cache[("relearn", mode, n)] for n in models}
                      for mode in measured}
    out["quantisation"] = {n: cache[("quantisation", n)] for n in models}
    ref_f, ref_u = cache[("losses", "reference")]
    out["per_pair"] = {n: per_pair_attacks(*cache[("losses", n)], ref_f, ref_u)
                       for n in ("original", *models)}
    out["per_pair"]["pairs"] = [p.pair_id for p in forget]
    out["cka_estimator"] = "debiased linear"  # cells before 2026-11-29 hold the plain one
    feats = {n: cache[("features", n)] for n in ("original", *models)}
    pairs_of = [("unlearned", "retrain"), ("unlearned", "original"), ("original", "retrain")]
    out["cka"] = {s: {f"{a}_vs_{b}": cka_per_layer(feats[a][s], feats[b][s])
                      for a, b in pairs_of if a in feats and b in feats}
                  for s in cka_sets}
    out["recovery"] = {mode: recovery(out["relearn"][mode]["unlearned"], cache[("level", mode)])
                       for mode in measured}
    if retrained is not None:
        out["relearn"]["gap"] = {mode: [
            {"step": u["step"], **{k: round(u[k] - r[k], 2) for k in ("R@D_f", "MI")}}
            for u, r in zip(curves["unlearned"], curves["retrain"])]
            for mode, curves in out["relearn"].items()}
    out["relearn"]["targeted_pairs"] = {"relearned": [p.pair_id for p in relearned],
                                        "measured": [p.pair_id for p in held]}
    if retrained is not None:
        out["separation"] = separation(out)
    # this call's time plus that of the measurements it reused: the audit's whole cost
    out["seconds"] = round(time.time() - t0 + reused, 1)
    return out


# below this many points between the original and the unlearned model nothing was removed
# to come back: the share is not defined
MIN_REMOVED = 1.0


def recovery(curve: list[dict], original: dict) -> dict:
    """The reference-free reading of a relearning curve: at each step, the share of what
    unlearning removed (original's figure minus the unlearned one at k=0) that came back.
    0 = none, 1 = back to the original; None where nothing was removed."""
    share = []
    for c in curve:
        row = {"step": c["step"]}
        for k in ("R@D_f", "MI"):
            removed = original[k] - curve[0][k]
            row[k] = round((c[k] - curve[0][k]) / removed, 2) if removed >= MIN_REMOVED else None
        share.append(row)
    return {"original": original, "share": share}


# ---- what a measure cannot tell ------------------------------------------------------------
# A measure separates the unlearned model from Retrain only where it reads the two apart. Where
# Retrain, which never saw D_f, reads as far from "looks unseen" as the unlearned model, the
# unlearned model's figure says nothing about what it remembers: the audit says so instead of
# reporting that figure as a verdict (docs/audit.md, "When a measure cannot tell").
MEMBER_PERCENTILE = 90.0  # a pair above this share of never-seen pairs reads as a member


def auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC from n_pos positives and n_neg negatives (Hanley & McNeil,
    Radiology 1982): the measure's own spread for a request of this size."""
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc ** 2) + (n_neg - 1) * (q2 - auc ** 2))
    return float(np.sqrt(max(var, 0.0) / (n_pos * n_neg)))


def cannot_tell(unlearned: float, retrain: float, unseen: float, spread: float) -> bool:
    """The rule, for a figure that grows away from `unseen` as a model remembers more: the
    unlearned model reads away from looks-unseen by more than the measure's spread, and
    Retrain reads at least as far (within that spread)."""
    return unlearned - unseen > spread and retrain >= unlearned - spread


def separation(result: dict) -> dict:
    """Where each measure of an audit with Retrain cannot tell the unlearned model from it.

    per-pair attacks, per pair: both models put the pair beyond the never-seen pairs'
        MEMBER_PERCENTILE (both read it as a member); per request: `cannot_tell` on the AUC
        (0.5 = looks unseen) with the AUC's standard error (`auc_se`) as the spread.
    relearning (benign, targeted; R@D_f and MI): `cannot_tell` on what came back after the
        last step (the figure there minus at k=0; 0 = nothing) with one pair's worth,
        100 / the measured pairs, as the spread: Retrain regains as much by fine-tuning."""
    per_pair = {}
    for attack in ("loss", "calibrated"):
        u, r = result["per_pair"]["unlearned"][attack], result["per_pair"]["retrain"][attack]
        se = auc_se(u["auc"], result["n_forget_pairs"], result["n_unseen"])
        pairs = [{"pair": pid, "unlearned": pu, "retrain": pr,
                  "cannot_tell": bool(pu >= MEMBER_PERCENTILE and pr >= MEMBER_PERCENTILE)}
                 for pid, pu, pr in zip(result["per_pair"]["pairs"], u["per_pair"],
                                        r["per_pair"])]
        per_pair[attack] = {
            "auc": {"unlearned": u["auc"], "retrain": r["auc"], "se": round(se, 4),
                    "cannot_tell": cannot_tell(u["auc"], r["auc"], 0.5, se)},
            "pairs": pairs,
            "member_pairs": sum(p["unlearned"] >= MEMBER_PERCENTILE for p in pairs),
            "cannot_tell_pairs": sum(p["cannot_tell"] for p in pairs)}
    relearn = {}
    measured = {"benign": result["n_forget_pairs"],
                "targeted": len(result["relearn"]["targeted_pairs"]["measured"])}
    for mode in ("benign", "targeted"):
        curves = result["relearn"].get(mode)
        if not curves or "retrain" not in curves:
            continue
        spread = 100.0 / max(1, measured[mode])
        relearn[mode] = {}
        for key in ("R@D_f", "MI"):
            came = {m: round(curves[m][-1][key] - curves[m][0][key], 2)
                    for m in ("unlearned", "retrain")}
            relearn[mode][key] = {**came, "step": curves["unlearned"][-1]["step"],
                                  "spread": round(spread, 2),
                                  "cannot_tell": cannot_tell(came["unlearned"], came["retrain"],
                                                             0.0, spread)}
    return {"member_percentile": MEMBER_PERCENTILE, "per_pair": per_pair, "relearn": relearn}


def cannot_tell_notes(result: dict) -> list[str]:
    """One sentence per measure that does not separate the unlearned model from Retrain for
    this request (none without Retrain, or where every measure separates)."""
    sep = result.get("separation")
    if not sep:
        return []
    notes = []
    for attack, name in (("calibrated", "calibrated per-pair attack"),
                         ("loss", "loss attack")):
        a = sep["per_pair"][attack]
        if a["auc"]["cannot_tell"]:
            notes.append(
                f"The {name} does not separate the unlearned model from Retrain for this "
                f"request: Retrain, which never saw these pairs, reads as far from \"looks "
                f"unseen\" (AUC {a['auc']['retrain']:.2f}, unlearned {a['auc']['unlearned']:.2f},"
                f" within the AUC's spread of {a['auc']['se']:.2f}); its AUC is no verdict here.")
        elif a["cannot_tell_pairs"]:
            notes.append(
                f"The {name} cannot tell for {a['cannot_tell_pairs']} of the "
                f"{a['member_pairs']} pair(s) the unlearned model reads as members (beyond "
                f"the never-seen pairs' {sep['member_percentile']:.0f}th percentile): "
                f"Retrain, which never saw them, reads them there too.")
    for mode, keys in sep["relearn"].items():
        for key, r in keys.items():
            if r["cannot_tell"]:
                notes.append(
                    f"{mode.capitalize()} relearning does not separate the two on {key}: "
                    f"after {r['step']} steps Retrain, which never saw D_f, regains as much "
                    f"({r['retrain']:+.1f} points, unlearned {r['unlearned']:+.1f}; one pair's "
                    f"worth is {r['spread']:.1f}). What came back is what this fine-tuning "
                    f"gives any model, not a sign of what was remembered.")
    return notes


def _curve_row(curve: list[dict], key: str) -> str:
    return " | ".join(f"{c[key]:.1f}" for c in curve)


def audit_markdown(result: dict) -> str:
    """The audit as Markdown tables, with what each shows."""
    cfg = result["config"]
    steps = cfg["relearn_steps"]
    free = " (reference-free: no Retrain yet)" if result.get("reference_free") else ""
    md = [f"# Audit: does the forgetting hold?{free} ({result['n_forget_pairs']} forget pairs, "
          f"{result['seconds']} s)", ""]
    notes = cannot_tell_notes(result)
    if notes:  # first, so that the figures below are not read as verdicts
        md += ["## What this audit cannot tell for this request", "",
               *[f"- {n}" for n in notes], ""]
    for mode, note in (("benign", "fine-tuned on D_r only"),
                       ("targeted", "fine-tuned on part of D_f (with D_r); measured on the "
                                    "rest of D_f")):
        curves = result["relearn"].get(mode)
        if not curves:
            md += [f"## Relearning, {mode}: skipped (D_f is one pair)", ""]
            continue
        md += [f"## Relearning, {mode} ({note}; lr {cfg['relearn_lr']}, batch "
               f"{cfg['batch_size']})", "",
               "| model | metric | " + " | ".join(f"k={k}" for k in steps) + " |",
               "|---|---|" + "---|" * len(steps)]
        for name, curve in curves.items():
            for key in ("R@D_f", "MI"):
                md.append(f"| {name} | {key} | {_curve_row(curve, key)} |")
        gap = result["relearn"].get("gap", {}).get(mode)
        for key in ("R@D_f", "MI") if gap else ():
            md.append(f"| **gap** (unlearned - retrain) | {key} | {_curve_row(gap, key)} |")
        rec = result.get("recovery", {}).get(mode)
        for key in ("R@D_f", "MI") if rec else ():
            level = rec["original"][key]
            md.append(f"| **came back** (share of what was removed; original {level:.1f}) | "
                      f"{key} | " + " | ".join("n/a" if c[key] is None else f"{c[key]:.2f}"
                                               for c in rec["share"]) + " |")
        md.append("")
    md += ["## Int8 dynamic quantisation", "", "| model | R@D_f fp32 | R@D_f int8 | MI fp32 | "
           "MI int8 |", "|---|---|---|---|---|"]
    for name, q in result["quantisation"].items():
        md.append(f"| {name} | {q['fp32']['R@D_f']:.1f} | {q['int8']['R@D_f']:.1f} | "
                  f"{q['fp32']['MI']:.1f} | {q['int8']['MI']:.1f} |")
    md += ["", "## Per-pair attacks (AUC of D_f against never-trained pairs; 0.5 = "
               "indistinguishable)", "",
           "| model | loss attack AUC | calibrated AUC | median percentile (calibrated) |",
           "|---|---|---|---|"]
    for name in audited_models(result):
        a = result["per_pair"][name]
        md.append(f"| {name} | {a['loss']['auc']:.3f} | {a['calibrated']['auc']:.3f} | "
                  f"{np.median(a['calibrated']['per_pair']):.0f} |")
    debiased = result.get("cka_estimator") == "debiased linear"
    md += ["", f"## {'Debiased linear' if debiased else 'Linear'} CKA per layer (1 = same "
           f"representation{', 0 = unrelated' if debiased else ''})", ""]
    if debiased and "D_f" not in result["cka"]:
        md += [f"On D_f: not computed (fewer than {MIN_EXAMPLES} pairs; the debiased "
               f"estimator needs {MIN_EXAMPLES}).", ""]
    for s, comparisons in result["cka"].items():
        names = list(comparisons)
        layers = list(comparisons[names[0]])
        md += [f"### on {s}", "", "| layer | " + " | ".join(n.replace("_", " ") for n in names)
               + " |", "|---|" + "---|" * len(names)]
        md += [f"| {k} | " + " | ".join(f"{comparisons[n][k]:.3f}" for n in names) + " |"
               for k in layers]
        md.append("")
    return "\n".join(md)


def audited_models(result: dict) -> list[str]:
    """The models an audit measured, in table order (Retrain only once it exists)."""
    return [m for m in ("original", "unlearned", "retrain") if m in result["per_pair"]]


def public_summary(result: dict) -> dict:
    """What a model card may say of an audit: figures only, never a pair id or text (the
    per-pair lists and the relearned / measured ids stay in the internal record)."""
    attacks = {m: {name: {"auc": a["auc"], "median_percentile":
                          round(float(np.median(a["per_pair"])), 1)}
                   for name, a in result["per_pair"][m].items()}
               for m in audited_models(result)}
    top = {s: {k: min(v.items(), key=lambda kv: kv[1]) for k, v in comparisons.items()}
           for s, comparisons in result["cka"].items()}
    summary = {"forget_pairs": result["n_forget_pairs"],
               "reference_free": bool(result.get("reference_free"))}
    if "gap" in result["relearn"]:
        summary["relearning_gap_to_retrain"] = {
            mode: {"steps": [g["step"] for g in gaps], "gap_R@D_f": [g["R@D_f"] for g in gaps],
                   "gap_MI": [g["MI"] for g in gaps]}
            for mode, gaps in result["relearn"]["gap"].items()}
    if "recovery" in result:
        summary["relearning_share_back"] = {
            mode: {"steps": [c["step"] for c in r["share"]],
                   "R@D_f": [c["R@D_f"] for c in r["share"]], "MI": [c["MI"] for c in r["share"]]}
            for mode, r in result["recovery"].items()}
    if "separation" in result:  # figures only: the per-pair list names the pairs
        sep = result["separation"]
        summary["cannot_tell"] = {
            "per_pair_attack_auc": {a: v["auc"]["cannot_tell"]
                                    for a, v in sep["per_pair"].items()},
            "relearning": {mode: {k: v["cannot_tell"] for k, v in keys.items()}
                           for mode, keys in sep["relearn"].items()}}
    return {**summary,
            "int8_quantisation": result["quantisation"],
            "per_pair_attack_auc": attacks,
            "cka_lowest_layer": {s: {k: {"layer": layer, "cka": v}
                                     for k, (layer, v) in d.items()} for s, d in top.items()},
            "config": result["config"], "seconds": result["seconds"]}
