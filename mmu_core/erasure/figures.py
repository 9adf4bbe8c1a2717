"""Drawing what `analysis`, `gradcam` and `word_shifts` compute: plotly figures and
image overlays. Nothing here runs a model."""

from __future__ import annotations

import textwrap

import numpy as np
import plotly.graph_objects as go
from matplotlib import colormaps
from PIL import Image
from plotly.subplots import make_subplots

BEFORE_AFTER = ("before", "after")


def _short(text: str, width: int = 28) -> str:
    return textwrap.shorten(text, width, placeholder="…")


def matching_heatmaps(before: np.ndarray, after: np.ndarray, labels: list[str],
                      forgetting: list[bool]) -> go.Figure:
    """Image x text ITM match probability before and after, forgetting pairs starred."""
    names = [("★ " if f else "") + _short(t) for t, f in zip(labels, forgetting)]
    fig = make_subplots(1, 2, subplot_titles=BEFORE_AFTER, horizontal_spacing=0.04)
    for col, m in enumerate((before, after), start=1):
        fig.add_trace(go.Heatmap(
            z=m, x=list(range(len(names))), y=list(range(len(names))), zmin=0, zmax=1,
            colorscale="Viridis", showscale=col == 2,
            texttemplate="%{z:.2f}", textfont=dict(size=12), customdata=[
                [[names[r], names[c]] for c in range(len(names))] for r in range(len(names))],
            hovertemplate="image: %{customdata[0]}<br>text: %{customdata[1]}"
                          "<br>match %{z:.3f}<extra></extra>"), 1, col)
    ticks = dict(tickmode="array", tickvals=list(range(len(names))), ticktext=names)
    fig.update_xaxes(title_text="text", tickangle=45, **ticks)
    fig.update_yaxes(title_text="image", autorange="reversed", **ticks)
    fig.update_yaxes(showticklabels=False, title_text="", row=1, col=2)  # same rows as left
    fig.update_layout(height=420 + 12 * len(names), margin=dict(t=40, b=10),
                      title="ITM match probability (★ = forgetting pair)")
    return fig


def semantic_maps(before: dict, after: dict) -> go.Figure:
    """2-D semantic space before and after: forgetting vs remaining, image vs text."""
    fig = make_subplots(1, 2, subplot_titles=[f"{BEFORE_AFTER[i]} ({m['method']})"
                                              for i, m in enumerate((before, after))])
    styles = {(True, "image"): ("forgetting image", "#d62728", "star"),
              (True, "text"): ("forgetting text", "#ff7f0e", "star-triangle-up"),
              (False, "image"): ("remaining image", "#1f77b4", "circle"),
              (False, "text"): ("remaining text", "#17becf", "triangle-up")}
    for col, m in enumerate((before, after), start=1):
        for (forg, modality), (name, color, symbol) in styles.items():
            idx = [i for i, (f, mod) in enumerate(zip(m["forgetting"], m["modality"]))
                   if f == forg and mod == modality]
            if not idx:
                continue
            fig.add_trace(go.Scatter(
                x=m["xy"][idx, 0], y=m["xy"][idx, 1], mode="markers", name=name,
                legendgroup=name, showlegend=col == 1,
                marker=dict(color=color, symbol=symbol, size=13 if forg else 6,
                            opacity=1.0 if forg else 0.5),
                text=[_short(m["text"][i], 60) for i in idx],
                hovertemplate="%{text}<extra>" + name + "</extra>"), 1, col)
    fig.update_layout(height=430, margin=dict(t=40, b=10))
    return fig


def word_shift_bars(shifts: dict) -> go.Figure:
    """Table 9 as bars: the largest per-word drops, the words that moved least, and any
    words that rose."""
    panels = [("largest", "largest drops", "#d62728"),
              ("near_zero", f"near zero (|shift| <= {shifts.get('near', 2):g})", "#7f7f7f")]
    if shifts.get("rises"):
        panels.append(("rises", "rises", "#2ca02c"))
    fig = make_subplots(1, len(panels), subplot_titles=[p[1] for p in panels])
    for col, (key, _, colour) in enumerate(panels, start=1):
        rows = shifts[key]
        words = [r[0] for r in rows]
        fig.add_trace(go.Bar(x=[r[1] for r in rows], y=words, orientation="h",
                             showlegend=False, marker_color=colour), 1, col)
        # every word labelled (plotly otherwise thins crowded tick labels)
        fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=words,
                         ticktext=words, row=1, col=col)
    fig.update_xaxes(title_text="shift of match probability (points)")
    n = max([len(shifts[k]) for k, _, _ in panels] + [1])
    fig.update_layout(height=160 + 26 * n, margin=dict(t=40))
    return fig


