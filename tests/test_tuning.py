"""The tuning protocol (docs/benchmark.md): the same budget for every method, and the tuning
code never reads D_test or a reported forget set."""

import json
from pathlib import Path

import pytest
from PIL import Image

from mmu_core.bench import tuning


def test_every_method_gets_the_same_budget():
    tuning.check_grids()
    assert set(tuning.GRIDS) == {"finetune", "ga", "badt", "multidelete", "slug", "adv", "ours",
                                 "ours-local", "calibrated", "calibrated-rank",
                                 "calibrated-near"}
    assert {len(g) for g in tuning.GRIDS.values()} == {tuning.GRID_SIZE}
    assert tuning.GRID_SIZE >= 6
    with pytest.raises(ValueError, match="step cap"):
        tuning.check_grids({"ga": [{"steps": tuning.STEP_CAP + 1}] * tuning.GRID_SIZE})
    with pytest.raises(ValueError, match="settings"):
        tuning.check_grids({"ga": [{"steps": 5}] * (tuning.GRID_SIZE - 1)})


def test_tuning_never_reads_test_data_or_reported_forget_sets(tiny_world, tiny_backbone,
                                                              tmp_path, monkeypatch):
    from mmu_core.data import scenarios
    from mmu_core.data.scenarios import load_scenario

    lists, opened = [], []
    real_read, real_open = scenarios.read_id_list, Image.open
    monkeypatch.setattr(scenarios, "read_id_list",
                        lambda path: lists.append(Path(path)) or real_read(path))

    def record_open(fp, *a, **kw):
        name = fp if isinstance(fp, (str, Path)) else getattr(fp, "name", None)
        if isinstance(name, (str, Path)):  # files; profile photos come as bytes
            opened.append(str(Path(name).resolve()))
        return real_open(fp, *a, **kw)

    monkeypatch.setattr(Image, "open", record_open)
    grid = {"ga": [{"steps": 1, "lr": lr} for lr in
                   (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3)]}
    out = tuning.tune(tmp_path / "tune", data=tiny_world, grids=grid, retrain_epochs=1,
                      eval_max_pairs=40, log=lambda *_: None, draws={("privacy", 5): 2},
                      models={"privacy": tiny_backbone, "copyright": tiny_backbone})

    assert lists and all(p.name.startswith("val-") for p in lists)
    test_images = {str(Path(p.image).resolve()) for name in ("privacy", "copyright")
                   for p in load_scenario(tiny_world, name).test}
    assert opened and not set(opened) & test_images
    # one choice per scenario and validated size, written where `forget` reads it
    saved = json.loads((tmp_path / "tune" / "settings.json").read_text())
    assert saved["settings"] == out["settings"]
    assert set(saved["settings"]) == {"privacy", "copyright"}
    for sizes in saved["settings"].values():
        for chosen in sizes.values():
            assert chosen["ga"] in grid["ga"]
    # one person: each list is read against the mean of its Retrain draws (seeds 0 and 1)
    from mmu_core.metrics.compare import compare

    row = out["validation"]["privacy-5-ga"]
    assert row["retrain_draws"] == [2] * row["validation_sets"]
    cells = tmp_path / "tune" / "cells"
    figures = []
    for v in sorted(c.name.split("-")[2] + "-" + c.name.split("-")[3]
                    for c in cells.glob("privacy-5-val-*-retrain.json")):
        draws = [json.loads((cells / f"privacy-5-{v}-{n}.json").read_text())
                 for n in ("retrain", "retrain-seed1")]
        assert draws[1]["seed"] == 1
        cell = json.loads((cells / f"privacy-5-{v}-ga-{row['chosen']}.json").read_text())
        figures.append(compare(cell["metrics"], tuning.reference(draws)["metrics"])
                       ["retrieval"]["four_axis"])
    assert row["mean_four_axis"][row["chosen"]] == pytest.approx(
        sum(figures) / len(figures), abs=1e-3)
    # resumable: a second call computes nothing new
    again = tuning.tune(tmp_path / "tune", data=tiny_world, grids=grid, retrain_epochs=1,
                        eval_max_pairs=40, log=lambda *_: None, draws={("privacy", 5): 2},
                        models={"privacy": tiny_backbone, "copyright": tiny_backbone})
    assert again["settings"] == out["settings"]
    # with no cells nothing is chosen and no settings file is written
    partial = tuning.tune(tmp_path / "partial", data=tiny_world, grids=grid,
                          log=lambda *_: None, tables_only=True)
    assert partial["settings"] == {} and not partial["complete"]
    assert not (tmp_path / "partial" / "settings.json").exists()
    # with one copyright cell missing, copyright chooses nothing; privacy (complete, and
    # its choice reads only its own cells) keeps its settings; the table says PARTIAL
    (tmp_path / "partial" / "cells").mkdir(parents=True)
    for c in (tmp_path / "tune" / "cells").glob("*.json"):
        if c.name != "copyright-5-val-0-ga-3.json":
            (tmp_path / "partial" / "cells" / c.name).write_bytes(c.read_bytes())
    partial = tuning.tune(tmp_path / "partial", data=tiny_world, grids=grid,
                          log=lambda *_: None, tables_only=True)
    assert not partial["complete"] and partial["complete_scenarios"] == ["privacy"]
    assert partial["settings"] == {"privacy": out["settings"]["privacy"]}
    saved = json.loads((tmp_path / "partial" / "settings.json").read_text())
    assert saved["settings"] == partial["settings"]
    assert "PARTIAL" in (tmp_path / "partial" / "validation.md").read_text()
    assert (tmp_path / "partial" / "partial.json").exists()
    # a method added to the grid later, none of its cells in yet: the others keep their
    # choices, it gets none, and the tuning is not complete
    added = {**grid, "finetune": [{"steps": 1, "lr": lr} for lr in
                                  (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3)]}
    grown = tuning.tune(tmp_path / "tune", data=tiny_world, grids=added,
                        log=lambda *_: None, tables_only=True)
    assert grown["settings"] == out["settings"] and not grown["complete"]
    assert grown["complete_scenarios"] == []
    # a changed grid never reuses another setting's cell (cells are named by position)
    changed = {"ga": [{"steps": 2, "lr": 1e-5}] + grid["ga"][1:]}
    with pytest.raises(ValueError, match="remove ga's cells"):
        tuning.tune(tmp_path / "partial", data=tiny_world, grids=changed,
                    log=lambda *_: None, tables_only=True)


