import json

from mmu_core.data.scenarios import load_scenario
from mmu_core.training.recipes import Recipe, train


def test_training_lowers_the_loss_and_resumes(tiny_backbone, tiny_world, tmp_path):
    bb = tiny_backbone.copy()
    sc = load_scenario(tiny_world, "copyright")
    recipe = Recipe(epochs=3, lr=2e-3, batch_size=32, ve_batch_size=8, warmup_steps=1)
    out = tmp_path / "run"
    first = train(bb, recipe, sc.train, out, ve=sc.ve_train, seed=0, epochs=1,
                  log=lambda s: None, keep_checkpoint=True)  # as if stopped after epoch 1
    assert len(first["history"]) == 1
    # a second call resumes from the checkpoint and runs only the missing epochs
    summary = train(bb, recipe, sc.train, out, ve=sc.ve_train, seed=0, log=lambda s: None)
    hist = summary["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["itc"] < hist[0]["itc"]
    assert {"itc", "itm", "ve"} <= set(hist[0])
    assert (out / "model.safetensors").is_file()
    assert json.loads((out / "train_summary.json").read_text())["n_ve"] == len(sc.ve_train)


def test_privacy_batches_mix_normal_pairs(tiny_backbone, tiny_world, tmp_path):
    bb = tiny_backbone.copy()
    sc = load_scenario(tiny_world, "privacy")
    recipe = Recipe(epochs=1, lr=1e-3, batch_size=12, warmup_steps=1)
    s = train(bb, recipe, sc.train, tmp_path / "p", mix=[(sc.normal, 4), (sc.qa_train, 3)],
              seed=0, log=lambda s: None)
    assert s["n_mix"] == [len(sc.normal), len(sc.qa_train)] and s["history"][0]["itm"] > 0
    for p, q in zip(sc.qa_train, sc.mcq_train):
        assert p.text == q.statement(q.options[q.answer]) and p.group == q.person
