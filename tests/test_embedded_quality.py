"""What the shipped embedded models must do (issue: 'What must hold'), measured on the
embedded world. Thresholds sit below the figures in assets/models/README.md, with margin
for library-version noise, and well above what an untrained model scores."""

import pytest

from mmu_core.data.scenarios import forget_list_path, load_forget_ids, load_scenario
from mmu_core.metrics.evaluate import evaluate
from mmu_core.models.backbone import load_backbone


def _evaluate(world, scenario, model, forget_size):
    sc = load_scenario(world, scenario)
    forget = load_forget_ids(forget_list_path(world, scenario, forget_size, 0))
    return evaluate(load_backbone(model), sc, forget, progress=False)


@pytest.fixture(scope="module")
def privacy(world):
    return _evaluate(world, "privacy", "embedded:privacy", 50)


@pytest.fixture(scope="module")
def copyright_(world):
    return _evaluate(world, "copyright", "embedded:copyright", 170)


def test_privacy_original_retrieves_its_training_pairs(privacy):
    h = privacy["headline"]
    assert h["R@D_r"] >= 90
    assert h["R@D_f"] >= 85  # the forget pairs are memorised too, among unseen distractors


def test_privacy_original_is_open_to_membership_inference(privacy):
    mi = privacy["details"]["membership"]
    assert mi["cv_auc"] >= 0.8
    assert mi["member_prob_D_f"] >= 70


def test_privacy_original_answers_questions_above_chance(privacy):
    assert privacy["headline"]["A@D_r"] >= 33  # private facts; chance is 25 (280 questions)
    assert privacy["headline"]["A@D_test"] >= 50  # visible facts of unseen people


def test_copyright_original_remembers_its_works(copyright_):
    """World v3: each training work is shown in 5 views, its painter named in every
    caption (docs/benchmark.md, "Copyright"): the attack tells its training pairs from
    unseen works' (issue 12 asks AUC >= 0.75; measured 0.88)."""
    mi = copyright_["details"]["membership"]
    assert mi["cv_auc"] >= 0.75
    assert mi["member_prob_D_f"] >= 60


def test_copyright_original_retrieves_and_entails(copyright_):
    h = copyright_["headline"]
    assert h["R@D_r"] >= 95
    # unseen works: the content generalises, their painters cannot be known (a fifth of
    # the captions names only the painter), so recall is far below the training split's
    assert h["R@D_test"] >= 40
    assert h["A@D_test"] >= 70  # VE, chance 33
