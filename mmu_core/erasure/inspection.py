"""The views of what a forget request erased, computed once and shared by the app's
Inspect tab and the erasure report (Figures 1, 7, 8, 10; Tables 5 and 9)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmu_core.data.loaders import open_image
from mmu_core.erasure import analysis
from mmu_core.erasure import figures
from mmu_core.erasure.forget_request import Outcome
from mmu_core.erasure.gradcam import itm_gradcam
from mmu_core.metrics.word_shifts import word_shifts

MAP_REMAINING = 150  # remaining pairs drawn in the semantic maps
MAX_CAMS = 4  # forgetting pairs shown with Grad-CAM


@dataclass
class Views:
    matrix: object  # plotly figures ...
    maps: dict = field(default_factory=dict)  # projection name -> figure
    words: object = None
    word_table: dict = field(default_factory=dict)
    probe: object = None
    probe_table: dict | None = None
    cams: list = field(default_factory=list)  # (text, before PIL, after PIL)
    scope: str = ""  # what "before" and "after" are, in words (`scope_text`)


def scope_text(outcome: Outcome, whole: bool = False) -> str:
    """What the views compare. One request: its before and after; in a sequence that is the
    previous request's result, unless `whole` reads the sequence as one request."""
    n = len(outcome.forgotten if whole else outcome.forget)
    taught = " (taught this request's uploads first)" if outcome.taught else ""
    if not outcome.sequence:
        return (f"These views compare the model before the request{taught} with its result, "
                f"on the request's {n} pair(s).")
    k = len(outcome.history)
    if whole:
        return (f"**The whole sequence of {k} requests.** These views compare the model "
                f"before the first request with the latest result, on all {n} pair(s) "
                "forgotten so far (uploads taught after the first request had not been "
                "learned by that model).")
    return (f"**Request {k} of a sequence.** These views compare request {k - 1}'s result"
            f"{taught} with request {k}'s, on request {k}'s {n} pair(s) only. Compare & "
            "report and Audit measure the whole sequence against the model before the "
            "first request.")


def grad_cams(outcome: Outcome, layer: int = 0) -> list:
    out = []
    for p in outcome.forget[:MAX_CAMS]:
        image = open_image(p)
        out.append((p.text,
                    figures.overlay(image, itm_gradcam(outcome.original, image, p.text, layer)),
                    figures.overlay(image, itm_gradcam(outcome.unlearned, image, p.text, layer))))
    return out


def semantic_map(outcome: Outcome, method: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    f_ids = {p.pair_id for p in outcome.forget}
    pool = [p for p in outcome.scenario_data.train if p.pair_id not in f_ids]
    remain = [pool[i] for i in sorted(rng.choice(len(pool), min(MAP_REMAINING, len(pool)),
                                                 replace=False))]
    return figures.semantic_maps(
        analysis.semantic_map(outcome.original, outcome.forget, remain, method, seed),
        analysis.semantic_map(outcome.unlearned, outcome.forget, remain, method, seed))


def build_views(outcome: Outcome, captioner=None, painter=None,
                projections=("tsne", "umap"), neighbours: int = 6,
                whole: bool = False) -> Views:
    """The views of one request, or with `whole` of a sequence read as one request."""
    scope = scope_text(outcome, whole)
    if whole and outcome.sequence:
        outcome = outcome.whole_sequence()
    forget = outcome.forget[:8]
    context = analysis.neighbours(outcome.original, forget, outcome.scenario_data.train,
                                  neighbours)
    shown = forget + context
    matrix = figures.matching_heatmaps(
        analysis.matching_matrix(outcome.original, shown),
        analysis.matching_matrix(outcome.unlearned, shown),
        [p.text for p in shown], [i < len(forget) for i in range(len(shown))])
    shifts = word_shifts(outcome.original, outcome.unlearned, outcome.forget, top=10,
                         min_count=1)
    views = Views(matrix, {m: semantic_map(outcome, m) for m in projections},
                  figures.word_shift_bars(shifts), shifts, cams=grad_cams(outcome),
                  scope=scope)
    if outcome.mvi is not None and captioner is not None:
        views.probe_table = analysis.modality_probe(outcome.mvi, captioner, painter, shown)
        views.probe = figures.probe_bars(views.probe_table)
    return views
