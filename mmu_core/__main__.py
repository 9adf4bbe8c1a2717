"""Command line: `python -m mmu_core <command> ...` (see `--help` of each command).
A thin shell: each command parses its arguments and calls one subpackage."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_data_generate(a) -> None:
    import time

    from mmu_core.data.generate import generate_world

    t = time.time()
    m = generate_world(a.out, seed=a.seed, size=a.size)
    print(f"wrote the {a.size} world (seed {a.seed}) to {a.out} in {time.time() - t:.1f} s; "
          f"fingerprint {m['fingerprint'][:16]}")


def _cmd_train(a) -> None:
    import torch

    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.backbone import load_backbone
    from mmu_core.training.distributed import accelerator
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
    if "stopped_at_epoch" in summary:
        return
    if acc.is_main_process:
        summary["provenance"] = provenance({"command": sys.argv, **vars(a)})
        Path(a.out, "train_summary.json").write_text(json.dumps(summary, indent=1))
        print(f"saved {a.out} ({summary['train_seconds_this_run']} s, "
              f"{acc.num_processes} process(es) on {acc.device})")


def _cmd_evaluate(a) -> None:
    from mmu_core.metrics.evaluate import evaluate_cli

    evaluate_cli(a)


def _cmd_compare(a) -> None:
    from mmu_core.metrics.compare import compare_files

    result = compare_files(a.result, a.retrain)
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).write_text(text)
    print(text)


def _cmd_train_generators(a) -> None:
    import json as _json

    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.embedded_generators import CaptionerSize, PainterSize
    from mmu_core.training.distributed import accelerator
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
            _json.dumps(summary, indent=1))


def _mvi_inputs(a):
    """Generators, scenario and forgetting pairs named on the command line."""
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.models.generators import load_captioner, load_painter

    root = a.data or default_world()
    sc = load_scenario(root, a.scenario)
    forget, _ = sc.split(load_forget_ids(a.forget))
    return load_captioner(a.captioner), load_painter(a.painter), sc, forget


def _cmd_anchors(a) -> None:
    from mmu_core.mvi.anchors import anchors, write_anchors
    from mmu_core.mvi.fit import fit_or_load
    from mmu_core.mvi.model import MVIConfig

    captioner, painter, sc, forget = _mvi_inputs(a)
    config = MVIConfig(seed=a.seed, steps=a.fit_steps)
    model, summary = fit_or_load(captioner, painter, sc.train, config, cache=not a.no_cache)
    items = anchors(model, captioner, painter, forget, strategy=a.strategy,
                    n_images=a.n_images, n_texts=a.n_texts, seed=a.seed, pool=sc.train)
    index = write_anchors(items, a.out)
    print(f"MVI {'from the cache' if summary['cache_hit'] else 'fitted'} "
          f"({summary['cache_key']}); anchors for {len(items)} pairs in {index}")


def _cmd_bench(a) -> None:
    from mmu_core.bench.mvi import mvi_benchmark

    result = mvi_benchmark(data=a.data, forget_size=a.pairs, seed=a.seed,
                           quality_size=a.quality_size)
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    print(text)


def _cmd_forget(a) -> None:
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
    model, info = run(a.method, request, **settings)
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
          + f"; model, card (README.md) and forget_result.json in {out}; weights SHA-256 "
          f"{card['weights_sha256']}")


def _cmd_audit(a) -> None:
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


def _cmd_export(a) -> None:
    from mmu_core.erasure.export import export, push

    record = export(a.result, a.out)
    print(f"exported {a.result} to {a.out}: weights SHA-256 {record['weights_sha256']}; "
          f"model card {Path(a.out) / 'README.md'}")
    if a.push:  # token: HF_TOKEN or the cached login, never on the command line
        url = push(a.out, a.push, private=not a.public)
        print(f"pushed to {url} ({'public' if a.public else 'private'})")


def _cmd_verify(a) -> None:
    from mmu_core.erasure.export import verify

    result = verify(a.folder)
    print(json.dumps(result, indent=1))
    if not result["match"]:
        raise SystemExit(1)


def _cmd_bench_app(a) -> None:
    from mmu_core.bench.app import app_benchmark

    result = app_benchmark(requests=a.requests, method=a.method)
    _write_json(result, a.out)
    print(json.dumps(result, indent=1))


def _write_json(result: dict, out) -> None:
    text = json.dumps(result, indent=1)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


def _cmd_bench_audit(a) -> None:
    from mmu_core.bench.audit import audit_benchmark

    r = audit_benchmark(method=a.method, scenario=a.scenario, size=a.size, seed=a.seed,
                        retrain=a.retrain, data=a.data,
                        relearn_steps=[int(k) for k in a.relearn_steps.split(",")])
    _write_json(r, a.out)
    print(json.dumps({k: v for k, v in r.items() if k not in ("audit", "provenance")},
                     indent=1))


def _cmd_bench_sequence(a) -> None:
    from mmu_core.bench.audit import SEQUENCE_METHODS, sequence_benchmark, sequence_table

    if a.methods:
        if not a.out:
            raise SystemExit("error: --methods needs --out FOLDER (its resumable cells)")
        methods = SEQUENCE_METHODS if a.methods == "all" else tuple(a.methods.split(","))
        try:
            sequence_table(a.out, methods, a.scenario, a.requests, a.size, a.seed, a.data)
        except ValueError as err:  # an unknown method
            raise SystemExit(f"error: {err}") from None
        print((Path(a.out) / "README.md").read_text())
        return
    r = sequence_benchmark(method=a.method, scenario=a.scenario, requests=a.requests,
                           size=a.size, seed=a.seed, retrain=a.retrain, data=a.data)
    _write_json(r, a.out)
    print(json.dumps({k: v for k, v in r.items() if k != "provenance"}, indent=1))


def _cmd_bench_generation(a) -> None:
    from mmu_core.bench.generation import METHODS, SEEDS, run_table, write_tables

    seeds = tuple(int(s) for s in a.seeds.split(",")) if a.seeds else SEEDS
    methods = tuple(a.methods.split(",")) if a.methods else METHODS
    out = a.out or f"docs/results/bench/generation/table{a.table}"
    if a.tables_only:
        write_tables(a.table, out, seeds, methods)
    else:
        run_table(a.table, out, seeds, methods, data=a.data)
    print((Path(out) / "tables.md").read_text())


def _cmd_bench_device(a) -> None:
    from mmu_core.bench.device_check import QUICK, device_check, real_size_step

    if a.real_size:
        try:
            r = real_size_step(a.device, batch=a.batch, mixed_precision=a.mixed_precision)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        _write_json(r, a.out)
        print(json.dumps({k: v for k, v in r.items() if k != "provenance"}, indent=1))
        return
    try:
        r = device_check(a.device, methods=tuple(a.method or QUICK))
    except ValueError as err:  # no such device here
        raise SystemExit(f"error: {err}") from None
    _write_json(r, a.out)
    print(f"{r['name']}: " + ("every step ran" if r["all_ok"] else "FAILED: " + ", ".join(
        s["step"] for s in r["steps"] if not s["ok"])))
    if not r["all_ok"]:
        raise SystemExit(1)


def _cmd_bench_tune(a) -> None:
    from mmu_core.bench.tuning import tune

    result = tune(a.out, data=a.data, scenarios=tuple(a.scenario or ("privacy", "copyright")),
                  methods=a.method, tables_only=a.tables_only)
    print(json.dumps(result["settings"], indent=1))


def _cmd_bench_unlearning(a) -> None:
    from dataclasses import replace

    from mmu_core.bench.unlearning import PRESETS, dry_run, parse_shard, run_preset, with_sources

    original = {}
    for item in a.original or ():
        scenario, _, ref = item.partition("=")
        if scenario not in ("privacy", "copyright") or not ref:
            raise SystemExit(f"error: --original takes SCENARIO=ID_OR_FOLDER, got {item!r}")
        original[scenario] = ref
    preset = with_sources(PRESETS[a.preset], original, pretrained=a.pretrained,
                          captioner=a.captioner, painter=a.painter)
    if a.dry_run:
        from mmu_core.data.generate import default_world

        preset = dry_run(preset, a.data or default_world())
    if a.method:
        preset = replace(preset, methods=tuple(a.method))
    run_preset(a.preset + ("-dry-run" if a.dry_run else ""), a.out, data=a.data,
               tables_only=a.tables_only, shard=parse_shard(a.shard), preset=preset)
    print((Path(a.out) / "tables.md").read_text())


def _cmd_table(a) -> None:
    from mmu_core.metrics.compare import headline_table

    named = {}
    for item in a.results:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"error: expected NAME=FILE, got {item!r}")
        named[name] = json.loads(Path(path).read_text())
    print(headline_table(named, a.retrain))


def build_parser() -> argparse.ArgumentParser:
    from mmu_core.bench.unlearning import METHODS  # a constant: the module imports lazily

    p = argparse.ArgumentParser(prog="python -m mmu_core",
                                description="Multimodal machine unlearning engine.")
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="procedural data").add_subparsers(dest="data_cmd",
                                                                          required=True)
    g = data.add_parser("generate", help="write the procedural world in real formats")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--size", default="default", choices=["default", "tiny"])
    g.set_defaults(func=_cmd_data_generate)

    t = sub.add_parser("train", help="ITC+ITM training (pretrain / fine-tune / retrain)")
    t.add_argument("--recipe", required=True, choices=["pretrain", "privacy", "copyright",
                                                      "privacy-real", "copyright-real"])
    t.add_argument("--data", required=True, help="world root (output of data generate)")
    t.add_argument("--out", required=True)
    t.add_argument("--init", default=None, help="starting model (default: a new embedded "
                   "backbone for pretrain, embedded:pretrained otherwise)")
    t.add_argument("--exclude", default=None, help="forget list: train on D_r only (Retrain)")
    t.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--cpu", action="store_true", help="train on the CPU even with a GPU")
    t.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"],
                   help="accelerate's mixed precision (GPUs)")
    t.add_argument("--grad-accum", type=int, default=1,
                   help="batches per optimiser step (each keeps its own ITC negatives)")
    t.add_argument("--stop-after", type=int, default=None, metavar="EPOCHS",
                   help="stop after this many epochs of this run, keeping the checkpoint "
                        "(the same command resumes, on any process count)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="metrics of a model on a scenario, as JSON")
    e.add_argument("--model", default="embedded")
    e.add_argument("--data", required=True)
    e.add_argument("--scenario", required=True, choices=["privacy", "copyright"])
    e.add_argument("--forget", required=True, help="forget list (Df/.../image-<seed>.txt)")
    e.add_argument("--out", default=None)
    e.add_argument("--max-pairs", type=int, default=1000,
                   help="cap on D_r pairs for retrieval (seeded subsample)")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=_cmd_evaluate)

    c = sub.add_parser("compare", help="deltas to Retrain, Avg.G and M_eff/M_rel/M_loc")
    c.add_argument("--result", required=True)
    c.add_argument("--retrain", required=True)
    c.add_argument("--out", default=None)
    c.set_defaults(func=_cmd_compare)
    tg = sub.add_parser("train-generators", help="train the embedded BLIP-2 and Stable "
                        "Diffusion on the generic pretraining corpus")
    tg.add_argument("--data", required=True)
    tg.add_argument("--out", required=True, help="folder for blip2-embedded/ and sd-embedded/")
    tg.add_argument("--which", default="both",
                    choices=["captioner", "painter", "classifier", "both"],
                    help="both = all three (the classifier serves the IS-style measure)")
    tg.add_argument("--variant", default=None, choices=["t5", "v2"],
                    help="instead: another generator of the same class for Table 8 (t5: "
                    "BLIP-2 with a T5 LM; v2: SD with a larger text encoder), into "
                    "OUT/captioner-t5 or OUT/painter-v2; --which is ignored (the benchmark "
                    "reads $MMU_CACHE_DIR/generators, default ~/.cache/mmu/generators)")
    tg.add_argument("--captioner-epochs", type=int, default=6)
    tg.add_argument("--vae-epochs", type=int, default=4)
    tg.add_argument("--unet-epochs", type=int, default=30)
    tg.add_argument("--seed", type=int, default=0)
    tg.set_defaults(func=_cmd_train_generators)

    an = sub.add_parser("anchors", help="fit (or reuse) MVI and write anchor samples: R_1 "
                        "images and R_2 texts for a forget set")
    an.add_argument("--data", default=None, help="world root (default: the embedded world)")
    an.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    an.add_argument("--forget", required=True, help="forget list (Df/.../image-<seed>.txt)")
    an.add_argument("--out", required=True)
    an.add_argument("--strategy", default="swap",
                    choices=["swap", "no_swap", "only_u", "only_k", "random"],
                    help="paper Table 3: swap is the method's own")
    an.add_argument("--n-images", type=int, default=1, help="N_R1 per forgetting pair")
    an.add_argument("--n-texts", type=int, default=1, help="N_R2 per forgetting pair")
    an.add_argument("--captioner", default="embedded", help="'embedded', a folder or a hub "
                    "id such as Salesforce/blip2-opt-2.7b")
    an.add_argument("--painter", default="embedded", help="'embedded', a folder or an SD id")
    an.add_argument("--seed", type=int, default=0)
    an.add_argument("--fit-steps", type=int, default=150, help="MVI optimisation steps")
    an.add_argument("--no-cache", action="store_true", help="fit MVI afresh, store nothing")
    an.set_defaults(func=_cmd_anchors)

    fg = sub.add_parser("forget", help="unlearn a forget set with a method (ours or a "
                        "baseline); save the model and its metrics")
    fg.add_argument("--method", default="ours", help="ours, retrain, finetune, ga, badt, "
                    "multidelete, slug, adv")
    fg.add_argument("--model", default=None, help="default: embedded:<scenario>")
    fg.add_argument("--data", default=None, help="world root (default: the embedded world)")
    fg.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    fg.add_argument("--forget", required=True, help="forget list (Df/.../image-<seed>.txt): "
                    "one id, or one annotation image value, per line")
    fg.add_argument("--out", required=True)
    fg.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a method setting, e.g. --set max_steps=20 --set g_opt=false; "
                    "overrides the tuned settings (docs/benchmark.md)")
    fg.add_argument("--builtin-defaults", action="store_true",
                    help="start from the method's own defaults, not the tuned settings")
    fg.add_argument("--seed", type=int, default=0)
    fg.add_argument("--no-eval", action="store_true")
    fg.set_defaults(func=_cmd_forget)

    au = sub.add_parser("audit", help="does the forgetting hold? relearning, quantisation, "
                        "per-pair attacks and CKA against Retrain (JSON + Markdown)")
    au.add_argument("--model", required=True, help="the unlearned model (a `forget --out` "
                    "folder names its forget set and original)")
    au.add_argument("--retrain", default=None, help="Retrain for the same forget set "
                    "(e.g. a `forget --method retrain --out` folder); without it, the "
                    "reference-free audit (no gaps to Retrain)")
    au.add_argument("--original", default=None, help="default: the forget result's base "
                    "model, else embedded:<scenario>")
    au.add_argument("--reference", default="embedded:pretrained", help="a model that never "
                    "saw the scenario's pairs, for the calibrated attack")
    au.add_argument("--scenario", default=None, choices=["privacy", "copyright"])
    au.add_argument("--forget", default=None, help="forget list (default: the one the "
                    "forget result names)")
    au.add_argument("--data", default=None, help="world root (default: the embedded world)")
    au.add_argument("--relearn-steps", default="0,5,20", help="comma-separated k")
    au.add_argument("--relearn-lr", type=float, default=1e-4)
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--out", required=True)
    au.set_defaults(func=_cmd_audit)

    ex = sub.add_parser("export", help="a clean folder from a forget result: model, model "
                        "card, weight fingerprint; optionally pushed to the Hub")
    ex.add_argument("result", help="a folder written by `forget --out`")
    ex.add_argument("--out", required=True)
    ex.add_argument("--push", metavar="REPO_ID", help="owner/name on the Hugging Face Hub "
                    "(token from HF_TOKEN or `huggingface-cli login`)")
    ex.add_argument("--private", action="store_true", help="a private repository (the default)")
    ex.add_argument("--public", action="store_true", help="a public repository instead")
    ex.set_defaults(func=_cmd_export)
    vf = sub.add_parser("verify", help="recompute a folder's weight fingerprint and compare "
                        "it with its card's")
    vf.add_argument("folder")
    vf.set_defaults(func=_cmd_verify)

    bn = sub.add_parser("bench", help="benchmarks (measured times and quality, as JSON)")
    bsub = bn.add_subparsers(dest="bench_cmd", required=True)
    bt = bsub.add_parser("tune", help="the tuning protocol: every method's grid on the "
                         "validation forget sets; writes settings.json (resumable)")
    bt.add_argument("--out", default="docs/results/bench/tuning")
    bt.add_argument("--data", default=None)
    bt.add_argument("--scenario", action="append", choices=["privacy", "copyright"],
                    help="default: both")
    bt.add_argument("--method", action="append", help="default: every tuned method")
    bt.add_argument("--tables-only", action="store_true",
                    help="compute nothing: tabulate the cells there are")
    bt.set_defaults(func=_cmd_bench_tune)
    bm = bsub.add_parser("mvi", help="MVI fit + anchors for a few forgetting pairs; probe "
                         "and generation quality")
    bm.add_argument("--data", default=None)
    bm.add_argument("--pairs", type=int, default=5, choices=[5, 50],
                    help="privacy forget-set size to time")
    bm.add_argument("--quality-size", type=int, default=50, choices=[0, 5, 50],
                    help="forget-set size for the Table 3 quality columns (0: skip)")
    bm.add_argument("--seed", type=int, default=0)
    bm.add_argument("--out", default=None)
    bm.set_defaults(func=_cmd_bench)
    bu = bsub.add_parser("unlearning", help="methods x scenarios x forget sizes x seeds: "
                         "JSON cells (resumable), CSV and Markdown tables")
    bu.add_argument("--preset", default="smoke", choices=["smoke", "paper", "real"])
    bu.add_argument("--data", default=None)
    bu.add_argument("--out", required=True, help="folder: cells/, tables.md, tables.json, "
                    "cells.csv, summary.json")
    bu.add_argument("--tables-only", action="store_true",
                    help="compute nothing: tables from the cells already there")
    bu.add_argument("--shard", default=None, metavar="I/N", help="compute only shard I of N "
                    "(0-based) of the cells; run one per GPU or machine on a shared --out, "
                    "then --tables-only merges")
    bu.add_argument("--original", action="append", metavar="SCENARIO=MODEL",
                    help="the model to unlearn from for a scenario (hub id or folder)")
    bu.add_argument("--pretrained", default=None, help="Retrain's start (hub id or folder)")
    bu.add_argument("--captioner", default=None, help="MVI's image-to-text generator")
    bu.add_argument("--painter", default=None, help="MVI's text-to-image generator")
    bu.add_argument("--method", action="append", choices=list(METHODS),
                    help="only these methods (repeatable)")
    bu.add_argument("--dry-run", action="store_true", help="one cell per scenario (seed 0, "
                    "smallest forget list, 1-epoch Retrain, 50 evaluation pairs): checks "
                    "that every model loads and every method runs")
    bu.set_defaults(func=_cmd_bench_unlearning)
    ba = bsub.add_parser("app", help="the app: start to first interactive page, and forget "
                         "requests of one pair end to end through its API")
    ba.add_argument("--requests", type=int, default=3)
    ba.add_argument("--method", default="ours")
    ba.add_argument("--out", default=None)
    ba.set_defaults(func=_cmd_bench_app)

    bau = bsub.add_parser("audit", help="one forget request, then the audit (relearning, "
                          "quantisation, per-pair attacks, CKA), timed")
    bau.add_argument("--method", default="ours")
    bau.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    bau.add_argument("--size", type=int, default=5)
    bau.add_argument("--seed", type=int, default=0)
    bau.add_argument("--retrain", default=None, help="a Retrain folder for this forget list "
                     "(else trained here, minutes, not counted)")
    bau.add_argument("--relearn-steps", default="0,5,20")
    bau.add_argument("--data", default=None)
    bau.add_argument("--out", default=None)
    bau.set_defaults(func=_cmd_bench_audit)
    bsq = bsub.add_parser("sequence", help="forget requests one after another, timed; with "
                          "--retrain, deltas to a Retrain on the union after each")
    bsq.add_argument("--method", default="ours")
    bsq.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    bsq.add_argument("--requests", type=int, default=5)
    bsq.add_argument("--size", type=int, default=5)
    bsq.add_argument("--seed", type=int, default=0)
    bsq.add_argument("--retrain", action="store_true")
    bsq.add_argument("--methods", default=None, help="several methods (comma-separated, or "
                     "all) with their tuned settings, each against one Retrain on the union "
                     "per request; --out is then a folder of resumable cells and tables")
    bsq.add_argument("--data", default=None)
    bsq.add_argument("--out", default=None)
    bsq.set_defaults(func=_cmd_bench_sequence)

    bg = bsub.add_parser("generation", help="the paper's Tables 7 (auxiliary generation "
                         "losses) and 8 (other generator pairs): generation quality and "
                         "ours' unlearning metrics per MVI setup, privacy forget-50")
    bg.add_argument("--table", type=int, choices=[7, 8], required=True)
    bg.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2)")
    bg.add_argument("--methods", default=None, help="comma-separated (default ours,ours-local)")
    bg.add_argument("--tables-only", action="store_true", help="only rewrite the tables")
    bg.add_argument("--data", default=None)
    bg.add_argument("--out", default=None)
    bg.set_defaults(func=_cmd_bench_generation)
    bdv = bsub.add_parser("device", help="every method, an MVI fit with anchors, an audit and "
                          "an app request on one device, with time and peak memory per step")
    bdv.add_argument("--device", default="cuda", help="cuda (default), cuda:1, cpu")
    bdv.add_argument("--method", action="append", help="only these methods (repeatable)")
    bdv.add_argument("--out", default=None)
    bdv.add_argument("--real-size", action="store_true", help="instead: seconds and peak "
                     "memory of one training step of a BLIP-base-sized model (random weights)")
    bdv.add_argument("--batch", type=int, default=32, help="--real-size batch (BLIP: 32/GPU)")
    bdv.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    bdv.set_defaults(func=_cmd_bench_device)

    tb = sub.add_parser("table", help="Markdown table of evaluation results")
    tb.add_argument("results", nargs="+", help="NAME=FILE (evaluate outputs)")
    tb.add_argument("--retrain", default=None, help="the NAME to compute deltas to")
    tb.set_defaults(func=_cmd_table)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from mmu_core.data.inputs import InputError
    from mmu_core.data.loaders import DataError
    from mmu_core.erasure.export import ExportError
    from mmu_core.models.backbone import UnknownModelError

    try:
        args.func(args)
    except (DataError, UnknownModelError, InputError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (TypeError, ValueError) as err:  # unknown method or setting
        if "unexpected keyword" not in str(err) and "unknown method" not in str(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
