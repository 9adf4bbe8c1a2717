"""`bench <name>`: the benchmarks, one sub-command each (mmu_core/bench/ holds the work).

A sub-command is an `add_*(sub)` function, registered with `@bench_command`, that adds its
parser (options, help) and names its handler with `set_defaults(func=...)`; the handler
sits right below it. `bench --help` lists them in registration order. A sub-command kept in
another module registers the same way; that module must be imported before
`build_parser` runs (`mmu_core/__main__.py` imports the command modules).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

BENCH_COMMANDS: list[Callable] = []  # the add_* functions, in `bench --help` order


def bench_command(add: Callable) -> Callable:
    """Register `add(sub)`, which adds one `bench` sub-command to the sub-parsers `sub`."""
    BENCH_COMMANDS.append(add)
    return add


def add_bench(sub) -> None:
    """`bench` and every registered sub-command under it."""
    p = sub.add_parser("bench", help="benchmarks (measured times and quality, as JSON)")
    bench = p.add_subparsers(dest="bench_cmd", required=True)
    for add in BENCH_COMMANDS:
        add(bench)


def write_json(result: dict, out) -> None:
    """A benchmark's result as JSON at `out` (a path, or None for nowhere)."""
    text = json.dumps(result, indent=1)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


@bench_command
def add_tune(sub) -> None:
    """`bench tune`: the tuning protocol (docs/benchmark.md)."""
    p = sub.add_parser("tune", help="the tuning protocol: every method's grid on the "
                       "validation forget sets; writes settings.json (resumable)")
    p.add_argument("--out", default="docs/results/bench/tuning")
    p.add_argument("--data", default=None)
    p.add_argument("--scenario", action="append", choices=["privacy", "copyright"],
                   help="default: both")
    p.add_argument("--method", action="append", help="default: every tuned method")
    p.add_argument("--size", action="append", type=int, help="compute only these sizes")
    p.add_argument("--tables-only", action="store_true",
                   help="compute nothing: tabulate the cells there are")
    p.add_argument("--reference-draws", action="store_true",
                   help="read each one-person list against the mean of several Retrain "
                        "draws (REFERENCE_DRAWS, computed if missing), as the confirm half "
                        "does; the committed choices read one draw")
    p.set_defaults(func=run_tune)


def run_tune(a) -> None:
    from mmu_core.bench.tuning import REFERENCE_DRAWS, SECOND_WORLD, tune

    # the embedded default validates privacy-500 in a second generated world
    result = tune(a.out, data=a.data, scenarios=tuple(a.scenario or ("privacy", "copyright")),
                  methods=a.method, tables_only=a.tables_only, sizes=a.size,
                  draws=REFERENCE_DRAWS if a.reference_draws else None,
                  second_world=SECOND_WORLD if a.data is None else None)
    print(json.dumps(result["settings"], indent=1))


@bench_command
def add_confirm(sub) -> None:
    """`bench confirm`: the tuned settings on the confirm half (issue 32)."""
    p = sub.add_parser("confirm", help="every method's tuned setting on the confirm half of "
                       "the validation forget sets, against their Retrains (resumable)")
    p.add_argument("--out", default="docs/results/bench/confirm")
    p.add_argument("--data", default=None)
    p.add_argument("--settings", default=None,
                   help="settings.json to confirm (default: the tuning's)")
    p.add_argument("--scenario", action="append", choices=["privacy", "copyright"],
                   help="default: both")
    p.add_argument("--method", action="append",
                   help="compute only these (retrain: its further draws at one person too)")
    p.add_argument("--size", action="append", type=int, help="compute only these sizes")
    p.add_argument("--list", action="append", help="compute only these lists (confirm-<k>)")
    p.add_argument("--shard", default=None, help="i/n: compute every n-th cell only")
    p.add_argument("--tables-only", action="store_true",
                   help="compute nothing: tabulate the cells there are")
    p.set_defaults(func=run_confirm)


def run_confirm(a) -> None:
    from mmu_core.bench.confirm import SETTINGS, confirm
    from mmu_core.bench.unlearning import parse_shard

    result = confirm(a.out, data=a.data, settings_path=a.settings or SETTINGS,
                     scenarios=tuple(a.scenario or ("privacy", "copyright")), methods=a.method,
                     sizes=a.size, lists=a.list, shard=parse_shard(a.shard),
                     tables_only=a.tables_only)
    print((Path(a.out) / "confirm.md").read_text() if result["table"] else "no cells yet")


