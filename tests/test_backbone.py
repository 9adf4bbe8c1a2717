import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmu_core.models.backbone import UnknownModelError, load_backbone

ROOT = Path(__file__).resolve().parent.parent


def test_views_have_the_expected_shapes(tiny_backbone):
    bb = tiny_backbone
    from PIL import Image

    imgs = [Image.new("RGB", (50, 40), (200, 10, 10)), Image.new("RGB", (64, 64))]
    pix = bb.pixels(imgs)
    ids, mask = bb.tokenize(["a red circle .", "one blue square on the left ."])
    img = bb.encode_image(pix)
    txt = bb.encode_text(ids, mask)
    assert img.shape[:2] == (2, 1 + (32 // 8) ** 2)
    assert txt.shape[:2] == ids.shape
    fused = bb.fuse(img, ids, mask)
    assert fused.shape == txt.shape
    assert not torch.allclose(fused, txt)  # cross-attention changes the text states
    assert bb.itm_logits(fused).shape == (2, 2)
    assert bb.ve_logits(fused).shape == (2, 3)
    sim = bb.itc_logits(bb.image_feat(img), bb.text_feat(txt))
    assert sim.shape == (2, 2)
    s = bb.score_pairs(imgs, ["a red circle .", "one blue square on the left ."])
    assert ((s["itm"] >= 0) & (s["itm"] <= 1)).all() and s["fused_cls"].shape[0] == 2


def test_save_and_load_roundtrip_is_exact(tiny_backbone, tmp_path):
    bb = tiny_backbone
    with torch.no_grad():
        bb.temp.fill_(0.123)
    bb.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file()
    again = load_backbone(str(tmp_path / "m"))
    from PIL import Image

    img = [Image.new("RGB", (32, 32), (10, 200, 10))]
    text = ["a green wall ."]
    a, b = bb.eval().score_pairs(img, text), again.score_pairs(img, text)
    assert torch.allclose(a["itm"], b["itm"]) and torch.allclose(a["fused_cls"], b["fused_cls"])
    assert float(again.temp.detach()) == pytest.approx(0.123)
    assert torch.equal(again.ve_head.weight, bb.ve_head.weight)


def test_copy_never_shares_parameters(tiny_backbone):
    c = tiny_backbone.copy()
    with torch.no_grad():
        next(c.parameters()).add_(1.0)
    assert not torch.equal(next(c.parameters()), next(tiny_backbone.parameters()))


def test_unknown_ids_give_clear_errors(tmp_path):
    with pytest.raises(UnknownModelError, match="unknown embedded model"):
        load_backbone("embedded:nope")
    with pytest.raises(UnknownModelError, match="empty"):
        load_backbone("  ")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UnknownModelError, match="no config.json"):
        load_backbone(str(tmp_path / "empty_dir"))
    with pytest.raises(UnknownModelError, match="unknown model id 'someone/not-a-model'"):
        load_backbone("someone/not-a-model")


def test_real_hub_id_path_with_a_tiny_random_checkpoint(tiny_backbone, tmp_path):
    """`Salesforce/blip-itm-base-coco` resolved offline from a hub cache that holds a tiny
    random checkpoint of the same class: the real-id code path, without a download."""
    snap = tmp_path / "hub" / "models--Salesforce--blip-itm-base-coco"
    rev = "0" * 40
    tiny_backbone.model.save_pretrained(snap / "snapshots" / rev)
    tiny_backbone.processor.save_pretrained(snap / "snapshots" / rev)
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text(rev)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    code = ("from mmu_core.models.backbone import load_backbone\n"
            "bb = load_backbone('Salesforce/blip-itm-base-coco')\n"
            "print(type(bb.model).__name__, bb.model.config.text_config.hidden_size,"
            " round(float(bb.temp), 3))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["BlipForImageTextRetrieval", "32", "0.07"]


@pytest.mark.parametrize("name", ["embedded", "embedded:privacy", "embedded:copyright",
                                  "embedded:pretrained"])
def test_embedded_models_load(name):
    bb = load_backbone(name)
    assert type(bb.model).__name__ == "BlipForImageTextRetrieval"
    assert not bb.training


def test_an_uncached_hub_id_fails_at_once_when_the_hub_is_out_of_reach(monkeypatch):
    """No ~30 s of from_pretrained retries: one short probe of the hub, then a clear error
    (and offline, no probe at all)."""
    from huggingface_hub import constants
    from transformers import BlipForImageTextRetrieval

    def never(*a, **kw):
        raise AssertionError("from_pretrained must not be reached for an unreachable hub")

    monkeypatch.setattr(BlipForImageTextRetrieval, "from_pretrained", never)
    with pytest.raises(UnknownModelError, match="HF_HUB_OFFLINE"):
        load_backbone("nobody/not-cached")  # the suite runs offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UnknownModelError, match="could not be reached"):
        load_backbone("nobody/not-cached")
