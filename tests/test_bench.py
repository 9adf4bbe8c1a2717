"""The unlearning benchmark's smoke preset end to end (three of its methods on the embedded
default, privacy forget-5), and its resumability."""

import json
from dataclasses import replace

import pytest

from mmu_core.bench.unlearning import METHODS, PRESETS, run_preset


def test_smoke_preset_writes_every_table_and_resumes(tmp_path):
    assert set(PRESETS["smoke"].methods) == set(METHODS) - {
        "ours-local+budget", "calibrated", "calibrated+budget", "calibrated-rank",
        "calibrated-rank+budget"}
    # The harness treats every method alike but Retrain (the reference) and ours (word
    # shifts); each method's own run, its grad_evals and forget_scores are tests/test_unlearn's.
    methods = ("retrain", "multidelete", "ours")
    preset = replace(PRESETS["smoke"], methods=methods)
    out = tmp_path / "smoke"
    logs = []
    run_preset("smoke", out, preset=preset, log=logs.append)
    table = (out / "tables.md").read_text()
    assert table.startswith("# Unlearning benchmark, preset `smoke`\n")  # complete
    for method in ("original",) + methods:
        assert f"| {method} |" in table
    assert "Per-word matching-score shifts" in table
    cells = sorted(p.stem for p in (out / "cells").glob("*.json"))
    assert len(cells) == len(methods) + 1
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
    run_preset("smoke", out, preset=preset, log=logs.append)
    assert before == {c: (out / "cells" / f"{c}.json").stat().st_mtime_ns for c in cells}


def test_shards_split_the_cells_between_them(tmp_path, monkeypatch):
    import pytest

    from mmu_core.bench import unlearning as U

    computed = {}

    def fake_cached_cell(out, name, compute):
        if compute is not None:
            computed.setdefault(shard, []).append(name)
        return None

    monkeypatch.setattr(U, "cached_cell", fake_cached_cell)
    for shard in (None, (0, 2), (1, 2)):
        U.run_preset("paper", tmp_path / "p", log=lambda *_: None, shard=shard)
    every = computed[None]
    assert len(every) == len(set(every)) > 2
    # first pass, then the audited sizes' other seeds, then the rest, then the ablations
    first_ablation = next(i for i, n in enumerate(every) if "[" in n)
    assert max(i for i, n in enumerate(every) if "-s0-" in n and "[" not in n) < \
        every.index("privacy-5-s1-retrain") < every.index("privacy-50-s1-retrain") < first_ablation
    assert f"(PARTIAL: 0 of {len(every)} cells)" in (tmp_path / "p" / "tables.md").read_text()
    assert sorted(computed[(0, 2)] + computed[(1, 2)]) == sorted(every)
    assert not set(computed[(0, 2)]) & set(computed[(1, 2)])
    assert U.parse_shard("1/4") == (1, 4) and U.parse_shard(None) is None
    with pytest.raises(ValueError, match="0 <= i < n"):
        U.parse_shard("4/4")


