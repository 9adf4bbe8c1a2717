"""The cost benchmark's parts: work counting, the growth fit, the prediction, and the
real-size stand-ins' sizes (counted on the meta device: no 3.9B model is built here)."""

import pytest
import torch

from mmu_core.bench.cost import PeakMemory, fit_linear, real_seconds, reduced
from mmu_core.bench.work import counting_work, predict_seconds
from mmu_core.models import real_size
from mmu_core.models.backbone import UnknownModelError, load_backbone


@pytest.fixture(scope="module")
def bb():
    return load_backbone("embedded:privacy")


def test_counting_work_splits_kinds_and_modes(bb):
    from PIL import Image

    images = [Image.new("RGB", (64, 64), (i * 40, 0, 0)) for i in range(3)]
    with counting_work() as work:
        with torch.no_grad():
            pix = bb.pixels(images)
            img = bb.encode_image(pix)
        ids, mask = bb.tokenize(["a red shirt", "a blue shirt", "a cat"])
        fused = bb.fuse(img, ids, mask)  # grad on: a step would backpropagate this
        bb.encode_text(ids[:2], mask[:2])
    counts = work.as_dict()
    assert counts["pixels/infer"] == {"calls": 1, "samples": 3}
    assert counts["vision/infer"] == {"calls": 1, "samples": 3}
    assert counts["fused/train"] == {"calls": 1, "samples": 3}
    assert counts["text/train"] == {"calls": 1, "samples": 2}
    assert "text/infer" not in counts and fused.requires_grad
    with counting_work() as later:  # the hooks left with the block
        pass
    bb.encode_image(pix)
    assert later.as_dict() == {}


def test_growth_fit_flags_only_faster_than_linear():
    ns = [1, 5, 50, 500]
    linear = fit_linear(ns, [2 + 0.3 * n for n in ns])
    assert not linear["super_linear"] and linear["b"] == pytest.approx(0.3, abs=1e-3)
    assert not fit_linear(ns, [10, 10.2, 9.9, 10.1])["super_linear"]  # flat, with noise
    assert fit_linear(ns, [1 + 0.01 * n * n for n in ns])["super_linear"]


def test_prediction_scales_counted_work_and_keeps_the_rest():
    work = {"vision/train": {"calls": 10, "samples": 40},
            "pixels/infer": {"calls": 10, "samples": 40}}
    emb = {"vision/train": {"per_call": 0.01, "per_sample": 0.001, "flops_per_sample": 1e6},
           "pixels/infer": {"per_call": 0.0, "per_sample": 0.0001, "flops_per_sample": 0}}
    real = {"vision/train": {"per_call": 0.02, "per_sample": 2.0, "flops_per_sample": 1e11},
            "pixels/infer": {"per_call": 0.0, "per_sample": 0.004, "flops_per_sample": 0}}
    assert predict_seconds(work, emb) == pytest.approx(0.1 + 0.04 + 0.004)
    got = real_seconds({"seconds": 1.144, "work": work}, emb, real)
    assert got["other_s"] == pytest.approx(1.0, abs=0.01)  # outside the counted modules
    assert got["seconds"] == pytest.approx(1.0 + 0.2 + 80 + 0.16, abs=0.1)
    # on a device: FLOPs at the rate; the resizing (no FLOPs) stays at its CPU time
    assert predict_seconds(work, real, flop_rate=1e13, call_scale=0.0) == pytest.approx(
        40 * 1e11 / 1e13 + 40 * 0.004)


def test_peak_memory_sees_an_allocation():
    with PeakMemory() as mem:
        block = torch.ones(64, 2 ** 20)  # 256 MB, touched
        block += 1
        del block
    assert mem.extra_mb > 200


def test_real_size_stand_ins_have_the_published_sizes():
    from transformers import Blip2ForConditionalGeneration

    bb = load_backbone(real_size.BACKBONE)
    assert real_size.parameters_m(bb.model) == pytest.approx(223.7, abs=0.5)
    assert bb.processor.image_processor.size["height"] == 384
    scores = bb.score_pairs([__import__("PIL.Image").Image.new("RGB", (64, 64))], ["a cat"])
    assert scores["fused_cls"].shape == (1, 768)
    with torch.device("meta"):
        cap = Blip2ForConditionalGeneration(real_size.blip2_config())
        vae, unet, text = real_size.sd15_modules()
    assert real_size.parameters_m(cap) == pytest.approx(3744.7, abs=5)  # LM head tied
    assert [real_size.parameters_m(m) for m in (unet, vae, text)] == pytest.approx(
        [859.5, 83.7, 123.1], abs=0.5)


