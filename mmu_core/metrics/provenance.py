"""What every results file records: config, seeds, package versions and git revision."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "transformers", "diffusers", "datasets", "scikit-learn", "numpy",
            "pillow", "gradio")


def git_revision() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout
        return (rev or "unknown") + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> str:
    """CPU architecture and cores, and the GPU when torch sees one (timings depend on it)."""
    text = f"{platform.machine()}, {os.cpu_count()} cpu"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name()}"
    except ImportError:
        pass
    return text


def provenance(config: dict | None = None) -> dict:
    return {"config": {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in (config or {}).items() if k != "func"},
            "versions": versions(), "git": git_revision(),
            "machine": machine(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
