"""The neighbours' budget (mmu_core/unlearn/budget.py), its default from Retrain's measured
collateral, and the confirm half's best method (the app's first choice)."""

import json

import pytest
import torch

from mmu_core.bench.confirm import confirmed_best
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.metrics.collateral import collateral
from mmu_core.models.backbone import load_backbone
from mmu_core.unlearn import run
from mmu_core.unlearn.budget import ALLOWANCE, default_budget, retrain_collateral, within_budget
from mmu_core.unlearn.request import Request


@pytest.fixture(scope="module")
def ga_edit(world):
    """One person forgotten hard (GA, many steps): an edit that moves the neighbours."""
    sc = load_scenario(world, "privacy")
    ids = load_forget_ids(forget_list_path(world, "privacy", 5, 0))
    request = Request.build(load_backbone("embedded:privacy"), sc, ids, "privacy", seed=0)
    model, info = run("ga", request, steps=40, lr=5e-4)
    return request, model, info


def test_an_edit_within_the_budget_is_left_as_it_is(ga_edit):
    request, model, info = ga_edit
    full = info["collateral"]["mean_abs_itm_change"]
    kept, report = within_budget(request.original, model, request.forget, request.retain,
                                 full + 0.01)
    assert kept is model and report["restored"] is False and report["kept"] == 1.0


def test_an_edit_over_the_budget_is_taken_back_to_it(ga_edit):
    request, model, info = ga_edit
    full = info["collateral"]["mean_abs_itm_change"]
    assert full > 0.05, "the GA edit should move the neighbours for this test to mean anything"
    budget = full / 3
    kept, report = within_budget(request.original, model, request.forget, request.retain,
                                 budget)
    assert report["restored"] and 0 <= report["kept"] < 1
    assert report["collateral_kept"] <= budget < report["collateral_beyond"]
    # what the report says is what collateral measures on the returned model
    again = collateral(request.original, kept, request.forget, request.retain)
    assert again["mean_abs_itm_change"] == pytest.approx(report["collateral_kept"], abs=1e-3)
    # the weights lie on the line from the original to the edit, at the kept share
    name, p0 = next((n, p) for n, p in request.original.named_parameters() if p.ndim == 2)
    p1, pk = dict(model.named_parameters())[name], dict(kept.named_parameters())[name]
    assert torch.allclose(pk, p0 + report["kept"] * (p1 - p0), atol=1e-6)
    assert kept is not model and not torch.equal(p1, pk)  # the edit itself is untouched


def test_run_with_a_budget_reports_the_restored_models_collateral(ga_edit):
    request, _, info = ga_edit
    budget = info["collateral"]["mean_abs_itm_change"] / 3
    _, guarded = run("ga", request, neighbour_budget=budget, steps=40, lr=5e-4)
    assert guarded["budget"]["restored"]
    assert guarded["collateral"]["mean_abs_itm_change"] <= budget + 1e-3
    assert guarded["forget_scores"]["itm_after"] >= info["forget_scores"]["itm_after"]


def _cell(folder, scenario, size, name, c):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{scenario}-{size}-{name}-retrain.json").write_text(json.dumps(
        {"size": size, "unlearning": {"collateral": {"mean_abs_itm_change": c}}}))


def test_the_default_budget_is_retrains_collateral_of_the_nearest_size(tmp_path):
    _cell(tmp_path, "privacy", 5, "confirm-0", 0.12)
    _cell(tmp_path, "privacy", 5, "confirm-1", 0.08)
    _cell(tmp_path, "privacy", 50, "confirm-0", 0.2)
    ref, source = retrain_collateral("privacy", 1, tmp_path)
    assert ref == pytest.approx(0.10) and "2 confirm list(s) of 5 privacy" in source
    assert retrain_collateral("privacy", 40, tmp_path)[0] == pytest.approx(0.2)
    assert retrain_collateral("copyright", 5, tmp_path)[0] is None
    assert retrain_collateral("privacy", 5, tmp_path, model="Salesforce/blip-itm-base-coco")[0] \
        is None
    budget, said = default_budget("privacy", 5)  # the committed cells
    committed, _ = retrain_collateral("privacy", 5)
    assert committed is not None and budget == pytest.approx(committed + ALLOWANCE)
    assert "+ 0.05" in said


