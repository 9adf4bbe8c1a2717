"""`evaluate` (a model's metrics as JSON), `compare` (deltas to Retrain) and `table`
(evaluation results side by side)."""

from __future__ import annotations

import json
from pathlib import Path


def add_evaluate(sub) -> None:
    """`evaluate`: metrics of a model on a scenario and forget list."""
    p = sub.add_parser("evaluate", help="metrics of a model on a scenario, as JSON")
    p.add_argument("--model", default="embedded")
    p.add_argument("--data", required=True)
    p.add_argument("--scenario", required=True, choices=["privacy", "copyright"])
    p.add_argument("--forget", required=True, help="forget list (Df/.../image-<seed>.txt)")
    p.add_argument("--out", default=None)
    p.add_argument("--max-pairs", type=int, default=1000,
                   help="cap on D_r pairs for retrieval (seeded subsample)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_evaluate)


def run_evaluate(a) -> None:
    from mmu_core.metrics.evaluate import evaluate_cli

    evaluate_cli(a)


def add_compare(sub) -> None:
    """`compare`: a result file against Retrain's."""
    p = sub.add_parser("compare", help="deltas to Retrain, Avg.G and M_eff/M_rel/M_loc")
    p.add_argument("--result", required=True)
    p.add_argument("--retrain", required=True)
    p.add_argument("--out", default=None)
    p.set_defaults(func=run_compare)


def run_compare(a) -> None:
    from mmu_core.metrics.compare import compare_files

    result = compare_files(a.result, a.retrain)
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).write_text(text)
    print(text)


def add_table(sub) -> None:
    """`table`: several results files as one Markdown table."""
    p = sub.add_parser("table", help="Markdown table of evaluation results")
    p.add_argument("results", nargs="+", help="NAME=FILE (evaluate outputs)")
    p.add_argument("--retrain", default=None, help="the NAME to compute deltas to")
    p.set_defaults(func=run_table)


def run_table(a) -> None:
    from mmu_core.metrics.compare import headline_table

    named = {}
    for item in a.results:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"error: expected NAME=FILE, got {item!r}")
        named[name] = json.loads(Path(path).read_text())
    print(headline_table(named, a.retrain))
