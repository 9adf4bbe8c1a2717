"""The package layout and its import rules, read from the code itself."""

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "mmu_core"
SUBPACKAGES = sorted(p.name for p in PKG.iterdir() if (p / "__init__.py").is_file())


def _allowed(sub: str) -> set[str]:
    """The subpackages that `sub`'s docstring says it may import."""
    doc = ast.get_docstring(ast.parse((PKG / sub / "__init__.py").read_text())) or ""
    m = re.search(r"^May import: (.*)$", doc, re.M)
    assert m, f"mmu_core/{sub}/__init__.py: the docstring needs a 'May import: ...' line"
    if m.group(1).startswith("nothing"):
        return set()
    return {name.strip(" .") for name in m.group(1).split(",")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports (at module level or inside functions), absolute."""
    tree = ast.parse(path.read_text())
    here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this file's package
                base = here.split(".")[:-node.level]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # "from pkg import module"
    return out


def _subpackage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mmu_core" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in SUBPACKAGES else None


# the command line: a shell over the engine, as the app is (it may import every subpackage,
# none imports it)
SHELLS = ("cli", "__main__.py")


def test_top_level_holds_at_most_eight_entries():
    entries = [p.name for p in PKG.iterdir()
               if p.name not in ("__init__.py", "__pycache__", *SHELLS)]
    assert len(entries) <= 8, entries
    assert all((PKG / e / "__init__.py").is_file() for e in entries), \
        "the top level holds subpackages only"


def test_nothing_in_the_engine_imports_the_command_line():
    engine = [p for p in PKG.rglob("*.py") if p.relative_to(PKG).parts[0] not in SHELLS]
    for path in engine:
        used = {m for m in _imports(path) if m.split(".")[:2] in (["mmu_core", "cli"],
                                                                 ["mmu_core", "__main__"])}
        assert not used, f"{path.relative_to(ROOT)} imports the command line: {sorted(used)}"


@pytest.mark.parametrize("sub", SUBPACKAGES)
def test_subpackage_imports_only_what_its_docstring_allows(sub):
    allowed = _allowed(sub) | {sub}
    assert allowed <= set(SUBPACKAGES), f"{sub} names an unknown subpackage: {allowed}"
    for path in (PKG / sub).rglob("*.py"):
        used = {_subpackage_of(m) for m in _imports(path)} - {None}
        assert used <= allowed, f"{path.relative_to(ROOT)} imports {sorted(used - allowed)}"


def test_declared_layers_have_no_cycle():
    graph = {s: _allowed(s) for s in SUBPACKAGES}
    done, visiting = set(), []

    def visit(s):
        assert s not in visiting, f"import cycle: {' -> '.join(visiting + [s])}"
        if s in done:
            return
        visiting.append(s)
        for t in graph[s]:
            visit(t)
        visiting.pop()
        done.add(s)

    for s in graph:
        visit(s)


def test_engine_never_imports_gradio():
    for path in PKG.rglob("*.py"):
        assert not any(m.split(".")[0] in ("gradio", "gradio_client") for m in _imports(path)), path
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts) for p in PKG.rglob("*.py")
                     if p.name != "__init__.py")
    code = f"import sys, importlib\nfor m in {modules!r}: importlib.import_module(m)\n" \
           "print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "assets").glob("*/README.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_point_at_paths_and_modules_that_exist(doc):
    text = doc.read_text()
    for path in set(re.findall(r"`(mmu_core/[\w/.]*)`", text)):
        assert (ROOT / path).exists(), f"{doc.name} names {path}, which does not exist"
    for dotted in set(re.findall(r"`(mmu_core(?:\.\w+)+)", text)):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
                break
            except ModuleNotFoundError:
                continue
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"{doc.name} names {dotted}, which does not exist"
            obj = getattr(obj, attr)


def test_assets_stay_under_budget():
    total = sum(p.stat().st_size for p in (ROOT / "assets").rglob("*") if p.is_file())
    assert 0 < total < 40 * 1024 * 1024


def test_requirements_pin_cpu_torch_and_avoid_torchvision():
    req = (ROOT / "requirements.txt").read_text().lower()
    assert "torch==2.13.0" in req and "torchvision" not in req


def test_the_slow_tier_names_tests_that_exist():
    """tests/conftest.py marks tests slow by file and name: a renamed test would silently
    join the quick tier."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from conftest import SLOW
    finally:
        sys.path.pop(0)
    for file, names in SLOW.items():
        tree = ast.parse((ROOT / "tests" / file).read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        missing = set(names) - defined - {"*"}
        assert not missing, f"tests/conftest.py SLOW names {file}: {sorted(missing)}, not there"
