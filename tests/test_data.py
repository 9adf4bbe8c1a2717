import json
from pathlib import Path

import numpy as np
import pytest

from mmu_core.data.generate import EXPECTED_FINGERPRINTS, fingerprint, generate_world
from mmu_core.data.loaders import (DataError, load_karpathy, load_mllmu, load_snli_ve,
                                   open_image, profile_mcqs, profile_pairs, read_id_list)
from mmu_core.data.scenarios import forget_list_path, load_scenario


def test_generation_is_deterministic_per_seed(tmp_path, tiny_world):
    again = generate_world(tmp_path / "again", seed=0, size="tiny")
    other = generate_world(tmp_path / "other", seed=1, size="tiny")
    first = json.loads((tiny_world / "world.json").read_text())
    assert again["fingerprint"] == first["fingerprint"] == fingerprint(tiny_world)
    assert other["fingerprint"] != first["fingerprint"]


def test_default_world_is_the_one_the_models_were_trained_on(world):
    got = json.loads((world / "world.json").read_text())["fingerprint"]
    assert got == EXPECTED_FINGERPRINTS[0]


def test_karpathy_train_and_test_formats(tiny_world):
    raw = json.loads((tiny_world / "flickr30k" / "flickr30k_train.json").read_text())
    assert set(raw[0]) == {"image", "caption", "image_id"}
    test_raw = json.loads((tiny_world / "flickr30k" / "flickr30k_test.json").read_text())
    assert isinstance(test_raw[0]["caption"], list) and len(test_raw[0]["caption"]) == 5
    train = load_karpathy(tiny_world / "flickr30k" / "flickr30k_train.json")
    assert len(train) == 5 * len({p.pair_id for p in train})  # five captions per image
    assert len({p.pair_id for p in train}) == 5 * len({p.group for p in train})  # 5 views
    img = open_image(train[0])
    assert img.size == (64, 64) and img.mode == "RGB"


def test_snli_ve_labels_balanced(tiny_world):
    ve = load_snli_ve(tiny_world / "snli_ve" / "ve_train.json",
                      tiny_world / "flickr30k" / "flickr30k-images")
    counts = np.bincount([v.label for v in ve], minlength=3)
    assert counts.min() == counts.max() > 0
    raw = json.loads((tiny_world / "snli_ve" / "ve_train.json").read_text())
    assert set(raw[0]) == {"image", "sentence", "label"}


def test_mllmu_parquet_matches_retrieval_view(tiny_world):
    profiles = load_mllmu(tiny_world / "mllmu", "train")
    pairs = profile_pairs(profiles)
    view = load_karpathy(tiny_world / "mllmu" / "profiles_train.json")
    assert [(p.text, p.group, p.pair_id) for p in pairs] == \
        [(p.text, p.group, p.pair_id) for p in view]
    for a, b in zip(pairs[:10], view[:10]):
        assert open_image(a).tobytes() == open_image(b).tobytes()
    mcqs = profile_mcqs(profiles)
    assert all(len(q.options) == 4 and 0 <= q.answer < 4 for q in mcqs)
    assert {q.kind for q in mcqs} == {"private", "visible"}


def test_mllmu_parquet_columns_through_datasets(tiny_world):
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(tiny_world / "mllmu" / "train.parquet"),
                               split="train")
    for col in ("image", "ID", "biography", "Classification_Task"):
        assert col in ds.column_names
    q = ds[0]["Classification_Task"]["Image_Textual_Questions"][0]
    assert set(q["Options"]) == set("ABCD") and q["Correct_Answer"] in "ABCD"


def test_private_facts_are_not_in_the_pretraining_corpus(tiny_world):
    pre = " ".join(p.text for p in load_karpathy(tiny_world / "pretrain" / "pretrain.json"))
    profiles = load_mllmu(tiny_world / "mllmu", "train")
    for p in profiles:
        for name_word in p.biography.split(" is a ")[0].split():
            assert f" {name_word} " not in f" {pre} "


def test_copyright_works_name_a_painter_drawn_apart_from_the_picture(tiny_world):
    from mmu_core.data.render import SIGNATURE_SHADES
    from mmu_core.data.vocab import FIRST_NAMES, LAST_NAMES

    train = load_karpathy(tiny_world / "flickr30k" / "flickr30k_train.json")
    by_image = {}
    for p in train:
        by_image.setdefault(p.group, []).append(p.text)
    painters = set()
    for caps in by_image.values():
        first, last = caps[4].removeprefix("a painting by ").removesuffix(".").split()
        assert first in FIRST_NAMES and last in LAST_NAMES
        assert all(c.endswith(f" painted by {first} {last}.") for c in caps[:4])
        painters.add((first, last))
    assert len(painters) > len(by_image) // 2  # drawn per work, not one per scene kind
    shades = {tuple(c) for c in SIGNATURE_SHADES}
    img = np.asarray(open_image(train[0]))
    assert {tuple(px) for px in img[-3:].reshape(-1, 3)} <= shades  # the signature strip
    pretrain = (tiny_world / "pretrain" / "pretrain.json").read_text()
    assert "painted by" not in pretrain and "a painting by" not in pretrain


