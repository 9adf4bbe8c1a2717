"""The erasure report: one self-contained HTML file (images inlined, plotly.js embedded
once) recording a forget request: inputs, method and settings, before/after evidence,
the inspection figures, the comparison when there is one, and versions."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mmu_core.data.loaders import open_image
from mmu_core.metrics.provenance import provenance

if TYPE_CHECKING:  # the app builds its pages before torch is imported
    from mmu_core.erasure.forget_request import Outcome

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td.t{text-align:left}img{border:1px solid #ddd;
margin:2px}.pair{display:flex;gap:1em;align-items:center}code{background:#f6f6f6}"""

EVIDENCE = (("match", "ITM match", "{:.3f}"), ("itc", "ITC cosine", "{:.3f}"),
            ("rank", "rank", "{}"), ("member", "membership prob.", "{:.3f}"))


def _img(image, size: int = 128) -> str:
    im = image.copy()
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return (f'<img alt="" width="{im.width}" height="{im.height}" '
            f'src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="t">{html.escape(c)}</td>' if isinstance(c, str) else f"<td>{c}</td>"
        for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def evidence_rows(outcome: Outcome) -> list[list]:
    rows = []
    for b, a in zip(outcome.before.rows, outcome.after.rows):
        row = [b["text"]]
        for key, _, fmt in EVIDENCE:
            row += [fmt.format(b[key]), fmt.format(a[key])]
        rows.append(row)
    return rows


def evidence_header() -> list[str]:
    return ["text"] + [f"{name} {when}" for _, name, _ in EVIDENCE
                       for when in ("before", "after")]


def erasure_report(outcome: Outcome, views=None, comparison: dict | None = None,
                   model_id: str = "embedded", flavour: str = "internal",
                   record: dict | None = None, audit: dict | None = None) -> str:
    """The HTML erasure report (with the audit of `erasure.audit` when there is one).
    `internal`: everything, the forgotten pairs included (for the requester's own records);
    `public`: the model card's content only (`record`, from erasure.export), nothing that
    shows what was forgotten."""
    if flavour == "public":
        if record is None:
            raise ValueError("the public report is the model card: export the model first")
        return public_report(record)
    if flavour != "internal":
        raise ValueError(f"unknown report flavour {flavour!r}: 'internal' or 'public'")
    parts = [f"<h1>Erasure report</h1><p>{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} · "
             f"model <code>{html.escape(model_id)}</code> · scenario "
             f"<code>{outcome.scenario}</code> · method <code>{outcome.method}</code></p>"]
    parts.append("<h2>What was forgotten</h2>")
    if outcome.sequence:
        steps = "".join(f"<li>{len(pairs)} pair(s) with <code>{m}</code></li>"
                        for m, pairs in zip(outcome.methods, outcome.history))
        parts.append(f"<p>{len(outcome.history)} requests, each on top of the one before "
                     f"(the settings, evidence and anchors below are the last one's; the "
                     f"comparison and audit cover every pair):</p><ol>{steps}</ol>")
    for i, pairs in enumerate(outcome.history, 1):
        for p in pairs:
            asked = f" · request {i}" if outcome.sequence else ""
            parts.append(f'<div class="pair">{_img(open_image(p))}<span>{html.escape(p.text)}'
                         f"<br><small>{p.pair_id}{asked}</small></span></div>")
    if outcome.taught:
        parts.append("<p>Uploaded pairs were never in the training data; a copy of the model "
                     "was taught them first (a short fine-tune with retained data), and that "
                     "copy is the 'before' model.</p>")
    settings = outcome.info.get("resolved_settings") or outcome.settings
    parts.append("<h2>Settings (resolved values)</h2>"
                 f"<pre>{html.escape(json.dumps(settings, indent=1))}</pre>"
                 f"<p>Time: {outcome.seconds}</p>")
    if record is not None:
        parts.append(f"<h2>The exported model</h2><p>Weights SHA-256 (safetensors files): "
                     f"<code>{record['weights_sha256']}</code>; base model weights SHA-256: "
                     f"<code>{record['base_model_weights_sha256']}</code></p>")
    parts.append("<h2>Evidence per pair (rank of its own text among "
                 f"{outcome.before.rows[0]['of']} texts as the model retrieves them: ITC "
                 "shortlist re-ranked by ITM, as recall is measured; 1 = best)</h2>")
    parts.append(_table(evidence_header(), evidence_rows(outcome)))
    if outcome.anchors:
        parts.append("<h2>Anchors from MVI (R_1 image, R_2 text)</h2>")
        for a in outcome.anchors[:8]:
            parts.append(f'<div class="pair">{"".join(_img(im, 96) for im in a.images)}'
                         f"<span>{html.escape(' | '.join(a.texts))}</span></div>")
    if comparison:
        parts.append("<h2>Comparison with Retrain</h2>" + comparison_html(comparison))
    plotly_js = True  # embedded once, with the first figure
    if audit:
        from mmu_core.erasure.audit import audit_markdown
        from mmu_core.erasure.figures import audit_figures

        parts.append("<h2>Audit: does the forgetting hold?</h2>")
        for title, fig in audit_figures(audit):
            parts.append(f"<h3>{title}</h3>" + fig.to_html(full_html=False,
                                                           include_plotlyjs=plotly_js))
            plotly_js = False
        parts.append(f"<pre>{html.escape(audit_markdown(audit))}</pre>")
    if views is not None:
        if views.scope:  # Markdown bold -> HTML
            parts.append("<h2>What the figures compare</h2><p>" + re.sub(
                r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(views.scope)) + "</p>")
        figs = [("Matching scores", views.matrix)] + [
            (f"Semantic space ({m})", f) for m, f in views.maps.items()] + [
            ("Per-word matching-score shifts", views.words)]
        if views.probe is not None:
            figs.append(("Modality probe", views.probe))
        for title, fig in figs:
            parts.append(f"<h2>{title}</h2>" + fig.to_html(full_html=False,
                                                           include_plotlyjs=plotly_js))
            plotly_js = False
        if views.cams:
            parts.append("<h2>Grad-CAM on the ITM cross-attention (before | after)</h2>")
            for text, b, a in views.cams:
                parts.append(f'<div class="pair">{_img(b, 192)}{_img(a, 192)}'
                             f"<span>{html.escape(text)}</span></div>")
    prov = provenance({"method": outcome.method, "settings": outcome.settings})
    parts.append(f"<h2>Versions</h2><pre>{html.escape(json.dumps(prov, indent=1))}</pre>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Erasure report"
            f"</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def public_report(record: dict) -> str:
    """The model card as a page: what was done and the weight fingerprint, no content."""
    from mmu_core.erasure.export import model_card

    card = model_card(record)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Erasure report (public)"
            f"</title><style>{CSS}</style></head><body><h1>Erasure report (public)</h1>"
            f"<pre>{html.escape(card)}</pre></body></html>")


def comparison_html(comparison: dict) -> str:
    header = ["metric"] + list(comparison["models"])
    rows = [[metric] + [f"{comparison['models'][m].get(metric, float('nan')):.2f}"
                        for m in comparison["models"]] for metric in comparison["metrics"]]
    return _table(header, rows)