def probe_bars(probe: dict) -> go.Figure:
    """Table 5: share of each factor theta_M calls "image" / "text"."""
    names = list(probe)
    fig = go.Figure([go.Bar(name=f"labelled {k}", x=names, y=[probe[n][f"A_{k}"] for n in names])
                     for k in ("image", "text")])
    fig.update_layout(barmode="stack", height=320, yaxis_title="% of factors",
                      title="Modality probe theta_M (U' should be told apart, K' should not)")
    return fig


def overlay(image: Image.Image, cam: np.ndarray, size: int = 224,
            strength: float = 0.5) -> Image.Image:
    """A Grad-CAM map drawn over its image (normalised to its own maximum)."""
    base = image.convert("RGB").resize((size, size))
    peak = float(cam.max())
    norm = cam / peak if peak > 0 else np.zeros_like(cam)
    heat = Image.fromarray(np.uint8(255 * norm)).resize((size, size), Image.BILINEAR)
    colour = colormaps["jet"](np.asarray(heat) / 255.0)[..., :3]
    mixed = (1 - strength) * np.asarray(base) / 255.0 + strength * colour
    return Image.fromarray(np.uint8(255 * mixed.clip(0, 1)))


MODEL_COLOURS = {"unlearned": "#1f77b4", "retrain": "#2ca02c", "original": "#7f7f7f"}


def recovery_curves(audit: dict) -> go.Figure:
    """R@D_f and MI of the unlearned model (and Retrain, once it exists) after k relearning
    steps (benign: D_r only; targeted: part of D_f), with the original's level dotted, from
    `erasure.audit`."""
    modes = [m for m in ("benign", "targeted") if m in audit["relearn"]]
    fig = make_subplots(2, len(modes), shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[f"{m}: {k}" for k in ("R@D_f", "MI") for m in modes])
    for col, mode in enumerate(modes, start=1):
        for row, key in enumerate(("R@D_f", "MI"), start=1):
            for name, curve in audit["relearn"][mode].items():
                fig.add_trace(go.Scatter(
                    x=[c["step"] for c in curve], y=[c[key] for c in curve], name=name,
                    mode="lines+markers", line_color=MODEL_COLOURS[name],
                    showlegend=row == 1 and col == 1), row, col)
            level = audit.get("recovery", {}).get(mode, {}).get("original")
            if level is not None:
                fig.add_hline(y=level[key], line_dash="dot", line_color=MODEL_COLOURS["original"],
                              annotation_text="original", row=row, col=col)
    fig.update_xaxes(title_text="relearning steps", row=2)
    against = "the original" if audit.get("reference_free") else "Retrain"
    fig.update_layout(height=520, margin=dict(t=50),
                      title=f"Does it come back? Relearning, unlearned vs {against}")
    return fig


def attack_bars(audit: dict) -> go.Figure:
    """Per forgetting pair: its percentile among never-trained pairs under the calibrated
    loss attack (50 = looks unseen), for original, unlearned and Retrain (once it exists)."""
    from mmu_core.erasure.audit import audited_models

    pairs = audit["per_pair"]["pairs"]
    fig = go.Figure([go.Bar(name=f"{m} (AUC {audit['per_pair'][m]['calibrated']['auc']:.2f})",
                            x=pairs, y=audit["per_pair"][m]["calibrated"]["per_pair"],
                            marker_color=MODEL_COLOURS[m])
                     for m in audited_models(audit)])
    fig.add_hline(y=50, line_dash="dot", annotation_text="looks unseen")
    fig.update_layout(barmode="group", height=360, yaxis_title="percentile among unseen pairs",
                      yaxis_range=[0, 100],
                      title="Per-pair membership (loss relative to the pretrained model)")
    return fig


def cka_bars(audit: dict) -> go.Figure:
    """Linear CKA per layer of the unlearned model against Retrain (once it exists) and
    against the original, on D_f and on D_r."""
    sets = list(audit["cka"])
    fig = make_subplots(1, len(sets), shared_yaxes=True, subplot_titles=[f"on {s}" for s in sets])
    for col, s in enumerate(sets, start=1):
        for key, colour in (("unlearned_vs_retrain", MODEL_COLOURS["retrain"]),
                            ("unlearned_vs_original", MODEL_COLOURS["original"])):
            if key not in audit["cka"][s]:
                continue
            layers = list(audit["cka"][s][key])
            fig.add_trace(go.Bar(name=key.replace("_", " "), x=layers,
                                 y=list(audit["cka"][s][key].values()), marker_color=colour,
                                 showlegend=col == 1), 1, col)
    fig.update_yaxes(range=[0, 1.05], title_text="linear CKA", col=1)
    fig.update_layout(barmode="group", height=380, title="Representations, layer by layer")
    return fig


def audit_figures(audit: dict) -> list[tuple[str, go.Figure]]:
    return [("Relearning", recovery_curves(audit)), ("Per-pair attacks", attack_bars(audit)),
            ("Representations (CKA)", cka_bars(audit))]
