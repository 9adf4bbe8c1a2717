"""MVI (Eq. 1-2): the ELBO's terms, fitting, the encoder/decoder swap, saving and caching,
bad input, and the real-id code paths, on tiny random generators of the real classes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmu_core.data.inputs import InputError
from mmu_core.data.loaders import DataError, Pair
from mmu_core.models.embedded_generators import (CaptionerSize, PainterSize, new_captioner,
                                                 new_painter)
from mmu_core.mvi import anchors as A
from mmu_core.mvi import fit as FIT
from mmu_core.mvi import model as M

ROOT = Path(__file__).resolve().parent.parent
# lr: the shipped default. At 1e-2 this fit spiked (KL of U'_1 up to 8e3 at one step, the
# loss up to 1e13 in one run), so where it ended depended on last-bit differences
# between runs: the ELBO test failed in one full suite and passed alone.
TINY = M.MVIConfig(latent_dim=4, cond_tokens=2, hidden=32, steps=40, batch_size=8, lr=3e-3)
COLOURS = [(200, 30, 30), (30, 30, 200), (30, 160, 30), (220, 200, 40)]


def _pairs(tmp_path, n=8):
    pairs = []
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (40, 40), COLOURS[i % 4]).save(path)
        colour = ["red", "blue", "green", "yellow"][i % 4]
        text = (f"a person wearing a {colour} shirt, photo {i}." if i % 2
                else f"two {colour} circles on the left, picture {i}.")
        pairs.append(Pair(str(path), text, f"G{i // 2}", f"G{i // 2}_{i % 2}"))
    return pairs


@pytest.fixture(scope="module")
def gens():
    texts = ["a person wearing a red blue green yellow shirt.",
             "two red blue green yellow circles on the left."]
    cap = new_captioner(texts, CaptionerSize(image_size=32, vision_hidden=32, qformer_hidden=32,
                                             lm_hidden=32, heads=2, query_tokens=4))
    painter = new_painter(texts, PainterSize(image_size=16, vae_channels=(16, 16),
                                             unet_channels=(16, 32), text_hidden=32))
    return cap, painter


@pytest.fixture(scope="module")
def data(gens, tmp_path_factory):
    pairs = _pairs(tmp_path_factory.mktemp("mvi_pairs"))
    return pairs, M.features(*gens, pairs)


def test_kl_matches_torch_distributions():
    mean, logvar = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(M.kl_to_prior(mean, logvar), expected, atol=1e-5)
    assert float(M.kl_to_prior(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max()) == 0.0


def test_elbo_terms_are_the_decoders_own_losses_on_the_chosen_conditioning(gens, data,
                                                                        monkeypatch):
    cap, painter = gens
    _, f = data
    mvi = M.new_mvi(cap, painter, TINY)
    monkeypatch.setattr(M, "sample", lambda mean, logvar, generator=None: mean)
    terms = M.elbo_terms(mvi, cap, painter, f, generator=torch.Generator().manual_seed(3))
    mu1, lv1 = mvi.encode_image(f.pixels)
    mu2, lv2 = mvi.encode_text(f.ids)
    # image decoder: [K' of the paired text; psi_1(U'_1)]; text decoder: [K' of the image;
    # psi_2(U'_2)]
    rec_image = painter.denoise_loss(f.latents, torch.cat([f.k_text, mvi.psi(mu1, "image")], 1),
                                     generator=torch.Generator().manual_seed(3))
    rec_text = cap.lm_loss(torch.cat([f.k_image, mvi.psi(mu2, "text")], 1), f.texts,
                           ignore_unknown=True)
    logits = mvi.modality(torch.cat([mu1, mu2]))
    labels = torch.tensor([M.IMAGE] * len(f) + [M.TEXT] * len(f))
    assert torch.allclose(terms["rec_image"], rec_image)
    assert torch.allclose(terms["rec_text"], rec_text)
    assert torch.allclose(terms["modality"], torch.nn.functional.cross_entropy(logits, labels))
    assert torch.allclose(terms["kl_image"], M.kl_to_prior(mu1, lv1).mean())
    assert torch.allclose(terms["kl_text"], M.kl_to_prior(mu2, lv2).mean())
    # gradients reach phi_U', psi and theta_M, never the frozen generators
    M.negative_elbo(terms, 0.01).backward()
    for part in (mvi.image_encoder, mvi.token_embedding, mvi.text_encoder, mvi.psi_image,
                 mvi.psi_text, mvi.modality):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    frozen = list(cap.model.parameters()) + list(painter.pipe.unet.parameters())
    assert all(p.grad is None and not p.requires_grad for p in frozen)


def test_fitting_lowers_the_negative_elbo_and_separates_modalities(gens, data):
    cap, painter = gens
    pairs, f = data

    def neg_elbo(model):
        with torch.no_grad():
            return float(M.negative_elbo(M.elbo_terms(
                model, cap, painter, f, generator=torch.Generator().manual_seed(0)), 0.01))

    before = neg_elbo(M.new_mvi(cap, painter, TINY))
    mvi, summary = FIT.fit(cap, painter, pairs, TINY, feats=f)
    assert neg_elbo(mvi) < before
    assert summary["pairs"] == len(pairs) and summary["history"][-1]["step"] == TINY.steps - 1
    # no spike on the way (at lr 1e-2 one logged step read 1e13)
    assert max(h["loss"] for h in summary["history"]) <= summary["history"][0]["loss"] * 1.5
    probe = M.modality_probe(mvi, f)
    # 8 pairs: 100% in every run seen; the bound allows one miss per modality
    # (uninitialised weights gave 75%: still caught)
    assert probe["U'_1"]["accuracy"] >= 87.5 and probe["U'_2"]["accuracy"] >= 87.5
    assert set(probe) == {"U'_1", "U'_2", "K'_1", "K'_2"}


def test_the_swap_feeds_each_decoder_the_other_modalitys_u(gens, data, monkeypatch):
    cap, painter = gens
    pairs, f = data
    mvi = M.new_mvi(cap, painter, TINY)
    seen = {}
    monkeypatch.setattr(cap, "generate", lambda prefix, **kw: seen.setdefault(
        "text", []).append(prefix) or ["t"] * len(prefix))
    monkeypatch.setattr(painter, "generate", lambda cond, **kw: seen.setdefault(
        "image", []).append(cond) or ["i"] * len(cond))
    mu1, mu2 = mvi.encode_image(f.pixels)[0], mvi.encode_text(f.ids)[0]
    expected = {
        "swap": (torch.cat([f.k_image, mvi.psi(mu1, "text")], 1),
                 torch.cat([f.k_text, mvi.psi(mu2, "image")], 1)),
        "no_swap": (torch.cat([f.k_image, mvi.psi(mu2, "text")], 1),
                    torch.cat([f.k_text, mvi.psi(mu1, "image")], 1)),
        "only_u": (mvi.psi(mu1, "text"), mvi.psi(mu2, "image")),
        "only_k": (f.k_image, f.k_text),
    }
    for strategy, (text_cond, image_cond) in expected.items():
        seen.clear()
        out = A.anchors(mvi, cap, painter, pairs, strategy=strategy)
        assert len(out) == len(pairs) and out[0].texts == ["t"] and out[0].images == ["i"]
        assert torch.allclose(seen["text"][0], text_cond), strategy
        assert torch.allclose(seen["image"][0], image_cond), strategy
    # N_R1 / N_R2: the posterior mean first, then reparameterised draws
    seen.clear()
    out = A.anchors(mvi, cap, painter, pairs, n_images=3, n_texts=2)
    assert len(seen["image"]) == 3 and len(seen["text"]) == 2
    assert len(out[0].images) == 3 and len(out[0].texts) == 2
    assert not torch.allclose(seen["image"][0], seen["image"][1])


def test_random_strategy_draws_from_other_groups(data):
    pairs, _ = data
    out = A.anchors(None, None, None, pairs[:2], strategy="random", n_texts=3, pool=pairs)
    own = {p.text for p in pairs if p.group == pairs[0].group}
    assert all(t not in own for t in out[0].texts)
    with pytest.raises(ValueError, match="pool"):
        A.anchors(None, None, None, pairs[:2], strategy="random")
    with pytest.raises(ValueError, match="unknown anchor strategy"):
        A.anchors(None, None, None, pairs[:2], strategy="nope")


def test_real_generation_writes_anchor_files(gens, data, tmp_path):
    cap, painter = gens
    pairs, _ = data
    mvi = M.new_mvi(cap, painter, TINY)
    items = A.anchors(mvi, cap, painter, pairs[:2], n_images=2, steps=2)
    index = json.loads(A.write_anchors(items, tmp_path).read_text())
    assert [e["pair_id"] for e in index] == [p.pair_id for p in pairs[:2]]
    assert all((tmp_path / name).is_file() for e in index for name in e["R1"])
    assert all(isinstance(t, str) for e in index for t in e["R2"])


def test_save_load_and_cache(gens, data, tmp_path, monkeypatch):
    cap, painter = gens
    pairs, f = data
    monkeypatch.setenv("MMU_CACHE_DIR", str(tmp_path / "cache"))
    cfg = M.MVIConfig(**{**TINY.__dict__, "steps": 3})
    first, s1 = FIT.fit_or_load(cap, painter, pairs, cfg)
    second, s2 = FIT.fit_or_load(cap, painter, pairs, cfg)
    assert not s1["cache_hit"] and s2["cache_hit"] and s1["cache_key"] == s2["cache_key"]
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    # other data or other settings: another fit
    _, s3 = FIT.fit_or_load(cap, painter, pairs[:-1], cfg)
    _, s4 = FIT.fit_or_load(cap, painter, pairs, M.MVIConfig(**{**cfg.__dict__, "seed": 1}))
    assert not s3["cache_hit"] and not s4["cache_hit"]
    assert len({s1["cache_key"], s3["cache_key"], s4["cache_key"]}) == 3


def test_bad_input_gets_clear_errors(gens, data, tmp_path):
    cap, painter = gens
    pairs, _ = data
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="bad.png.*not a readable image"):
        M.features(cap, painter, [Pair(str(bad), "a text", "G", "G_0")])
    with pytest.raises(InputError, match="text is empty"):
        M.features(cap, painter, [Pair(pairs[0].image, "   ", "G", "G_0")])
    with pytest.raises(InputError, match="no pairs"):
        M.features(cap, painter, [])
    # longer than either tokenizer allows: truncated (documented), not a crash
    long = Pair(pairs[0].image, " ".join(["red circles"] * 200), "G", "G_0")
    f = M.features(cap, painter, [long])
    assert f.ids.shape[1] == painter.pipe.tokenizer.model_max_length
    mvi = M.new_mvi(cap, painter, TINY)
    assert len(A.anchors(mvi, cap, painter, [long], steps=2)[0].texts) == 1
    with pytest.raises(ValueError, match="at least 1"):
        A.anchors(mvi, cap, painter, pairs[:1], n_images=0)


def test_real_hub_ids_with_tiny_random_checkpoints(gens, data, tmp_path):
    """`Salesforce/blip2-opt-2.7b` and an SD 1.5 id resolved offline from a hub cache that
    holds tiny random checkpoints of the same classes; MVI fits and anchors on them."""
    from mmu_core.models.generators import save_captioner, save_painter

    cap, painter = gens
    pairs, _ = data
    rev = "0" * 40
    for repo, save, obj in (("Salesforce/blip2-opt-2.7b", save_captioner, cap),
                            ("stable-diffusion-v1-5/stable-diffusion-v1-5", save_painter,
                             painter)):
        snap = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
        save(obj, snap / "snapshots" / rev)
        (snap / "refs").mkdir(parents=True)
        (snap / "refs" / "main").write_text(rev)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1",
               MMU_CACHE_DIR=str(tmp_path / "cache"))
    code = (
        "import json, sys\n"
        "from mmu_core.mvi import anchors as A, fit as FIT, model as M\n"
        "from mmu_core.data.loaders import Pair\n"
        "from mmu_core.models.generators import load_captioner, load_painter\n"
        "cap = load_captioner('Salesforce/blip2-opt-2.7b')\n"
        "pt = load_painter('stable-diffusion-v1-5/stable-diffusion-v1-5')\n"
        "pairs = [Pair(*p) for p in json.loads(sys.argv[1])]\n"
        "cfg = M.MVIConfig(latent_dim=4, cond_tokens=2, hidden=32, steps=2, batch_size=4)\n"
        "mvi, s = FIT.fit_or_load(cap, pt, pairs, cfg)\n"
        "out = A.anchors(mvi, cap, pt, pairs[:2], steps=2)\n"
        "print(type(cap.model).__name__, type(pt.pipe).__name__, len(out), s['cache_hit'])\n")
    arg = json.dumps([[p.image, p.text, p.group, p.pair_id] for p in pairs])
    out = subprocess.run([sys.executable, "-c", code, arg], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["Blip2ForConditionalGeneration",
                                       "StableDiffusionPipeline", "2", "False"]


def test_quality_measures():
    from mmu_core.metrics.generator_quality import self_bleu
    from mmu_core.models.image_classifier import ImageClassifier, inception_style_score

    same = ["a red circle on the left of a white background."] * 3
    varied = ["a red circle on the left.", "two blue squares on a pink background.",
              "a person wearing a green shirt in front of a teal wall."]
    assert self_bleu(same) == pytest.approx(100.0)
    assert self_bleu(varied) < 20.0
    with pytest.raises(ValueError):
        self_bleu(same[:1])
    clf = ImageClassifier()
    torch.nn.init.zeros_(clf.net[-1].weight)
    torch.nn.init.zeros_(clf.net[-1].bias)  # uniform predictions: the score's minimum, 1
    images = [Image.new("RGB", (32, 32), c) for c in COLOURS]
    assert inception_style_score(clf, images) == pytest.approx(1.0)


def test_building_waits_for_a_load_in_another_thread(gens):
    """transformers' loaders switch torch's init functions off process-wide while they run
    (the app loads generators in a warm-up thread): a model built meanwhile must wait."""
    import threading
    import time

    from transformers.initialization import no_init_weights

    from mmu_core.models.building import serialised

    cap, painter = gens
    alone = M.new_mvi(cap, painter, TINY).state_dict()
    inside = threading.Event()

    @serialised
    def loading():  # what a serialised from_pretrained does
        with no_init_weights():
            inside.set()
            time.sleep(1.0)

    loader = threading.Thread(target=loading)
    loader.start()
    inside.wait(10)
    built = M.new_mvi(cap, painter, TINY).state_dict()
    loader.join()
    assert all(torch.equal(alone[k], built[k]) for k in alone)


def test_auxiliary_losses_train_mvi_and_the_discriminator_apart(gens, data):
    """Table 7: with the auxiliary weights on, the terms appear; MVI's adversarial term
    moves MVI and not the discriminator, the discriminator's own term moves only the
    discriminator, and the perceptual term reaches psi_1 through the frozen UNet."""
    from mmu_core.mvi.auxiliary import new_discriminator

    cap, painter = gens
    _, f = data
    cfg = M.MVIConfig(**{**TINY.__dict__, "adversarial": 0.1, "perceptual": 1.0})
    mvi, disc = M.new_mvi(cap, painter, cfg), new_discriminator(painter, 0)
    g = torch.Generator().manual_seed(0)
    terms = M.elbo_terms(mvi, cap, painter, f, generator=g, config=cfg, discriminator=disc)
    assert {"adversarial", "discriminator", "perceptual"} <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())

    def grads(loss, module):
        gs = torch.autograd.grad(loss, list(module.parameters()), retain_graph=True,
                                 allow_unused=True)
        return sum(0.0 if x is None else float(x.abs().sum()) for x in gs)
    assert grads(terms["adversarial"], mvi.psi_image) > 0
    assert grads(terms["adversarial"], disc) == 0
    assert grads(terms["discriminator"], disc) > 0
    assert grads(terms["discriminator"], mvi) == 0
    assert grads(terms["perceptual"], mvi.psi_image) > 0
    # off (the default): the ELBO's five terms only, and the loss is the plain one
    plain = M.elbo_terms(mvi, cap, painter, f, generator=torch.Generator().manual_seed(0))
    assert set(plain) == {"modality", "rec_image", "rec_text", "kl_image", "kl_text"}
    with_aux = M.negative_elbo(terms, 0.01, 0.1, 1.0)
    expected = (M.negative_elbo({k: terms[k] for k in plain}, 0.01) + 0.1 * terms["adversarial"]
                + terms["perceptual"] + terms["discriminator"])
    assert torch.allclose(with_aux, expected)


def test_auxiliary_losses_fit_and_keep_the_old_fits_keys(gens, data, tmp_path, monkeypatch):
    cap, painter = gens
    pairs, _ = data
    monkeypatch.setenv("MMU_CACHE_DIR", str(tmp_path / "cache"))
    base = M.MVIConfig(**{**TINY.__dict__, "steps": 3})
    aux = M.MVIConfig(**{**base.__dict__, "adversarial": 0.1, "perceptual": 1.0})
    mvi, summary = FIT.fit(cap, painter, pairs, aux)
    assert {"adversarial", "perceptual"} <= set(summary["history"][-1])
    # weights at 0 leave the key as it was before the fields existed; on, another fit
    import hashlib
    old = json.dumps({"version": 1, "config": {k: v for k, v in base.__dict__.items()
                                                if k not in ("adversarial", "perceptual")},
                      "captioner": FIT._model_fingerprint(cap.model),
                      "painter": [FIT._model_fingerprint(m) for m in
                                  (painter.pipe.unet, painter.pipe.text_encoder,
                                   painter.pipe.vae)],
                      "pairs": [[p.pair_id, p.group, p.text] for p in pairs]}, sort_keys=True)
    assert FIT.cache_key(cap, painter, pairs, base) == hashlib.sha256(
        old.encode()).hexdigest()[:20]
    assert FIT.cache_key(cap, painter, pairs, aux) != FIT.cache_key(cap, painter, pairs, base)
