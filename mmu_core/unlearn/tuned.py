"""The settings the tuning protocol chose (docs/benchmark.md), read as each method's
defaults by `forget` and the benchmark. They are data, written by `bench tune` beside its
validation table; a method with no tuned settings runs with its own defaults."""

from __future__ import annotations

import json
import math
from pathlib import Path

TUNED = Path(__file__).resolve().parents[2] / "docs" / "results" / "bench" / "tuning" / \
    "settings.json"


def tuned_settings(method: str, scenario: str, n_ids: int, path: str | Path = TUNED,
                   model: str | None = None) -> tuple[dict, str]:
    """(settings, where they come from) for a forget list of `n_ids` entries: those tuned
    at the validated size nearest to it (on a log scale). The committed file was tuned on
    the embedded default: for another `model` (a folder, a hub id) its own defaults."""
    if model and not model.startswith("embedded"):
        return {}, ("the method's own defaults (the tuned settings are the embedded "
                    "default's; `bench tune --data` tunes for other models)")
    path = Path(path)
    if not path.is_file():
        return {}, "the method's own defaults (no tuned settings file)"
    by_size = json.loads(path.read_text())["settings"].get(scenario, {})
    sizes = [int(s) for s, methods in by_size.items() if method in methods]
    if not sizes:
        return {}, f"the method's own defaults (not tuned for {scenario})"
    size = nearest_size(sizes, n_ids)
    return dict(by_size[str(size)][method]), f"tuned on {scenario} validation sets of size {size}"


def nearest_size(sizes, n_ids: int) -> int:
    """The measured size nearest a request of `n_ids` on a log scale (ties: the smaller)."""
    return min(sizes, key=lambda s: (abs(math.log(s) - math.log(max(1, n_ids))), s))
