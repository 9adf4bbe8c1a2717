import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args, ok=True):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "mmu_core", *map(str, args)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_generate_train_evaluate_compare_end_to_end(tmp_path):
    w = tmp_path / "world"
    run("data", "generate", "--out", w, "--seed", "3", "--size", "tiny")
    assert (w / "world.json").is_file()
    run("train", "--recipe", "pretrain", "--data", w, "--out", tmp_path / "pre", "--epochs", "1")
    forget = w / "Df" / "flickr30k" / "5" / "image-0.txt"
    run("train", "--recipe", "copyright", "--data", w, "--init", tmp_path / "pre",
        "--out", tmp_path / "orig", "--epochs", "1")
    run("train", "--recipe", "copyright", "--data", w, "--init", tmp_path / "pre",
        "--out", tmp_path / "retrain", "--epochs", "1", "--exclude", forget)
    orig = json.loads((tmp_path / "orig" / "train_summary.json").read_text())
    retr = json.loads((tmp_path / "retrain" / "train_summary.json").read_text())
    assert retr["n_pairs"] == orig["n_pairs"] - 5 * 5  # five images (one work), five captions each
    assert retr["provenance"]["versions"]["torch"]
    for name in ("orig", "retrain"):
        run("evaluate", "--model", tmp_path / name, "--data", w, "--scenario", "copyright",
            "--forget", forget, "--out", tmp_path / f"{name}.json")
    res = json.loads((tmp_path / "orig.json").read_text())
    assert {"MI", "R@D_f", "R@D_test", "A@D_f", "A@D_test"} <= set(res["headline"])
    assert res["provenance"]["git"]
    out = run("compare", "--result", tmp_path / "orig.json", "--retrain", tmp_path / "retrain.json")
    c = json.loads(out.stdout)
    assert c["M_eff"] == 100 - c["retrieval"]["delta"]["MI"]


def test_bad_input_exits_with_a_message(tmp_path, tiny_world):
    out = run("evaluate", "--model", "embedded:nope", "--data", tiny_world, "--scenario",
              "privacy", "--forget", tmp_path / "none.txt", ok=False)
    assert out.returncode == 2 and "unknown embedded model" in out.stderr
    out = run("evaluate", "--model", "embedded", "--data", tiny_world, "--scenario", "privacy",
              "--forget", tmp_path / "none.txt", ok=False)
    assert out.returncode == 2 and "none.txt" in out.stderr and "Traceback" not in out.stderr
    out = run("data", "generate", "--out", tmp_path / "x", "--size", "huge", ok=False)
    assert out.returncode == 2 and "invalid choice" in out.stderr
