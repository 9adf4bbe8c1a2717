import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mmu_core.__main__ import build_parser

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


# The command surface, in process and without running anything: every command's --help,
# and every command line the README and docs/results.md show parses.


def _commands(parser=None, words=()):
    """Every command path (words after `python -m mmu_core`), the top level first."""
    parser = parser or build_parser()
    yield words
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*words, name))


COMMANDS = list(_commands())


def test_the_command_surface_is_all_there():
    top = {c[0] for c in COMMANDS if len(c) == 1}
    assert top == {"data", "train", "evaluate", "compare", "train-generators", "anchors",
                   "forget", "audit", "export", "verify", "bench", "table"}
    bench = {c[1] for c in COMMANDS if len(c) == 2 and c[0] == "bench"}
    assert bench == {"tune", "confirm", "mvi", "unlearning", "app", "audit", "sequence", "generation",
                     "device", "cost"}


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "(top)")
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*words, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m mmu_core" + "".join(f" {w}" for w in words))


def test_a_registered_bench_command_joins_bench(monkeypatch):
    from mmu_core.cli import bench

    def add_echo(sub):
        p = sub.add_parser("echo", help="a test's own sub-command")
        p.add_argument("--n", type=int, default=1)
        p.set_defaults(func=lambda a: a.n)

    monkeypatch.setattr(bench, "BENCH_COMMANDS", list(bench.BENCH_COMMANDS))
    bench.bench_command(add_echo)
    args = build_parser().parse_args(["bench", "echo", "--n", "3"])
    assert args.func(args) == 3


def test_main_dispatches_to_the_handler_and_turns_bad_input_into_exit_2(tmp_path, capsys):
    from mmu_core.__main__ import main

    assert main(["data", "generate", "--out", str(tmp_path / "w"), "--size", "tiny"]) == 0
    assert (tmp_path / "w" / "world.json").is_file()
    assert main(["evaluate", "--data", str(tmp_path / "w"), "--scenario", "privacy",
                 "--forget", str(tmp_path / "none.txt")]) == 2
    assert "none.txt" in capsys.readouterr().err


def _documented_command_lines(text: str) -> list[str]:
    """`python -m mmu_core ...` lines in ```bash blocks (continuations joined, comments
    dropped) and in inline code, which may wrap across lines."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("python -m mmu_core"):
                lines.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [" ".join(m.split()) for m in re.findall(r"`(python -m\s+mmu_core\s+[^`]+)`", prose)]
    return lines


DOCUMENTED = [(doc, line) for doc in ("README.md", "docs/results.md")
              for line in _documented_command_lines((ROOT / doc).read_text())]


def test_the_docs_show_commands():
    assert sum(doc == "README.md" for doc, _ in DOCUMENTED) >= 8


@pytest.mark.parametrize("doc,line", DOCUMENTED, ids=[f"{d}:{i}" for i, (d, _) in
                                                      enumerate(DOCUMENTED)])
def test_documented_command_lines_parse(doc, line):
    argv = shlex.split(line, comments=True)[3:]  # after `python -m mmu_core`
    try:
        build_parser().parse_args(argv)
    except SystemExit as err:
        raise AssertionError(f"{doc}: `{line}` does not parse") from err
