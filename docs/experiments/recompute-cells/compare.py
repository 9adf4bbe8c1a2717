"""Compare committed benchmark cells with the same cells computed again (docs/experiments/
recompute-cells/README.md): every number under `metrics` and `unlearning` (seconds aside),
old against new, and which audits changed.

    PYTHONPATH=. python docs/experiments/recompute-cells/compare.py OLD_DIR NEW_DIR [OUT.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def numbers(x, prefix=""):
    """Every number in a nested JSON value, as path -> value."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            out.update(numbers(v, f"{prefix}{k}/"))
        return out
    if isinstance(x, list):
        out = {}
        for i, v in enumerate(x):
            out.update(numbers(v, f"{prefix}{i}/"))
        return out
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return {prefix.rstrip("/"): float(x)}
    return {}


def compare(old_dir: Path, new_dir: Path) -> dict:
    rows = {}
    for old_file in sorted(old_dir.glob("*.json")):
        new_file = new_dir / old_file.name
        if not new_file.is_file():
            continue
        old, new = json.loads(old_file.read_text()), json.loads(new_file.read_text())
        row = {}
        for part in ("metrics", "unlearning"):
            a, b = numbers(old.get(part, {})), numbers(new.get(part, {}))
            keys = [k for k in a.keys() & b.keys() if "seconds" not in k and k != "total"]
            diffs = {k: abs(a[k] - b[k]) for k in keys if a[k] == a[k] and b[k] == b[k]}
            row[part] = {"numbers": len(keys), "differ": sum(d > 1e-9 for d in diffs.values()),
                         "max_abs_diff": max(diffs.values(), default=0.0)}
        row["seconds"] = (old["unlearning"]["seconds"], new["unlearning"]["seconds"])
        row["git"] = (old.get("provenance", {}).get("git"), new.get("provenance", {}).get("git"))
        rows[old_file.stem] = row
    return rows


if __name__ == "__main__":
    result = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    text = json.dumps(result, indent=1, default=str)
    if len(sys.argv) > 3:
        Path(sys.argv[3]).write_text(text)
    for name, r in result.items():
        print(f"{name}: metrics {r['metrics']['differ']}/{r['metrics']['numbers']} differ "
              f"(max {r['metrics']['max_abs_diff']:.4g}); unlearning "
              f"{r['unlearning']['differ']}/{r['unlearning']['numbers']}; seconds "
              f"{r['seconds'][0]} -> {r['seconds'][1]}")