def test_a_guarded_confirm_cell_reads_other_lists_or_the_nearest_size(tmp_path):
    from mmu_core.bench.confirm import others_budget

    cells = tmp_path / "cells"
    _cell(cells, "copyright", 35, "confirm-0", 0.10)
    _cell(cells, "copyright", 35, "confirm-1", 0.20)
    _cell(cells, "copyright", 170, "confirm-0", 0.9)
    # never its own list's Retrain: the other list of its size
    assert others_budget(tmp_path, "copyright", 35, "confirm-0") == (0.25, ["confirm-1"])
    # a setting with one list reads the nearest other size's lists, and says so
    budget, read_on = others_budget(tmp_path, "copyright", 170, "confirm-0")
    assert budget == pytest.approx(0.15 + ALLOWANCE)
    assert read_on == ["35/confirm-0", "35/confirm-1"]
    assert others_budget(tmp_path, "privacy", 5, "confirm-0") == (None, [])


def test_confirmed_best_is_lowest_over_settings_among_methods_computed_everywhere(tmp_path):
    def row(four_axis, lists=2):
        return {"four_axis": [four_axis, 0.0], "lists": lists}

    table = {"privacy-5-a": row(4.0), "privacy-5-b": row(6.0), "privacy-5-c": row(1.0),
             "copyright-35-a": row(8.0, 1), "copyright-35-b": row(5.0, 1),
             "privacy-5-a+budget": row(3.0), "copyright-35-a+budget": row(3.0, 1),
             "privacy-5-b+budget": row(2.0)}
    path = tmp_path / "confirm.json"
    path.write_text(json.dumps({"table": table}))
    best, why = confirmed_best(path)
    # c is lowest at privacy-5 but has no copyright-35 list; b's mean 5.5 beats a's 6.0
    assert best == "b" and "5.50" in why and "copyright-35 (1 lists)" in why
    # guarded forms are ranked among themselves (b+budget has no copyright-35 list)
    best, why = confirmed_best(path, guarded=True)
    assert best == "a" and "within the neighbours' budget" in why
    assert confirmed_best(tmp_path / "missing.json")[0] is None


def test_forget_commands_budget_flag():
    from mmu_core.cli.forget import budget_of

    assert budget_of(None, "privacy", 5, "embedded:privacy") is None
    assert budget_of("0.2", "privacy", 5, "embedded:privacy") == 0.2
    assert budget_of("retrain", "privacy", 5, "embedded:privacy") == \
        default_budget("privacy", 5)[0]
    with pytest.raises(SystemExit, match="'retrain' or a number"):
        budget_of("lots", "privacy", 5, "embedded:privacy")
    with pytest.raises(SystemExit, match="give a number instead"):
        budget_of("retrain", "privacy", 5, "Salesforce/blip-itm-base-coco")


def test_the_forget_status_says_where_the_budget_stopped_the_edit():
    from types import SimpleNamespace

    from mmu_ui.forget_tab import _collateral, _left

    info = {"collateral": {"groups": 10, "pairs": 50, "mean_abs_itm_change": 0.12,
                           "max_abs_itm_change": 0.4},
            "budget": {"budget": 0.149, "collateral_full": 0.8, "kept": 0.25,
                       "restored": True, "collateral_kept": 0.12, "collateral_beyond": 0.2}}
    rows = [{"rank": 3, "member": 0.2}] * 5
    out = SimpleNamespace(info=info, scenario="privacy", forget=[None] * 5,
                          after=SimpleNamespace(rows=rows))
    said = _collateral(out)
    assert "Stopped at the neighbours' budget** (0.149)" in said and "25% of it" in said
    ref, _ = retrain_collateral("privacy", 5)
    assert f"Retrain's move them by {ref:.3f}" in said
    left = _left(out, ["partly forgotten"] * 5)
    assert "Going further would move the nearest people's own matches by 0.200" in left
    # within the budget: no such sentence, and the usual next step
    out.info = {**info, "budget": {**info["budget"], "restored": False}}
    assert "Stopped" not in _collateral(out) and "Next:" in _left(out, ["partly forgotten"] * 5)
