"""The unlearning benchmark's smoke preset end to end (every method on the embedded
default, privacy forget-5), and its resumability."""

import json

from mmu_core.bench.unlearning import METHODS, run_preset


def test_smoke_preset_writes_every_table_and_resumes(tmp_path):
    out = tmp_path / "smoke"
    logs = []
    run_preset("smoke", out, log=logs.append)
    table = (out / "tables.md").read_text()
    for method in ("original",) + METHODS:
        assert f"| {method} |" in table
    assert "Per-word matching-score shifts" in table
    cells = sorted(p.stem for p in (out / "cells").glob("*.json"))
    assert len(cells) == len(METHODS) + 1
    ours = json.loads((out / "cells" / "privacy-5-s0-ours.json").read_text())
    assert ours["unlearning"]["seconds"] > 0 and "MI" in ours["metrics"]["headline"]
    for c in cells:  # every cell says what ran it, and every method how much it worked
        cell = json.loads((out / "cells" / f"{c}.json").read_text())
        assert cell["provenance"]["git"] and cell["provenance"]["versions"]["torch"]
        if cell["method"] != "original":
            assert cell["unlearning"]["grad_evals"] > 0
            assert "untouched" in cell["unlearning"]["forget_scores"]
    assert "| R@D_r |" in table and " ± " in table and "| grad |" in table
    assert len((out / "cells.csv").read_text().splitlines()) == len(cells) + 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["git"] and summary["provenance"]["versions"]
    # a second run computes nothing: every cell is read back
    before = {c: (out / "cells" / f"{c}.json").stat().st_mtime_ns for c in cells}
    run_preset("smoke", out, log=logs.append)
    assert before == {c: (out / "cells" / f"{c}.json").stat().st_mtime_ns for c in cells}