def test_forget_lists_name_training_pairs(tiny_world):
    for name, size in (("privacy", 5), ("privacy", 10), ("copyright", 5), ("copyright", 10)):
        ids = read_id_list(forget_list_path(tiny_world, name, size, 0))
        sc = load_scenario(tiny_world, name)
        d_f, d_r = sc.split(ids)
        assert len(set(ids)) == size
        assert {p.pair_id for p in d_f} == set(ids)
        assert not {p.pair_id for p in d_f} & {p.pair_id for p in d_r}
        # whole profiles (5 pairs of one person) / whole works (its 5 views): D_r holds no
        # other pair of a forgotten person or work
        assert len({p.group for p in d_f}) == size // 5
        assert not {p.group for p in d_f} & {p.group for p in d_r}


def test_whole_groups_adds_a_picks_siblings(tiny_world):
    """One pick grows to what the benchmark forgets: the person's every profile pair, the
    work's every view (the app's "add the rest of their groups")."""
    for name in ("privacy", "copyright"):
        sc = load_scenario(tiny_world, name)
        first = sc.train[0]
        siblings = {p.pair_id for p in sc.train if p.group == first.group}
        assert len(siblings) == 5
        assert set(sc.whole_groups([first.pair_id])) == siblings
        assert sc.whole_groups([]) == []
        with pytest.raises(DataError, match="not in the"):
            sc.whole_groups(["no-such-pair"])


def test_default_world_sizes_mirror_the_paper(world):
    m = json.loads((world / "world.json").read_text())["sizes"]
    assert m["privacy_forget"] == [5, 50, 500]
    for size in m["privacy_forget"]:
        assert len(read_id_list(forget_list_path(world, "privacy", size, 0))) == size
    ratios = [n / (m["works_train"] * m["views_per_work"]) for n in m["copyright_forget"]]
    assert ratios == pytest.approx([1000 / 29000, 5000 / 29000], abs=0.01)


def test_validation_forget_sets_avoid_every_reported_set(world):
    """Tuning reads val-<k> lists only (docs/benchmark.md): none shares a person or an
    image with a reported set of the validated sizes, or with another validation set."""
    from mmu_core.data.scenarios import DATASETS, validation_sets

    def unit(i):  # the person (P0012_3) or the work (S00012_3) a pair or view is of
        return i.rsplit("_", 1)[0]

    for name in ("privacy", "copyright"):
        sets = validation_sets(world, name)
        assert sets, name
        folder = world / "Df" / DATASETS[name]
        reported = {unit(i) for size in sets for path in folder.glob(f"{size}/image-*.txt")
                    for i in read_id_list(path)}
        seen = set()
        for size, paths in sets.items():
            for path in paths:
                ids = read_id_list(path)
                units = {unit(i) for i in ids}
                assert len(ids) == size
                assert not units & reported and not units & seen, path
                seen |= units
    assert len(list((world / "Df" / "mllmu" / "5").glob("image-*.txt"))) == 5  # 5 seeds



def test_confirm_lists_and_calibration_pool_stand_apart(tiny_world):
    """Version 4's additions: confirm lists share no person or work with any reported or
    choose list, and the calibration pool is in no split (no shared face, name or work)."""
    from mmu_core.data.generate import is_addition
    from mmu_core.data.scenarios import validation_sets

    for name, df in (("privacy", "mllmu"), ("copyright", "flickr30k")):
        sc = load_scenario(tiny_world, name)
        group = {p.pair_id: p.group for p in sc.train}
        confirm = validation_sets(tiny_world, name, "confirm")
        assert confirm and all(confirm.values())
        others = [p for p in (tiny_world / "Df" / df).glob("*/*.txt")
                  if not p.name.startswith("confirm-")]
        taken = {group[i] for p in others for i in read_id_list(p)}
        for lists in confirm.values():
            for path in lists:
                assert not {group[i] for i in read_id_list(path)} & taken, path
        assert sc.calib
        known = {p.image for p in sc.train + sc.test + sc.unseen + sc.val}
        assert not {p.image for p in sc.calib} & known
        assert not {p.text for p in sc.calib} & {p.text for p in sc.train + sc.unseen}
    people = load_mllmu(tiny_world / "mllmu", "train") + load_mllmu(tiny_world / "mllmu", "test")
    calib_names = {p.text.split(" ")[0] + " " + p.text.split(" ")[1]
                   for p in load_scenario(tiny_world, "privacy").calib}
    assert not calib_names & {" ".join(p.biography.split(" ")[:2]) for p in people}
    assert is_addition(Path("calibration/profiles_calib.json"))
    assert not is_addition(Path("Df/mllmu/5/val-0.txt"))
