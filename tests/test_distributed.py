"""Training through accelerate: a short Retrain in 2 CPU processes (gloo, via torchrun)
against the same Retrain in 1 process, and a 2-process run resumed in 1 process.

Tolerance (stated in docs/distributed.md): per-epoch losses within 1e-4 relative, weights
within 1e-3 absolute, retrieval r_mean within 1 point. In exact arithmetic the runs are
identical (same batches, same hard-negative draws, the same mean loss); what differs is
float summation order across processes.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmu_core.training.distributed import Shard


def test_shards_cover_a_batch_once_with_weights_that_average_to_the_mean():
    for n, world in ((32, 2), (7, 3), (5, 1)):
        shards = [Shard(r, world, n) for r in range(world)]
        rows = [i for s in shards for i in range(n)[s.rows]]
        assert rows == list(range(n))
        x = torch.arange(float(n))
        per_process = [x[s.rows].sum() * s.weight for s in shards]
        assert torch.isclose(torch.stack(per_process).mean(), x.mean())


def _train(world_dir, out, processes, *extra):
    cmd = ["-m", "mmu_core", "train", "--recipe", "copyright", "--data", str(world_dir),
           "--exclude", str(world_dir / "Df" / "flickr30k" / "5" / "image-0.txt"),
           "--out", str(out), "--epochs", "2", "--threads", "1", "--cpu", *extra]
    if processes > 1:
        cmd = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_port", "29517"] + cmd
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _summary(out):
    return json.loads((out / "train_summary.json").read_text())


def _weights(out):
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def _close(a, b):
    for ea, eb in zip(a["history"], b["history"]):
        for k in ("itc", "itm", "ve"):
            assert ea[k] == pytest.approx(eb[k], rel=1e-4), (k, ea, eb)
    wa, wb = _weights(a["_out"]), _weights(b["_out"])
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-3


def test_two_process_retrain_matches_one_process(tiny_world, tmp_path):
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.metrics.evaluate import retrieval
    from mmu_core.models.backbone import load_backbone

    one, two, split = tmp_path / "one", tmp_path / "two", tmp_path / "split"
    _train(tiny_world, one, 1, "--no-resume")
    _train(tiny_world, two, 2, "--no-resume")
    s1, s2 = {**_summary(one), "_out": one}, {**_summary(two), "_out": two}
    assert (s1["processes"], s2["processes"]) == (1, 2)
    assert s1["n_pairs"] == s2["n_pairs"] < 200  # D_r only: the forget images are out
    assert s1["rows_encoded_this_run"] == s2["rows_encoded_this_run"]  # same data, once
    _close(s1, s2)
    test = load_scenario(tiny_world, "copyright").test
    r1, r2 = (retrieval(load_backbone(str(o)), test)["r_mean"] for o in (one, two))
    assert abs(r1 - r2) <= 1.0
    # a 2-process run stopped after one epoch resumes in 1 process to the same end
    _train(tiny_world, split, 2, "--no-resume", "--stop-after", "1")
    assert not (split / "model.safetensors").exists()
    log = _train(tiny_world, split, 1)
    assert "2 before" in log
    _close(s1, {**_summary(split), "_out": split})
    assert np.isfinite(r1)


def test_gradient_accumulation_steps_the_optimiser_every_k_batches(tiny_world, tmp_path):
    from mmu_core.data.scenarios import load_scenario
    from mmu_core.models.backbone import load_backbone
    from mmu_core.training.recipes import RECIPES, scenario_inputs, train

    sc = load_scenario(tiny_world, "copyright")
    recipe = RECIPES["copyright"]
    pairs, mix, ve = scenario_inputs(sc, recipe)
    bb = load_backbone("embedded:pretrained")
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    s = train(bb, recipe, pairs, tmp_path / "acc", mix=mix, ve=ve, epochs=1, grad_accum=2,
              keep_checkpoint=True, log=lambda *_: None)
    state = torch.load(tmp_path / "acc" / "checkpoint" / "trainer_state.pt", weights_only=False)
    batches = -(-len(pairs) // recipe.batch_size)
    assert s["grad_accum"] == 2 and state["sched"]["last_epoch"] == -(-batches // 2)
    assert any(not torch.equal(before[k], v) for k, v in bb.state_dict().items())
