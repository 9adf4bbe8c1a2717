"""The `real` benchmark preset, dry run: the paper's models by their hub ids, served from a
fake Hugging Face cache of tiny random checkpoints of the same classes (offline), on the
tiny world in the real datasets' formats."""

import json
import os
import subprocess
import sys

import pytest

from mmu_core.bench.unlearning import PRESETS, REAL_SOURCES, dry_run

COMMIT = "f" * 40


def _snapshot(cache, repo: str, save) -> None:
    """Lay a checkpoint out as huggingface_hub caches a download (refs/main -> snapshot)."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    save(folder / "snapshots" / COMMIT)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)


@pytest.fixture(scope="module")
def fake_hub(tmp_path_factory, tiny_world):
    from mmu_core.models.embedded import EmbeddedSize, new_backbone
    from mmu_core.models.embedded_generators import new_captioner, new_painter
    from mmu_core.models.generators import save_captioner, save_painter
    from mmu_core.training.recipes import world_texts

    texts = world_texts(tiny_world)
    root = tmp_path_factory.mktemp("fake_hub")
    cache = root / "hub"
    bb = new_backbone(texts, EmbeddedSize(image_size=32, hidden=32, heads=2, embed_dim=16))

    def save_blip(folder):  # as a hub BLIP: model and processor, none of our extras
        bb.model.save_pretrained(folder)
        bb.processor.save_pretrained(folder)

    for repo in (REAL_SOURCES.pretrained, REAL_SOURCES.original["copyright"]):
        _snapshot(cache, repo, save_blip)
    cap, painter = new_captioner(texts), new_painter(texts)
    _snapshot(cache, REAL_SOURCES.captioner, lambda f: save_captioner(cap, f))
    _snapshot(cache, REAL_SOURCES.painter, lambda f: save_painter(painter, f))
    save_blip(root / "privacy-original")  # a folder, as the user's own fine-tune would be
    return root


def test_dry_run_keeps_one_cell_per_scenario(tiny_world):
    cut = dry_run(PRESETS["real"], tiny_world)
    assert cut.grid == {"copyright": (5,)}  # privacy's original must be given
    assert cut.seeds == (0,) and cut.retrain_epochs == 1
    assert PRESETS["real"].sources.recipes == {"privacy": "privacy-real",
                                               "copyright": "copyright-real"}


def test_real_preset_dry_run_through_a_fake_hub_cache(fake_hub, tiny_world, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(fake_hub / "hub"), "HF_HUB_OFFLINE": "1",
           "MMU_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "2"}
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "mmu_core", "bench", "unlearning", "--preset", "real",
           "--dry-run", "--data", str(tiny_world), "--out", str(out),
           "--original", f"privacy={fake_hub / 'privacy-original'}",
           "--method", "retrain", "--method", "finetune", "--method", "ours"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert set(cells) == {f"{sc}-{n}-s0-{m}" for sc, n in (("privacy", 5), ("copyright", 5))
                          for m in ("original", "retrain", "finetune", "ours")}
    sources = cells["copyright-5-s0-ours"]["provenance"]["config"]["sources"]
    assert sources["captioner"] == REAL_SOURCES.captioner
    assert sources["original"]["privacy"].endswith("privacy-original")
    retrain = cells["privacy-5-s0-retrain"]["unlearning"]
    assert retrain["epochs"] == 1
    assert "R@D_f" in cells["copyright-5-s0-ours"]["metrics"]["headline"]
    # an id missing from the cache fails fast, naming it
    bad = cmd[:5] + ["--preset", "real", "--dry-run", "--data", str(tiny_world), "--out",
                     str(tmp_path / "bad"), "--original", "privacy=Salesforce/no-such-model",
                     "--method", "finetune"]
    done = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0 and "Salesforce/no-such-model" in done.stderr
