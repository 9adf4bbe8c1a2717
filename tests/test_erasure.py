"""The app's engine without the app: a person's forget request, uploads and teaching, the
inspection views, the session store and the erasure report."""

import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from mmu_core.data.inputs import InputError
from mmu_core.data.loaders import open_image
from mmu_core.erasure import analysis
from mmu_core.erasure import forget_request
from mmu_core.erasure.sessions import Expired, SessionStore


@pytest.fixture(scope="module")
def privacy(world):
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.models.backbone import load_backbone

    return load_backbone("embedded:privacy"), load_scenario(world, "privacy")


@pytest.fixture(scope="module")
def generators():
    from mmu_core.models.generators import load_captioner, load_painter

    return load_captioner(), load_painter()


def _state(bb):
    return {k: v.clone() for k, v in bb.state_dict().items()}


@pytest.fixture(scope="module")
def forgotten(privacy, generators):
    """One training pair forgotten with ours (the shipped MVI fit: no fitting here)."""
    bb, sc = privacy
    before = _state(bb)
    out = forget_request.forget(bb, sc, "privacy", [sc.train[0]], "ours",
                                captioner=generators[0], painter=generators[1])
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())
    return out


@pytest.mark.parametrize("name", ["privacy", "copyright"])
def test_shipped_mvi_fits_match_the_embedded_scenarios(world, generators, name):
    """A stale shipped fit would silently cost every fresh install a 15 s fit."""
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.mvi.fit import SHIPPED, cache_key, fit_pairs
    from mmu_core.mvi.model import MVIConfig

    cfg = MVIConfig(seed=0)
    pairs = fit_pairs(load_scenario(world, name).train, cfg.max_fit_pairs, 0)
    key = cache_key(*generators, pairs, cfg)
    assert (SHIPPED / key / "model.safetensors").is_file()


def test_forgetting_a_training_pair_lowers_its_evidence(forgotten):
    b, a = forgotten.before.rows[0], forgotten.after.rows[0]
    assert b["match"] > 0.5 and b["rank"] <= 3 and b["member"] > 0.5
    assert a["match"] < b["match"] / 2 and a["rank"] > b["rank"] and a["member"] < b["member"]
    assert not forgotten.taught and forgotten.info["mvi_cache_hit"]
    # ours leaves its anchors for inspection: one R_1 image and one R_2 text per pair
    (anchor,) = forgotten.anchors
    assert len(anchor.images) == 1 and isinstance(anchor.texts[0], str) and anchor.texts[0]


def test_uploaded_pair_must_be_taught_before_it_can_be_forgotten(privacy):
    bb, sc = privacy
    pair = forget_request.uploaded_pair(open_image(sc.unseen[3]),
                                        "mira solberg is a baker from oslo.", bb)
    assert pair.pair_id.startswith(forget_request.UPLOAD_PREFIX)
    with pytest.raises(forget_request.NotLearnedError, match="nothing to forget"):
        forget_request.forget(bb, sc, "privacy", [pair], "ga")
    out = forget_request.forget(bb, sc, "privacy", [pair], "ga", teach_first=True)
    assert out.taught and out.shipped is bb and out.original is not bb
    shipped = forget_request.evidence(bb, out.scenario_data, [pair]).rows[0]
    taught = out.before.rows[0]
    # teaching made the model learn it; the shipped model never did
    assert taught["match"] > 0.5 > shipped["match"]
    assert taught["member"] > shipped["member"]
    assert out.after.rows[0]["match"] < taught["match"]
    ref, how = forget_request.retrain_reference(out)
    assert ref is bb and "never saw" in how["how"]


@pytest.mark.parametrize("image, text, message", [
    (None, "a text", "upload an image"),
    ("corrupt", "a text", "not a readable image"),
    ("ok", "  ", "empty"),
    ("ok", "x" * 600, "limit is 500"),
    ("bomb", "a text", "too many pixels"),
])
def test_bad_uploads_are_refused_plainly(privacy, tmp_path, image, text, message):
    bb, sc = privacy
    if image == "corrupt":
        image = str(tmp_path / "broken.png")
        open(image, "wb").write(b"\x89PNG\r\n\x1a\n" + b"0" * 50)
    elif image == "ok":
        image = open_image(sc.unseen[0])
    elif image == "bomb":  # a tiny file that decodes to 64 megapixels
        image = str(tmp_path / "bomb.png")
        Image.new("1", (8000, 8000)).save(image)
        assert os.path.getsize(image) < 100_000
    with pytest.raises(InputError, match=message):
        forget_request.uploaded_pair(image, text, bb)


def test_empty_request_and_unknown_method_are_refused(privacy):
    bb, sc = privacy
    with pytest.raises(InputError, match="at least one pair"):
        forget_request.forget(bb, sc, "privacy", [])
    with pytest.raises(InputError, match="Unknown method"):
        forget_request.forget(bb, sc, "privacy", [sc.train[0]], "nope")


