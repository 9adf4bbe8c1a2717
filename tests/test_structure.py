import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_engine_never_imports_gradio():
    code = ("import sys, mmu_core.backbone, mmu_core.evaluate, mmu_core.train, mmu_core.cli,"
            " mmu_core.scoring; print('gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_assets_stay_under_budget():
    total = sum(p.stat().st_size for p in (ROOT / "assets").rglob("*") if p.is_file())
    assert 0 < total < 40 * 1024 * 1024


def test_requirements_pin_cpu_torch_and_avoid_torchvision():
    req = (ROOT / "requirements.txt").read_text().lower()
    assert "torch==2.13.0" in req and "torchvision" not in req