def test_a_second_world_validates_a_size_the_first_cannot(tiny_world, tiny_backbone,
                                                          tmp_path_factory, monkeypatch):
    """Privacy-500 has no free people in the embedded world: its validation list comes
    from a second generated world, read with that world's view and its own original."""
    from mmu_core.data import generate

    other = tmp_path_factory.mktemp("second_world")
    generate.generate_world(other, seed=1, size="tiny")
    monkeypatch.setattr(generate, "default_world",
                        lambda seed=0: other if seed == 1 else tiny_world)
    # the tiny world validates privacy at 5 only; its size 10 plays privacy-500's part
    monkeypatch.setattr(tuning, "SECOND_WORLD_LISTS", {("privacy", 10): ("image-0",)})
    originals, runs = [], []
    monkeypatch.setattr(tuning, "world_original",
                        lambda seed, scenario, log: originals.append(seed) or tiny_backbone)
    real_cell = tuning.validation_cell

    def record(original, view, scenario, size, vpath, *a, **kw):
        runs.append((Path(vpath), Path(view.train[0].image)))
        return real_cell(original, view, scenario, size, vpath, *a, **kw)

    monkeypatch.setattr(tuning, "validation_cell", record)
    lists = tuning.validation_lists(tiny_world, "privacy", second_world=1)
    assert [label for label, *_ in lists[10]] == ["world1-image-0"]
    assert lists[10][0][2] == other and all(w == tiny_world for _, _, w in lists[5])

    grid = {"ga": [{"steps": 1, "lr": lr} for lr in
                   (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3)]}
    out_dir = tmp_path_factory.mktemp("tune2")
    out = tuning.tune(out_dir, data=tiny_world, scenarios=("privacy",), grids=grid,
                      retrain_epochs=1, eval_max_pairs=40, log=lambda *_: None, sizes=[10],
                      models={"privacy": tiny_backbone}, second_world=1)
    assert originals == [1]  # the second world's own original, loaded once
    assert runs and all(v.is_relative_to(other) and img.is_relative_to(other)
                        for v, img in runs)  # that world's list with that world's pairs
    assert len(runs) == 1 + len(grid["ga"])  # its Retrain and the grid
    assert (out_dir / "cells" / "privacy-10-world1-image-0-ga-0.json").is_file()
    # chosen at 10, where its cells are all in, though none of size 5's were computed
    assert out["settings"]["privacy"] == {"10": {"ga": out["settings"]["privacy"]["10"]["ga"]}}
    assert out["validation"]["privacy-10-ga"]["lists"] == ["world1-image-0"]
    from mmu_core.erasure.export import state_fingerprint  # which original: it is not shipped

    record = json.loads((out_dir / "world1-privacy-original.json").read_text())
    assert record["weights_sha256"] == state_fingerprint(tiny_backbone)
    assert record["world"]["seed"] == 1