def test_an_unknown_stand_in_is_a_clear_error():
    from mmu_core.models.generators import load_painter

    with pytest.raises(UnknownModelError, match="real-size"):
        load_backbone("real-size:blip-itm-huge")
    with pytest.raises(UnknownModelError, match="text-to-image"):
        load_painter(real_size.BACKBONE)


def test_reduced_scenario_keeps_the_forget_groups():
    from mmu_core.data.generate import default_world
    from mmu_core.data.scenarios import load_scenario

    sc = load_scenario(default_world(), "privacy")
    ids = [sc.train[0].pair_id]
    cut = reduced(sc, ids, groups=3, per_split=4)
    groups = {p.group for p in cut.train}
    assert sc.train[0].group in groups and len(groups) == 4
    assert len(cut.test) == 4 and len(cut.calib) == 4


class _Sized:
    """Stands for a model of `millions` parameters (an expanded view: no memory)."""

    def __init__(self, millions: float):
        self.n = int(millions * 1e6)

    def parameters(self):
        return [torch.empty(1).expand(self.n)]


def test_expected_seconds_follow_the_model_size_and_device(tmp_path):
    import json

    from mmu_core.bench.cost import expected_seconds, size_class

    path = tmp_path / "cost.json"
    path.write_text(json.dumps({
        "gpu_assumption": {"name": "a test GPU"},
        "methods": {"ours": {"n": [1, 5], "seconds": [1.0, 4.0],
                             "real": [{}, {"cpu_fp32_s": 3000.0, "gpu_estimate_s": 20.0}]}}}))
    small, base, large = _Sized(1.0), _Sized(223.7), _Sized(470.0)
    assert [size_class(m) for m in (small, base, large)] == ["embedded", "blip-base", None]
    assert expected_seconds("ours", small, gpu=False, path=path)[0] == 4.0
    assert expected_seconds("ours", small, gpu=True, path=path) is None  # never measured
    assert expected_seconds("ours", base, gpu=False, path=path)[0] == 3000.0
    seconds, basis = expected_seconds("ours", base, gpu=True, path=path)
    assert seconds == 20.0 and "a test GPU" in basis
    assert expected_seconds("ours", large, gpu=False, path=path) is None
    assert expected_seconds("ga", base, gpu=False, path=path) is None


def test_checkpointed_layers_give_the_same_gradients_in_eval_mode(bb):
    """A real-size backbone recomputes its layers in the backward pass, in the eval mode
    the methods edit in; the gradients are the ones without."""
    from PIL import Image

    from transformers.modeling_layers import GradientCheckpointingLayer

    plain, ckpt = bb.copy().eval(), bb.copy().checkpoint_layers().eval()
    layers = [m for m in ckpt.model.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert layers and all(m.training and m.gradient_checkpointing for m in layers)
    assert not any(m.training for m in ckpt.model.modules()
                   if isinstance(m, torch.nn.Dropout))  # the rest follows eval()
    images = [Image.new("RGB", (64, 64), (200, 30 * i, 0)) for i in range(2)]
    grads = []
    for model in (plain, ckpt):
        pix = model.pixels(images)
        ids, mask = model.tokenize(["a red shirt", "a green shirt"])
        img = model.encode_image(pix)
        loss = model.itm_logits(model.fuse(img, ids, mask)).sum() + model.image_feat(img).sum()
        loss.backward()
        grads.append(model.model.vision_model.encoder.layers[0].mlp.fc1.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
    # frozen embeddings, as ours-local edits: the text encoder still runs under grad
    ckpt.model.text_encoder.embeddings.requires_grad_(False)
    ids, mask = ckpt.tokenize(["a red shirt"])
    assert ckpt.encode_text(ids, mask).requires_grad
    assert load_backbone("embedded:privacy").checkpointing is False  # the embedded default