def test_device_check_runs_every_step_and_reports_time_and_memory(monkeypatch):
    import pytest
    import torch

    from mmu_core.bench.device_check import device_check

    r = device_check("cpu", methods=("ga",), log=lambda *_: None)
    assert r["all_ok"], [s for s in r["steps"] if not s["ok"]]
    assert [s["step"] for s in r["steps"]] == [
        "unlearn: ga", "MVI fit (20 steps) + anchors", "audit", "app forget request (ours)"]
    assert all(s["seconds"] > 0 and s["peak_mb"] > 0 for s in r["steps"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        device_check("cuda")


def test_audited_cells_carry_an_audit_against_the_kept_retrain(tmp_path, monkeypatch,
                                                              tiny_world, tiny_backbone):
    """Issue 13's audit table: every method's result in an audited cell is audited against
    its seed's Retrain, which is trained once (by its own cell) and kept outside the
    results folder for the others' audits. Tiny world and model: the wiring, not figures."""
    import mmu_core.unlearn as unlearn
    from mmu_core.bench import unlearning as U

    monkeypatch.setenv("MMU_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real_run = unlearn.run

    def counting_run(method, request, **kw):
        calls.append(method)
        return real_run(method, request, **kw)

    monkeypatch.setattr(unlearn, "run", counting_run)
    # the guarded form's budget is measured on the embedded default only: stand one in
    monkeypatch.setattr(U, "guarded_budget", lambda *a: (0.01, "a test's budget"))
    tiny_backbone.save_pretrained(tmp_path / "tiny")
    preset = U.with_sources(
        replace(U.PRESETS["smoke"], methods=("ga", "ga+budget", "retrain"), retrain_epochs=1,
                audits=(("privacy", 5),), audit_relearn_steps=(0, 2), eval_max_pairs=40),
        original={"privacy": str(tmp_path / "tiny")}, pretrained=str(tmp_path / "tiny"))
    out = tmp_path / "audited"
    U.run_preset("smoke", out, data=tiny_world, preset=preset, log=lambda *_: None)
    assert calls.count("retrain") == 1 and calls[0] == "retrain"  # Retrain first, once
    assert (U.kept_model_dir(out, "privacy-5-s0-retrain") / "config.json").is_file()
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert "audit" not in cells["privacy-5-s0-retrain"]
    # the guarded form: its base method within the budget, said where it came from
    guarded = cells["privacy-5-s0-ga+budget"]
    assert guarded["method"] == guarded["unlearning"]["method"] == "ga+budget"
    assert guarded["settings"]["neighbour_budget"] == 0.01
    assert guarded["unlearning"]["budget"]["budget"] == 0.01
    assert guarded["unlearning"]["budget_source"] == "a test's budget"
    assert guarded["unlearning"]["collateral"]["mean_abs_itm_change"] <= 0.01 + 1e-3
    for name in ("privacy-5-s0-original", "privacy-5-s0-ga", "privacy-5-s0-ga+budget"):
        audit = cells[name]["audit"]
        assert {"relearn", "quantisation", "per_pair", "cka"} <= set(audit)
        assert [r["step"] for r in audit["relearn"]["benign"]["retrain"]] == [0, 2]
    # the original is audited against the same Retrain as GA: its reference row agrees
    ref = [U.audit_values(cells[n]["audit"])["retrain:loss AUC"]
           for n in ("privacy-5-s0-original", "privacy-5-s0-ga")]
    assert ref[0] == ref[1]
    table = (out / "tables.md").read_text()
    assert "## Audit, privacy, forget 5" in table
    for row in ("| original |", "| ga |", "| ga+budget |", "| retrain (reference) |"):
        assert row in table.split("## Audit")[1]


def test_a_cell_made_under_another_choice_is_refused(tmp_path, monkeypatch, tiny_world,
                                                     tiny_backbone):
    """When the tuning's choice changes (a new rule, a new grid), the cells made with the old
    settings are not read back as if they were the new choice's."""
    import mmu_core.unlearn.tuned as tuned
    from mmu_core.bench import unlearning as U

    chosen = {"steps": 1, "lr": 1e-4}
    monkeypatch.setattr(tuned, "tuned_settings", lambda *a, **kw: (dict(chosen), "a test"))
    tiny_backbone.save_pretrained(tmp_path / "tiny")
    preset = U.with_sources(
        replace(U.PRESETS["smoke"], methods=("ga",), tuned=True, eval_max_pairs=40),
        original={"privacy": str(tmp_path / "tiny")}, pretrained=str(tmp_path / "tiny"))
    out = tmp_path / "tuned"
    U.run_preset("smoke", out, data=tiny_world, preset=preset, log=lambda *_: None)
    cell = json.loads((out / "cells" / "privacy-5-s0-ga.json").read_text())
    assert cell["settings"] == chosen
    U.run_preset("smoke", out, data=tiny_world, preset=preset, log=lambda *_: None,
                 tables_only=True)  # the same choice: read back
    chosen["steps"] = 2
    with pytest.raises(ValueError, match="privacy-5-s0-ga.json holds"):
        U.run_preset("smoke", out, data=tiny_world, preset=preset, log=lambda *_: None,
                     tables_only=True)


def test_summary_bolds_the_lowest_method_and_counts_the_seeds():
    from mmu_core.bench.unlearning import PRESETS, summary_markdown

    def cell(method, seed, mi, rdr=90.0):
        h = {"MI": mi, "R@D_f": 10.0, "R@D_test": 70.0, "R@D_r": rdr}
        return {"method": method, "seed": seed, "unlearning": {"seconds": 1.0},
                "metrics": {"scenario": "privacy", "headline": h}}

    by = {("privacy", 5, "retrain"): [cell("retrain", s, 0.0) for s in (0, 1)],
          ("privacy", 5, "original"): [cell("original", s, 0.0) for s in (0, 1)],
          ("privacy", 5, "ga"): [cell("ga", 0, 30.0), cell("ga", 1, 60.0, rdr=80.0)],
          ("privacy", 5, "ours"): [cell("ours", 0, 15.0), cell("ours", 1, 45.0)]}
    by[("privacy", 50, "retrain")] = [cell("retrain", 0, 0.0)]  # only the original yet
    by[("privacy", 50, "original")] = [cell("original", 0, 90.0)]
    md = "\n".join(summary_markdown(by, PRESETS["paper"]))
    assert "| privacy, 50 | 1 of 3 | 30.00 ± 0.00 | - |" in md
    avg, rdr = md.split("## Summary: |delta R@D_r|")
    # Avg.G = mean |delta| over MI, R@D_f, R@D_test: ga 15 ± 7.07, ours 10 ± 7.07
    row = next(line for line in avg.splitlines() if line.startswith("| privacy, 5 |"))
    assert row.startswith("| privacy, 5 | 2 of 5 | 0.00 ± 0.00 |")  # original: never bold
    assert "| 15.00 ± 7.07 |" in row and "| **10.00** ± 7.07 |" in row
    row = next(line for line in rdr.splitlines() if line.startswith("| privacy, 5 |"))
    assert "| 5.00 ± 7.07 |" in row and "| **0.00** ± 0.00 |" in row
    # a method with fewer seeds than the row (still being computed) is marked, never bold
    by[("privacy", 5, "late")] = [cell("late", 0, 0.0)]
    md = "\n".join(summary_markdown(by, replace(PRESETS["paper"], methods=(
        "retrain", "ga", "ours", "late"))))
    row = next(line for line in md.split("## Summary: |delta R@D_r|")[0].splitlines()
               if line.startswith("| privacy, 5 |"))
    assert "| 0.00 ± 0.00 (n=1) |" in row and "| **10.00** ± 7.07 |" in row


def test_generation_tables_read_their_cells_and_share_the_plain_row(tmp_path):
    """Tables 7 and 8 (`bench generation`): a row's figures come from its cells against
    the paper preset's Retrain of the same seed; Table 8's shipped pair is Table 7's plain
    ELBO row (one computation), and a row with fewer seeds says so."""
    from mmu_core.bench import generation as G
    from mmu_core.metrics.compare import compare

    paper = json.loads((G.PAPER_CELLS / "privacy-50-s0-ours.json").read_text())
    retrain = json.loads((G.PAPER_CELLS / "privacy-50-s0-retrain.json").read_text())
    cell = {"metrics": paper["metrics"], "quality": {"image_IS": 5.0, "text_self_bleu4": 90.0},
            "unlearning": {"seconds": 70.0, "mvi_cache_hit": False, "mvi_fit_seconds": 20.0}}
    path = G.cell_path(tmp_path / "table8", 8, "SD-embedded + BLIP-2-OPT-embedded", 0, "ours")
    assert path == tmp_path / "table7" / "cells" / "elbo-s0-ours.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(cell))
    summary = G.write_tables(8, tmp_path / "table8", seeds=(0, 1), methods=("ours",))
    row = summary["SD-embedded + BLIP-2-OPT-embedded|ours"]
    assert row["n"] == 1 and row["M_eff"] == [compare(paper["metrics"],
                                                      retrain["metrics"])["M_eff"]]
    assert row["seconds"] == [50.0]  # the MVI fit made inside the method is left out
    assert summary["SD-embedded-v2 + BLIP-2-T5-embedded|ours"]["n"] == 0
    md = (tmp_path / "table8" / "tables.md").read_text()
    assert "| SD-embedded + BLIP-2-OPT-embedded | 1 of 2 |" in md
    assert "Salesforce/blip2-flan-t5-xl" in md


def test_backfill_adds_the_collateral_where_a_rerun_reproduces_the_cell(tmp_path, monkeypatch):
    """Cells from before the collateral was measured: each method is rerun with the cell's
    own settings; the figure counts only where the rerun's forget-pair scores equal the
    cell's. Runs are faked: this checks the bookkeeping."""
    from mmu_core import unlearn
    from mmu_core.bench import unlearning as U

    scores = {"itm_after": 0.1, "itc_after": 0.2}
    for method, settings in (("original", {}), ("retrain", {}), ("ga", {"steps": 3})):
        U.write_cell(tmp_path, f"privacy-5-s0-{method}", {
            "scenario": "privacy", "size": 5, "seed": 0, "method": method,
            "settings": settings, "unlearning": {"seconds": 1.0, "forget_scores": scores}})
    ran = []

    def fake_run(name, request, **kw):
        ran.append((name, kw))
        moved = scores if name == "retrain" else {**scores, "itm_after": 0.5}
        return request.original, {"forget_scores": moved,
                                  "collateral": {"mean_abs_itm_change": 0.07}}

    monkeypatch.setattr(unlearn, "run", fake_run)
    monkeypatch.setattr(U, "write_tables", lambda *a, **k: None)
    preset = replace(U.PRESETS["smoke"], methods=("retrain", "ga"))
    U.run_preset("smoke", tmp_path, preset=preset, backfill=True, log=lambda *_: None)
    assert ran == [("retrain", {}), ("ga", {"steps": 3})]

    def cell(method):
        return json.loads((tmp_path / "cells" / f"privacy-5-s0-{method}.json").read_text())
    retrain, ga = cell("retrain")["unlearning"], cell("ga")["unlearning"]
    assert retrain["collateral"]["mean_abs_itm_change"] == 0.07
    assert "equal this cell's" in retrain["collateral_from"]
    assert "collateral" not in ga and "does not count" in ga["collateral_from"]
    assert ga["collateral_of_a_rerun"]["mean_abs_itm_change"] == 0.07
    assert ga["forget_scores_of_the_rerun"]["itm_after"] == 0.5
    assert "collateral" not in cell("original")["unlearning"]
    U.run_preset("smoke", tmp_path, preset=preset, backfill=True, log=lambda *_: None)
    assert len(ran) == 2, "a cell once rerun was rerun again"
    # Retrain is not bit-reproducible: its column reads a second Retrain's figure; a
    # method's rerun that differs from its cell never counts
    metrics = {"scenario": "privacy", "headline": {"MI": 1.0, "R@D_f": 2.0, "R@D_test": 3.0,
                                                   "R@D_r": 4.0}}
    by = {("privacy", 5, m): [{**cell(m), "metrics": metrics}] for m in ("retrain", "ga")}
    for c in by[("privacy", 5, "retrain")]:
        c["unlearning"]["collateral_of_a_rerun"] = c["unlearning"].pop("collateral")
    rows = U.method_rows(by, "privacy", 5, ("retrain", "ga"))
    assert rows["retrain"]["values"]["collateral"] == [0.07]
    assert "collateral" not in rows["ga"]["values"]
