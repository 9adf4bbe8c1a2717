"""Deltas to Retrain, Avg.G and the paper's M_eff / M_rel / M_loc (section 5, Metrics).

Delta = |method - Retrain| for MI, performance on D_f and on D_test; Avg.G averages the
three deltas of a task (the four-axis figure adds |delta R@D_r|); M_eff = 100 - dMI, M_rel = 100 - dR@D_f, M_loc = 100 - dR@D_test
(all in percent).
"""

from __future__ import annotations

import json
from pathlib import Path

TASK_KEYS = {"retrieval": ("MI", "R@D_f", "R@D_test"), "second": ("MI", "A@D_f", "A@D_test")}


def compare(result: dict, retrain: dict) -> dict:
    h, r = result["headline"], retrain["headline"]
    if result.get("scenario") != retrain.get("scenario"):
        raise ValueError(f"scenarios differ: {result.get('scenario')} vs {retrain.get('scenario')}")
    out = {"scenario": result.get("scenario")}
    for task, keys in TASK_KEYS.items():
        if not all(k in h and k in r for k in keys):
            continue
        deltas = {k: abs(h[k] - r[k]) for k in keys}
        out[task] = {"values": {k: h[k] for k in keys}, "retrain": {k: r[k] for k in keys},
                     "delta": deltas, "avg_g": sum(deltas.values()) / len(deltas)}
    if "retrieval" in out and "R@D_r" in h and "R@D_r" in r:
        # Avg.G leaves the retained pairs out; the four-axis figure (issue 32) adds them
        four = [*out["retrieval"]["delta"].values(), abs(h["R@D_r"] - r["R@D_r"])]
        out["retrieval"]["four_axis"] = sum(four) / len(four)
    rt = out["retrieval"]["delta"]
    out["M_eff"] = 100.0 - rt["MI"]
    out["M_rel"] = 100.0 - rt["R@D_f"]
    out["M_loc"] = 100.0 - rt["R@D_test"]
    return out


def compare_files(result_path, retrain_path) -> dict:
    return compare(json.loads(Path(result_path).read_text()),
                   json.loads(Path(retrain_path).read_text()))


def headline_table(named: dict[str, dict], retrain: str | None = None) -> str:
    """A Markdown table of headline metrics, one row per result; with `retrain` naming one
    of them, each value also shows its |delta| to Retrain."""
    keys = [k for k in ("MI", "R@D_f", "R@D_test", "R@D_r", "A@D_f", "A@D_test", "A@D_r")
            if all(k in r["headline"] for r in named.values())]
    ref = named[retrain]["headline"] if retrain else None
    rows = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in named.items():
        cells = []
        for k in keys:
            v = r["headline"][k]
            if v != v:  # NaN: nothing to measure (e.g. no questions about these pairs)
                cells.append("n/a")
                continue
            cells.append(f"{v:.1f}" + (f" ({abs(v - ref[k]):.1f})" if ref else ""))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