@bench_command
def add_mvi(sub) -> None:
    """`bench mvi`: MVI's fit, anchors, probe and quality, timed."""
    p = sub.add_parser("mvi", help="MVI fit + anchors for a few forgetting pairs; probe "
                       "and generation quality")
    p.add_argument("--data", default=None)
    p.add_argument("--pairs", type=int, default=5, choices=[5, 50],
                   help="privacy forget-set size to time")
    p.add_argument("--quality-size", type=int, default=50, choices=[0, 5, 50],
                   help="forget-set size for the Table 3 quality columns (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_mvi)


def run_mvi(a) -> None:
    from mmu_core.bench.mvi import mvi_benchmark

    result = mvi_benchmark(data=a.data, forget_size=a.pairs, seed=a.seed,
                           quality_size=a.quality_size)
    write_json(result, a.out)
    print(json.dumps(result, indent=1))


@bench_command
def add_unlearning(sub) -> None:
    """`bench unlearning`: a preset's grid of cells and its tables."""
    from mmu_core.bench.unlearning import METHODS  # a constant: the module imports lazily

    p = sub.add_parser("unlearning", help="methods x scenarios x forget sizes x seeds: "
                       "JSON cells (resumable), CSV and Markdown tables")
    p.add_argument("--preset", default="smoke", choices=["smoke", "paper", "real"])
    p.add_argument("--data", default=None)
    p.add_argument("--out", required=True, help="folder: cells/, tables.md, tables.json, "
                   "cells.csv, summary.json")
    p.add_argument("--tables-only", action="store_true",
                   help="compute nothing: tables from the cells already there")
    p.add_argument("--shard", default=None, metavar="I/N", help="compute only shard I of N "
                   "(0-based) of the cells; run one per GPU or machine on a shared --out, "
                   "then --tables-only merges")
    p.add_argument("--original", action="append", metavar="SCENARIO=MODEL",
                   help="the model to unlearn from for a scenario (hub id or folder)")
    p.add_argument("--pretrained", default=None, help="Retrain's start (hub id or folder)")
    p.add_argument("--captioner", default=None, help="MVI's image-to-text generator")
    p.add_argument("--painter", default=None, help="MVI's text-to-image generator")
    p.add_argument("--method", action="append", choices=list(METHODS),
                   help="only these methods (repeatable)")
    p.add_argument("--backfill-collateral", action="store_true", help="rerun the methods "
                   "of cells computed before the collateral was measured, adding it where the "
                   "rerun reproduces the cell (resumable)")
    p.add_argument("--dry-run", action="store_true", help="one cell per scenario (seed 0, "
                   "smallest forget list, 1-epoch Retrain, 50 evaluation pairs): checks "
                   "that every model loads and every method runs")
    p.set_defaults(func=run_unlearning)


def run_unlearning(a) -> None:
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
    name = a.preset + ("-dry-run" if a.dry_run else "")
    run_preset(name, a.out, data=a.data, tables_only=a.tables_only, shard=parse_shard(a.shard),
               preset=replace(preset, methods=tuple(a.method)) if a.method else preset,
               backfill=a.backfill_collateral)
    if a.method:  # --method limits what is computed; the tables cover the whole preset
        run_preset(name, a.out, data=a.data, tables_only=True, preset=preset)
    print((Path(a.out) / "tables.md").read_text())


@bench_command
def add_app(sub) -> None:
    """`bench app`: the app's start and requests through its API, timed."""
    p = sub.add_parser("app", help="the app: start to first interactive page, and forget "
                       "requests of one pair end to end through its API; with --visitors, "
                       "the app under load")
    p.add_argument("--requests", type=int, default=3)
    p.add_argument("--method", default=None,
                   help="default: ours (multidelete with --visitors)")
    p.add_argument("--visitors", type=int, default=None,
                   help="N concurrent visitors through forget, the reference-free audit and "
                        "Compare (which queues their Retrains): latency, CPU, peak memory")
    p.add_argument("--retrain-epochs", type=int, default=80,
                   help="--visitors: the queued Retrains' epochs (the recipe's: 80)")
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_app)


def run_app(a) -> None:
    from mmu_core.bench.app import app_benchmark
    from mmu_ui.load_benchmark import load_benchmark

    if a.visitors:
        result = load_benchmark(a.visitors, None, method=a.method or "multidelete",
                                epochs=a.retrain_epochs)
    else:
        result = app_benchmark(requests=a.requests, method=a.method or "ours")
    write_json(result, a.out)
    print(json.dumps(result, indent=1))


@bench_command
def add_audit(sub) -> None:
    """`bench audit`: one request, then its audit, timed."""
    p = sub.add_parser("audit", help="one forget request, then the audit (relearning, "
                       "quantisation, per-pair attacks, CKA), timed")
    p.add_argument("--method", default="ours")
    p.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retrain", default=None, help="a Retrain folder for this forget list "
                   "(else trained here, minutes, not counted)")
    p.add_argument("--relearn-steps", default="0,5,20")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_audit)


def run_audit(a) -> None:
    from mmu_core.bench.audit import audit_benchmark

    r = audit_benchmark(method=a.method, scenario=a.scenario, size=a.size, seed=a.seed,
                        retrain=a.retrain, data=a.data,
                        relearn_steps=[int(k) for k in a.relearn_steps.split(",")])
    write_json(r, a.out)
    print(json.dumps({k: v for k, v in r.items() if k not in ("audit", "provenance")},
                     indent=1))


