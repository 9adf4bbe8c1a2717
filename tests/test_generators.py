"""The generator wrappers on tiny random models of the real classes (the code path real
BLIP-2 and Stable Diffusion checkpoints take), offline."""

import pytest
import torch
from PIL import Image

from mmu_core.data.loaders import Pair
from mmu_core.models.backbone import UnknownModelError
from mmu_core.models.embedded_generators import (CaptionerSize, PainterSize, new_captioner,
                                                 new_painter)
from mmu_core.models.generators import (load_captioner, load_painter, save_captioner,
                                        save_painter)

TEXTS = ["a person with short red hair wearing a blue shirt in front of a green wall.",
         "two red circles on the left of a white background."]
IMAGES = [Image.new("RGB", (40, 40), (200, 30, 30)), Image.new("RGB", (64, 64), (30, 30, 200))]


@pytest.fixture(scope="module")
def captioner():
    return new_captioner(TEXTS, CaptionerSize(image_size=32, vision_hidden=32, qformer_hidden=32,
                                              lm_hidden=32, heads=2, query_tokens=4))


@pytest.fixture(scope="module")
def painter():
    return new_painter(TEXTS, PainterSize(image_size=16, vae_channels=(16, 16),
                                          unet_channels=(16, 32), text_hidden=32))


def test_captioner_knowledge_loss_and_generation(captioner, tmp_path):
    k = captioner.knowledge(captioner.pixels(IMAGES))
    assert k.shape == (2, 4, 32)
    per = captioner.lm_loss(k, TEXTS, reduction="none")
    assert per.shape == (2,) and torch.isfinite(per).all()
    # the prefix matters: a different conditioning gives a different likelihood
    assert not torch.allclose(per, captioner.lm_loss(torch.zeros_like(k), TEXTS, reduction="none"))
    out = captioner.generate(k, max_new_tokens=3)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    save_captioner(captioner, tmp_path / "cap")
    again = load_captioner(str(tmp_path / "cap"))
    assert torch.allclose(again.knowledge(again.pixels(IMAGES)), k, atol=1e-6)


def test_a_t5_captioner_is_trained_and_read_like_the_opt_one(tmp_path):
    """Table 8's BLIP-2 with an encoder-decoder LM: the prefix goes to T5's encoder, the
    loss is the decoder's NLL of the text, and training lowers it."""
    from mmu_core.training.generators import train_captioner

    cap = new_captioner(TEXTS, CaptionerSize(image_size=32, vision_hidden=32, qformer_hidden=32,
                                             lm_hidden=32, heads=2, query_tokens=4, lm="t5"))
    assert cap.seq2seq and type(cap.model.language_model).__name__.startswith("T5")
    k = cap.knowledge(cap.pixels(IMAGES))
    per = cap.lm_loss(k, TEXTS, reduction="none")
    assert per.shape == (2,) and torch.isfinite(per).all()
    assert not torch.allclose(per, cap.lm_loss(torch.zeros_like(k), TEXTS, reduction="none"))
    # for one text the loss is T5's own (labels shifted right from the pad token)
    ids, _ = cap._text_ids(TEXTS[:1])
    own = cap.model.language_model(inputs_embeds=k[:1], labels=ids[:, 1:]).loss
    assert torch.allclose(cap.lm_loss(k[:1], TEXTS[:1]), own, atol=1e-5)
    # the decoder starts from padding and the targets end with the end-of-text token
    lm = cap.model.language_model
    assert (lm._shift_right(ids[:, 1:])[:, 0] == cap.tokenizer.pad_token_id).all()
    assert ids[0, -1] == cap.tokenizer.eos_token_id
    assert all(isinstance(t, str) for t in cap.generate(k, max_new_tokens=3))
    pairs = [Pair(str(tmp_path / f"i{i}.png"), t, f"G{i}", f"G{i}_0")
             for i, t in enumerate(TEXTS)]
    for p, im in zip(pairs, IMAGES):
        im.save(p.image)
    before = float(cap.lm_loss(k, TEXTS))
    train_captioner(cap, pairs * 8, epochs=3, batch_size=4, log=lambda *_: None)
    assert float(cap.lm_loss(cap.knowledge(cap.pixels(IMAGES)), TEXTS)) < before
    k = cap.knowledge(cap.pixels(IMAGES))
    save_captioner(cap, tmp_path / "t5")
    again = load_captioner(str(tmp_path / "t5"))
    assert again.seq2seq
    assert torch.allclose(again.lm_loss(k, TEXTS), cap.lm_loss(k, TEXTS), atol=1e-6)
    assert again.generate(k, max_new_tokens=5) == cap.generate(k, max_new_tokens=5)


def test_painter_knowledge_loss_and_generation(painter, tmp_path):
    k = painter.knowledge(TEXTS)
    assert k.shape == (2, painter.pipe.tokenizer.model_max_length, 32)
    lat = painter.latents(painter.pixels(IMAGES))
    assert lat.shape == (2, 4, 8, 8)
    g = torch.Generator().manual_seed(0)
    loss = painter.denoise_loss(lat, k, generator=g, reduction="none")
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    # extra conditioning tokens (e.g. [psi(U'); K']) are accepted
    extra = torch.cat([torch.zeros(2, 3, 32), k], 1)
    imgs = painter.generate(extra, steps=2, seed=1)
    assert [im.size for im in imgs] == [(16, 16), (16, 16)]
    # prompt_embeds give the same image as the pipeline's own prompt path
    a = painter.generate(k[:1], steps=2, seed=3)[0]
    b = painter.pipe(prompt=TEXTS[:1], num_inference_steps=2, guidance_scale=3.0,
                     generator=torch.Generator().manual_seed(3), height=16, width=16).images[0]
    assert a.tobytes() == b.tobytes()
    save_painter(painter, tmp_path / "sd")
    again = load_painter(str(tmp_path / "sd"))
    assert torch.allclose(again.knowledge(TEXTS), k, atol=1e-6)


def test_unknown_generator_ids():
    with pytest.raises(UnknownModelError, match="unknown image-to-text model"):
        load_captioner("someone/not-a-blip2")
    with pytest.raises(UnknownModelError, match="unknown text-to-image model"):
        load_painter("someone/not-a-diffusion-model")
    with pytest.raises(UnknownModelError, match="empty"):
        load_captioner("")


def test_embedded_generators_follow_their_inputs(world):
    """The shipped generators on people they never saw (assets/generators/README.md)."""
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.metrics.generator_quality import caption_colour_accuracy, painted_colour_accuracy

    photos = [p for p in load_scenario(world, "privacy").unseen if "wearing" in p.text][:40]
    cap = caption_colour_accuracy(load_captioner("embedded"), photos)
    assert cap["wall_colour_acc"] >= 80 and cap["shirt_colour_acc"] >= 60  # chance 12.5
    paint = painted_colour_accuracy(load_painter("embedded"), [p.text for p in photos])
    assert paint["shirt_colour_acc"] >= 70 and paint["wall_colour_acc"] >= 70
