"""A forget request and what follows it: `forget` (run a method, save the model and its
record), `audit` (does the forgetting hold?), `export` (a clean folder, optionally pushed)
and `verify` (its weight fingerprint)."""

from __future__ import annotations

import json
from pathlib import Path


def add_forget(sub) -> None:
    """`forget`: one method on one forget list, with its tuned settings."""
    p = sub.add_parser("forget", help="unlearn a forget set with a method (ours or a "
                       "baseline); save the model and its metrics")
    p.add_argument("--method", default="ours", help="ours, ours-local, calibrated, "
                   "calibrated-rank, calibrated-near, retrain, finetune, ga, badt, "
                   "multidelete, slug, adv")
    p.add_argument("--model", default=None, help="default: embedded:<scenario>")
    p.add_argument("--data", default=None, help="world root (default: the embedded world)")
    p.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    p.add_argument("--forget", required=True, help="forget list (Df/.../image-<seed>.txt): "
                   "one id, or one annotation image value, per line")
    p.add_argument("--out", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, e.g. --set max_steps=20 --set g_opt=false; "
                   "overrides the tuned settings (docs/benchmark.md)")
    p.add_argument("--builtin-defaults", action="store_true",
                   help="start from the method's own defaults, not the tuned settings")
    p.add_argument("--budget", default=None, metavar="retrain|X",
                   help="keep the 10 nearest other people's (works') own matches within a "
                   "collateral of X, or of Retrain's measured one + 0.05 ('retrain'): an edit "
                   "that moves them further is taken back toward the original and reported "
                   "partly forgotten (unlearn/budget.py); default: no budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-eval", action="store_true")
    p.set_defaults(func=run_forget)


def budget_of(value: str | None, scenario: str, n_ids: int, model: str | None) -> float | None:
    """--budget's value: None, a number, or 'retrain' (Retrain's measured collateral of the
    nearest size + 0.05), printed with where it comes from."""
    from mmu_core.unlearn.budget import default_budget

    if value is None:
        return None
    if value == "retrain":
        budget, source = default_budget(scenario, n_ids, model=model)
        if budget is None:
            raise SystemExit(f"--budget retrain: {source}; give a number instead")
        print(f"neighbours' budget {budget:.3f}: {source}")
        return budget
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"--budget takes 'retrain' or a number, not {value!r}") from None


def run_forget(a) -> None:
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.metrics.evaluate import evaluate
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.backbone import load_backbone
    from mmu_core.unlearn import run
    from mmu_core.erasure.export import new_salt, state_fingerprint, write_card
    from mmu_core.unlearn.request import Request
    from mmu_core.unlearn.tuned import tuned_settings

    settings = {}
    for item in a.set:
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    root = a.data or default_world()
    sc = load_scenario(root, a.scenario)
    ids = load_forget_ids(a.forget)
    tuned, source = ({}, "the method's own defaults (--builtin-defaults)") \
        if a.builtin_defaults else tuned_settings(a.method, a.scenario, len(set(ids)),
                                                  model=a.model)
    settings = {**tuned, **settings}  # --set overrides the tuned values
    print(f"{a.method} settings: {json.dumps(settings)}; defaults from {source}")
    base = a.model or f"embedded:{a.scenario}"
    request = Request.build(load_backbone(base), sc, ids, a.scenario, seed=a.seed)
    budget = budget_of(a.budget, a.scenario, len(set(ids)), base)
    model, info = run(a.method, request, neighbour_budget=budget, **settings)
    out = Path(a.out)
    model.save_pretrained(out)
    # the internal record: for the requester only (it names the forgotten ids and the salt)
    result = {"request": {"base_model": base, "base_weights": state_fingerprint(request.original),
                          "scenario": a.scenario, "forget_list": str(a.forget),
                          "forget_ids": ids, "salt": new_salt()},
              "unlearning": info}
    if not a.no_eval:
        result["metrics"] = evaluate(model, sc, ids, seed=a.seed)
    result["provenance"] = provenance(vars(a))
    (out / "forget_result.json").write_text(json.dumps(result, indent=1))
    card = write_card(out, result)
    moved = info["forget_scores"]
    print(f"{a.method}: {info['seconds']} s; forgetting pairs' ITM match "
          f"{moved['itm_before']:.3f} -> {moved['itm_after']:.3f}, ITC cosine "
          f"{moved['itc_before']:.3f} -> {moved['itc_after']:.3f}"
          + ("; UNTOUCHED: nothing was forgotten" if moved["untouched"] else "")
          + (f"; STOPPED AT THE NEIGHBOURS' BUDGET: the full edit moved them by "
             f"{info['budget']['collateral_full']:.3f}, over the budget of "
             f"{info['budget']['budget']:.3f}; {info['budget']['kept']:.0%} of it kept "
             f"(going further would move them by {info['budget']['collateral_beyond']:.3f})"
             if info.get("budget", {}).get("restored") else "")
          + f"; model, card (README.md) and forget_result.json in {out}; weights SHA-256 "
          f"{card['weights_sha256']}")