@bench_command
def add_sequence(sub) -> None:
    """`bench sequence`: requests one after another."""
    p = sub.add_parser("sequence", help="forget requests one after another, timed; with "
                       "--retrain, deltas to a Retrain on the union after each")
    p.add_argument("--method", default="ours")
    p.add_argument("--scenario", default="privacy", choices=["privacy", "copyright"])
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--methods", default=None, help="several methods (comma-separated, or "
                   "all) with their tuned settings, each against one Retrain on the union "
                   "per request; --out is then a folder of resumable cells and tables")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_sequence)


def run_sequence(a) -> None:
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
    write_json(r, a.out)
    print(json.dumps({k: v for k, v in r.items() if k != "provenance"}, indent=1))


@bench_command
def add_generation(sub) -> None:
    """`bench generation`: the paper's Tables 7 and 8."""
    p = sub.add_parser("generation", help="the paper's Tables 7 (auxiliary generation "
                       "losses) and 8 (other generator pairs): generation quality and "
                       "ours' unlearning metrics per MVI setup, privacy forget-50")
    p.add_argument("--table", type=int, choices=[7, 8], required=True)
    p.add_argument("--seeds", default=None, help="comma-separated (default 0,1,2)")
    p.add_argument("--methods", default=None, help="comma-separated (default ours,ours-local)")
    p.add_argument("--tables-only", action="store_true", help="only rewrite the tables")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_generation)


def run_generation(a) -> None:
    from mmu_core.bench.generation import METHODS, SEEDS, run_table, write_tables

    seeds = tuple(int(s) for s in a.seeds.split(",")) if a.seeds else SEEDS
    methods = tuple(a.methods.split(",")) if a.methods else METHODS
    out = a.out or f"docs/results/bench/generation/table{a.table}"
    if a.tables_only:
        write_tables(a.table, out, seeds, methods)
    else:
        run_table(a.table, out, seeds, methods, data=a.data)
    print((Path(out) / "tables.md").read_text())


@bench_command
def add_device(sub) -> None:
    """`bench device`: every step on one device, with time and peak memory."""
    p = sub.add_parser("device", help="every method, an MVI fit with anchors, an audit and "
                       "an app request on one device, with time and peak memory per step")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:1, cpu")
    p.add_argument("--method", action="append", help="only these methods (repeatable)")
    p.add_argument("--out", default=None)
    p.add_argument("--real-size", action="store_true", help="instead: seconds and peak "
                   "memory of one training step of a BLIP-base-sized model (random weights)")
    p.add_argument("--batch", type=int, default=32, help="--real-size batch (BLIP: 32/GPU)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    p.set_defaults(func=run_device)


def run_device(a) -> None:
    from mmu_core.bench.device_check import QUICK, device_check, real_size_step

    if a.real_size:
        try:
            r = real_size_step(a.device, batch=a.batch, mixed_precision=a.mixed_precision)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
        write_json(r, a.out)
        print(json.dumps({k: v for k, v in r.items() if k != "provenance"}, indent=1))
        return
    try:
        r = device_check(a.device, methods=tuple(a.method or QUICK))
    except ValueError as err:  # no such device here
        raise SystemExit(f"error: {err}") from None
    write_json(r, a.out)
    print(f"{r['name']}: " + ("every step ran" if r["all_ok"] else "FAILED: " + ", ".join(
        s["step"] for s in r["steps"] if not s["ok"])))
    if not r["all_ok"]:
        raise SystemExit(1)


@bench_command
def add_cost(sub) -> None:
    """`bench cost`: what a request costs at the real model's size, and how it grows."""
    p = sub.add_parser("cost", help="seconds and memory per method at 1/5/50/500 forget "
                       "pairs, MVI, Inspect and the audit, at the embedded size (measured) and "
                       "at BLIP-base size (counted work x measured unit costs; resumable)")
    p.add_argument("--out", default="docs/results/bench/cost")
    p.add_argument("--part", action="append",
                   choices=["units", "scan", "extras", "check"],
                   help="only these parts (default: all; each cell is kept on disk)")
    p.add_argument("--method", action="append", help="scan only these methods")
    p.add_argument("--size", action="append", type=int, help="scan only these sizes")
    p.add_argument("--tables-only", action="store_true", help="compute nothing: tabulate")
    p.set_defaults(func=run_cost)


def run_cost(a) -> None:
    from mmu_core.bench.cost import SIZES, cost, tables

    if a.tables_only:
        tables(a.out)
    else:
        cost(a.out, parts=tuple(a.part or ("units", "scan", "extras", "check")),
             methods=a.method, sizes=tuple(a.size or SIZES))
    print((Path(a.out) / "cost.md").read_text())