def test_views_show_the_erasure(forgotten, generators):
    from mmu_core.erasure.inspection import build_views

    views = build_views(forgotten, *generators, projections=("tsne",), neighbours=3)
    before, after = (np.array(t.z) for t in views.matrix.data)
    assert before.shape == (4, 4)
    assert after[0, 0] < before[0, 0] / 2  # the forgetting pair's own cell drops
    points = views.maps["tsne"].data
    assert sum(len(t.x) for t in points) == 2 * 2 * (1 + 150)  # images + texts, 2 panels
    assert views.word_table["largest"] and views.probe_table["U'_1"]["accuracy"] > 50
    (text, cam_before, cam_after), = views.cams
    assert cam_before.size == cam_after.size and text == forgotten.forget[0].text
    assert np.asarray(cam_before).std() > 0


def test_gradcam_maps_the_image_patches(privacy):
    from mmu_core.erasure.gradcam import itm_gradcam

    bb, sc = privacy
    pair = sc.train[0]
    cam = itm_gradcam(bb, open_image(pair), pair.text, layer=0)
    side = bb.model.config.vision_config.image_size // bb.model.config.vision_config.patch_size
    assert cam.shape == (side, side) and (cam >= 0).all() and cam.max() > 0
    with pytest.raises(ValueError, match="out of range"):
        itm_gradcam(bb, open_image(pair), pair.text, layer=99)


def test_semantic_map_projections(privacy):
    bb, sc = privacy
    for method in ("tsne", "umap"):
        m = analysis.semantic_map(bb, sc.train[:2], sc.train[10:40], method)
        assert m["xy"].shape == (64, 2) and sum(m["forgetting"]) == 4
    with pytest.raises(ValueError, match="unknown projection"):
        analysis.semantic_map(bb, sc.train[:2], sc.train[10:40], "pca")


def test_report_is_self_contained(forgotten, generators):
    from mmu_core.erasure.inspection import build_views
    from mmu_core.erasure.report import erasure_report

    views = build_views(forgotten, *generators, projections=("tsne",), neighbours=2)
    html = erasure_report(forgotten, views)
    assert html.startswith("<!doctype html>") and forgotten.forget[0].text in html
    assert html.count("data:image/png;base64,") >= 4  # the pair, R_1, two Grad-CAMs
    # no file or script fetched from elsewhere: plotly.js is inlined once
    assert not re.search(r'<script[^>]+src=', html) and not re.search(r'<img[^>]+src="http', html)
    assert html.count("plotly.js v") <= 2
    assert "membership prob. before" in html and "&quot;torch&quot;" in html
    assert "What the figures compare" in html and "compare the model before the request" in html


def test_session_store_expires_and_evicts():
    now = [0.0]
    gone = []  # every value let go reaches on_drop once (the app stops its Retrain there)
    store = SessionStore(ttl_s=10, max_items=2, clock=lambda: now[0], on_drop=gone.append)
    a = store.put("model a")
    b = store.put("model b")
    assert store.get(a) == "model a"
    c = store.put("model c")  # full: the oldest goes
    assert gone == ["model a"]
    with pytest.raises(Expired):
        store.get(a)
    now[0] = 11
    with pytest.raises(Expired, match="expired"):
        store.get(b)
    assert len(store) == 0 and c and gone == ["model a", "model b", "model c"]
    store.drop("never there")
    d = store.put("model d")
    store.put("model d, again", key=d)  # replaced
    store.drop(d)
    assert gone[3:] == ["model d", "model d, again"]
    # a visitor with no request yet is told what to do first, not that something expired
    with pytest.raises(Expired, match="No request yet") as err:
        store.get(None)
    assert "expired" not in str(err.value)


def test_retrain_reference_for_training_pairs_retrains_without_them(forgotten):
    """A training pair's Retrain is trained here (1 epoch keeps the test short)."""
    model, how = forget_request.retrain_reference(forgotten, epochs=1)
    assert model is not forgotten.shipped and how["epochs"] == 1
    assert "retrained on D_r for 1 of the recipe's 80 epochs (a rougher" in how["how"]


class _ScoreBackbone:
    """One image; each text is (ITC score, ITM logit) against it, looked up by name."""

    def __init__(self, table):
        self.table = table

    def pixels(self, images):
        return torch.tensor([[[1.0, 0.0]]] * len(images))

    def encode_image(self, pix):
        return pix

    def image_feat(self, emb):
        return emb[:, 0]

    def tokenize(self, texts):
        ids = torch.tensor([[self.table[t]] for t in texts])
        return ids, torch.ones(len(texts), 1)

    def encode_text(self, ids, mask):
        return ids

    def text_feat(self, emb):
        return emb[:, 0] * torch.tensor([1.0, 0.0])  # ITC reads the first number

    def fuse(self, img, ids, mask):
        return ids

    def itm_logits(self, fused):
        return torch.stack([torch.zeros(len(fused)), fused[:, 0, 1]], -1)


@pytest.mark.parametrize("own,want", [((0.9, -5.0), forget_request.RERANK_K),
                                      ((0.9, 5.0), 1), ((0.05, 5.0), 21)])
def test_retrieval_rank_reranks_the_itc_shortlist_by_itm(own, want):
    """As recall is measured: first by ITC, a lost ITM match drops the own text to the
    bottom of the shortlist; outside the shortlist the ITC rank stands."""
    gallery = [f"g{i}" for i in range(20)]
    table = {f"g{i}": (0.1 + 0.02 * i, 0.0) for i in range(20)}
    bb = _ScoreBackbone({**table, "own": own})
    assert forget_request.retrieval_rank(bb, ["img"], ["own"], gallery) == [want]
