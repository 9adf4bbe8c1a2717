"""MVI on the embedded default: what the issue asks to hold (Table 5's probe pattern; R_2
without private text-only facts; R_1 following visible attributes), and the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmu_core.mvi.anchors import anchors

from mmu_core.mvi.fit import fit_or_load

from mmu_core.bench.mvi import _background_agreement, _names_in
from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.models.generators import load_captioner, load_image_classifier, load_painter
from mmu_core.mvi.model import MVIConfig, features, modality_probe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fitted(world):
    cap, painter = load_captioner(), load_painter()
    sc = load_scenario(world, "privacy")
    mvi, _ = fit_or_load(cap, painter, sc.train, MVIConfig(), cache=False)
    return cap, painter, sc, mvi


def test_probe_reads_u_as_its_modality_but_cannot_tell_k_apart(fitted):
    cap, painter, sc, mvi = fitted
    probe = modality_probe(mvi, features(cap, painter, (sc.unseen + sc.test)[:200]))
    assert probe["U'_1"]["accuracy"] >= 95 and probe["U'_2"]["accuracy"] >= 95
    # how differently theta_M treats the two sources: 100 points for U', little for K'
    k_gap = abs(probe["K'_1"]["A_image"] - probe["K'_2"]["A_image"])
    assert k_gap <= 40, probe


def test_anchors_drop_names_and_follow_visible_attributes(fitted, world):
    cap, painter, sc, mvi = fitted
    forget, _ = sc.split(load_forget_ids(forget_list_path(world, "privacy", 50, 0)))
    items = anchors(mvi, cap, painter, forget, seed=0)
    assert _names_in([t for a in items for t in a.texts]) == 0
    assert _names_in([a.text for a in items]) == 40  # the biographies did name them
    # R_2 describes what the image shows: most name a wall colour or shirt
    visible = sum(("wall" in t or "shirt" in t or "background" in t)
                  for a in items for t in a.texts)
    assert visible >= 0.6 * len(items)
    appearance = [a for a in items if " wall" in a.text]
    agreement = _background_agreement(load_image_classifier(), appearance)
    assert agreement["images"] == 10 and agreement["agreement"] >= 50


def test_anchors_command_writes_images_and_texts(tiny_world, tmp_path):
    forget = forget_list_path(tiny_world, "privacy", 5, 0)
    out = subprocess.run([sys.executable, "-m", "mmu_core", "anchors", "--data", str(tiny_world),
                          "--forget", str(forget), "--out", str(tmp_path / "a"),
                          "--n-images", "2", "--fit-steps", "3", "--no-cache"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    index = json.loads((tmp_path / "a" / "anchors.json").read_text())
    assert len(index) == len(load_forget_ids(forget))
    assert all(len(e["R1"]) == 2 and (tmp_path / "a" / e["R1"][1]).is_file() for e in index)
    bad = subprocess.run([sys.executable, "-m", "mmu_core", "anchors", "--data", str(tiny_world),
                          "--forget", str(forget), "--out", str(tmp_path / "b"),
                          "--captioner", "nobody/no-such-model"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown image-to-text model" in bad.stderr