def add_audit(sub) -> None:
    """`audit`: relearning, quantisation, per-pair attacks and CKA."""
    p = sub.add_parser("audit", help="does the forgetting hold? relearning, quantisation, "
                       "per-pair attacks and CKA against Retrain (JSON + Markdown)")
    p.add_argument("--model", required=True, help="the unlearned model (a `forget --out` "
                   "folder names its forget set and original)")
    p.add_argument("--retrain", default=None, help="Retrain for the same forget set "
                   "(e.g. a `forget --method retrain --out` folder); without it, the "
                   "reference-free audit (no gaps to Retrain)")
    p.add_argument("--original", default=None, help="default: the forget result's base "
                   "model, else embedded:<scenario>")
    p.add_argument("--reference", default="embedded:pretrained", help="a model that never "
                   "saw the scenario's pairs, for the calibrated attack")
    p.add_argument("--scenario", default=None, choices=["privacy", "copyright"])
    p.add_argument("--forget", default=None, help="forget list (default: the one the "
                   "forget result names)")
    p.add_argument("--data", default=None, help="world root (default: the embedded world)")
    p.add_argument("--relearn-steps", default="0,5,20", help="comma-separated k")
    p.add_argument("--relearn-lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=run_audit)


def run_audit(a) -> None:
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.erasure.audit import AuditConfig, audit, audit_markdown
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.backbone import load_backbone

    record = Path(a.model, "forget_result.json")
    request = json.loads(record.read_text())["request"] if record.is_file() else {}
    scenario = a.scenario or request.get("scenario") or "privacy"
    if a.forget:
        ids = load_forget_ids(a.forget)
    elif request.get("forget_ids"):
        ids = request["forget_ids"]
    else:
        raise SystemExit("error: --forget is needed (the model folder holds no "
                         "forget_result.json naming its forget set)")
    sc = load_scenario(a.data or default_world(), scenario)
    original = a.original or request.get("base_model") or f"embedded:{scenario}"
    steps = tuple(int(k) for k in a.relearn_steps.split(","))
    config = AuditConfig(relearn_steps=steps, relearn_lr=a.relearn_lr, seed=a.seed)
    retrained = load_backbone(a.retrain) if a.retrain else None
    result = audit(load_backbone(a.model), load_backbone(original), retrained,
                   load_backbone(a.reference), sc, ids, config)
    result.update(model=a.model, original=original, retrain=a.retrain, reference=a.reference,
                  scenario=scenario, provenance=provenance(vars(a)))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(result, indent=1))
    (out / "audit.md").write_text(audit_markdown(result))
    if record.is_file() and not a.forget:  # the forget result's own audit: into its card
        from mmu_core.erasure.audit import public_summary
        from mmu_core.erasure.export import write_card

        internal = json.loads(record.read_text())
        internal["audits"] = public_summary(result)
        record.write_text(json.dumps(internal, indent=1))
        write_card(a.model, internal)
    if retrained is not None:
        gap = result["relearn"]["gap"]["benign"][-1]
        said = f"R@D_f is {gap['R@D_f']:+.1f} points from Retrain's"
    else:
        gap = result["recovery"]["benign"]["share"][-1]
        said = ("nothing had been removed from R@D_f" if gap["R@D_f"] is None else
                f"{gap['R@D_f']:.0%} of the R@D_f removed came back (reference-free)")
    print(f"audit in {result['seconds']} s; after {gap['step']} benign relearning steps "
          f"{said}; audit.json and audit.md in {out}")


def add_export(sub) -> None:
    """`export`: the model folder to take home."""
    p = sub.add_parser("export", help="a clean folder from a forget result: model, model "
                       "card, weight fingerprint; optionally pushed to the Hub")
    p.add_argument("result", help="a folder written by `forget --out`")
    p.add_argument("--out", required=True)
    p.add_argument("--push", metavar="REPO_ID", help="owner/name on the Hugging Face Hub "
                   "(token from HF_TOKEN or `huggingface-cli login`)")
    p.add_argument("--private", action="store_true", help="a private repository (the default)")
    p.add_argument("--public", action="store_true", help="a public repository instead")
    p.set_defaults(func=run_export)


def run_export(a) -> None:
    from mmu_core.erasure.export import export, push

    record = export(a.result, a.out)
    print(f"exported {a.result} to {a.out}: weights SHA-256 {record['weights_sha256']}; "
          f"model card {Path(a.out) / 'README.md'}")
    if a.push:  # token: HF_TOKEN or the cached login, never on the command line
        url = push(a.out, a.push, private=not a.public)
        print(f"pushed to {url} ({'public' if a.public else 'private'})")


def add_verify(sub) -> None:
    """`verify`: recompute a folder's fingerprint."""
    p = sub.add_parser("verify", help="recompute a folder's weight fingerprint and compare "
                       "it with its card's")
    p.add_argument("folder")
    p.set_defaults(func=run_verify)


def run_verify(a) -> None:
    from mmu_core.erasure.export import verify

    result = verify(a.folder)
    print(json.dumps(result, indent=1))
    if not result["match"]:
        raise SystemExit(1)