def test_confirm_runs_the_chosen_settings_on_the_confirm_half_only(tiny_world, tiny_backbone,
                                                                    tmp_path, monkeypatch):
    """`bench confirm`: each method's chosen setting on the confirm lists (never a choose
    list, a reported list or D_test), against each list's Retrain, with the four-axis
    figure and the collateral of both."""
    from mmu_core.bench.confirm import confirm
    from mmu_core.data import scenarios
    from mmu_core.metrics.compare import compare

    lists = []
    real_read = scenarios.read_id_list
    monkeypatch.setattr(scenarios, "read_id_list",
                        lambda path: lists.append(Path(path)) or real_read(path))
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"settings": {
        "privacy": {"5": {"ga": {"steps": 1, "lr": 1e-4},
                          "calibrated": {"max_steps": 2, "check_every": 1}}}}}))
    kw = dict(data=tiny_world, settings_path=settings, scenarios=("privacy",),
              retrain_epochs=1, eval_max_pairs=40, log=lambda *_: None,
              models={"privacy": tiny_backbone}, draws={("privacy", 5): 2})
    none = confirm(tmp_path / "confirm", lists=["confirm-9"], **kw)  # no such list
    assert none["table"] == {}
    out = confirm(tmp_path / "confirm", lists=["confirm-0"], sizes=[5], **kw)
    assert lists and all(p.name.startswith("confirm-") for p in lists)
    assert set(out["table"]) == {"privacy-5-ga", "privacy-5-calibrated"}
    row = out["table"]["privacy-5-calibrated"]
    assert row["lists"] == 1 and row["four_axis"][0] >= row["avg_g"][0] * 3 / 4 - 1e-9
    per = row["per_list"][0]
    assert per["collateral"] is not None and per["retrain_collateral"] is not None
    cell = json.loads((tmp_path / "confirm" / "cells" /
                       "privacy-5-confirm-0-calibrated.json").read_text())
    assert cell["unlearning"]["floor"]["calibration_pairs"] > 0  # read the pool
    assert "privacy 5 | calibrated" in (tmp_path / "confirm" / "confirm.md").read_text()
    # one person: the reference is the mean of the list's Retrain draws (seeds 0 and 1)
    draws = [json.loads((tmp_path / "confirm" / "cells" / f"privacy-5-confirm-0-{n}.json")
                        .read_text()) for n in ("retrain", "retrain-seed1")]
    assert draws[1]["seed"] == 1 and draws[1]["method"] == "retrain"
    mean = {k: (draws[0]["metrics"]["headline"][k] + draws[1]["metrics"]["headline"][k]) / 2
            for k in ("MI", "R@D_f", "R@D_test", "R@D_r")}
    assert per["retrain_draws"] == 2 and per["signed"] == pytest.approx(
        {k: cell["metrics"]["headline"][k] - v for k, v in mean.items()})
    floor = out["retrain_draws"]["privacy-5"]["per_list"][0]
    apart = compare(draws[0]["metrics"], draws[1]["metrics"])["retrieval"]["four_axis"]
    assert floor["draws"] == 2 and floor["draw_vs_others"] == pytest.approx(apart)
    assert per["like_retrain"] == (per["four_axis"] <= apart)
    # a second list: its guarded forms take the budget from the first list's Retrain only
    # (never their own list's), and the first list's from the second's
    out = confirm(tmp_path / "confirm", lists=["confirm-1", "confirm-0"], sizes=[5],
                  methods=["retrain", "ga", "ga+budget"], **kw)
    cells = tmp_path / "confirm" / "cells"
    for mine, other in (("confirm-0", "confirm-1"), ("confirm-1", "confirm-0")):
        guarded = json.loads((cells / f"privacy-5-{mine}-ga+budget.json").read_text())
        ref = json.loads((cells / f"privacy-5-{other}-retrain.json").read_text())
        assert guarded["budget_read_on"] == [other] and guarded["method"] == "ga+budget"
        assert guarded["settings"]["neighbour_budget"] == pytest.approx(
            ref["unlearning"]["collateral"]["mean_abs_itm_change"] + 0.05, abs=1e-4)
        assert guarded["unlearning"]["budget"]["budget"] == pytest.approx(
            guarded["settings"]["neighbour_budget"])
    assert out["table"]["privacy-5-ga+budget"]["lists"] == 2
    # sharded workers split the cells; tables-only computes nothing
    again = confirm(tmp_path / "confirm", data=tiny_world, settings_path=settings,
                    tables_only=True, log=lambda *_: None)
    assert again["table"].keys() == out["table"].keys() >= {"privacy-5-ga+budget"}
    # a choice changed after its cells were made: the old cells are refused, not read
    settings.write_text(json.dumps({"settings": {"privacy": {"5": {"ga": {"steps": 2,
                                                                          "lr": 1e-4}}}}}))
    with pytest.raises(ValueError, match="privacy-5-confirm-0-ga.json holds"):
        confirm(tmp_path / "confirm", data=tiny_world, settings_path=settings,
                tables_only=True, log=lambda *_: None)


def test_the_rule_chooses_by_the_four_axis_figure_not_avg_g():
    """A setting that wins Avg.G by wrecking D_r (which Avg.G leaves out) is not chosen:
    the four-axis figure counts R@D_r."""
    wrecks = {"avg_g": 2.0, "four_axis": 20.0}  # close on D_f / D_val, R@D_r -60
    keeps = {"avg_g": 4.0, "four_axis": 5.0}
    best, means = tuning.choose({0: [wrecks, wrecks], 1: [keeps, keeps]})
    assert best == 1
    assert means["avg_g"] == {0: 2.0, 1: 4.0} and means["four_axis"] == {0: 20.0, 1: 5.0}
    # ties go to the earlier setting; means are over the validation sets
    assert tuning.choose({0: [keeps], 1: [keeps]})[0] == 0
    assert tuning.choose({0: [wrecks, keeps], 1: [keeps, keeps]})[1]["four_axis"][0] == 12.5
