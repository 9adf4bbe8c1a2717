"""Compare tab: original vs unlearned vs retrained for the forget request's pairs, the
metrics with their deltas to Retrain, the committed benchmark tables, and the erasure
report."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
import pandas as pd

from mmu_core.erasure import forget_request
from mmu_core.erasure.report import erasure_report

from mmu_ui.engine import Engine, gpu, user_errors

BENCH = Path(__file__).resolve().parent.parent / "docs" / "results" / "bench"
TABLES = BENCH / "paper" / "tables.md"  # the paper preset under docs/benchmark.md's protocol
EARLIER = BENCH / "paper-v1" / "tables.md"  # before the protocol: not a fair comparison

COLUMNS = ["model", "text", "ITM match", "ITC cosine", "rank", "membership prob."]


def benchmark_tables() -> str:
    if TABLES.is_file():
        return TABLES.read_text()
    if EARLIER.is_file():
        return ("**Not yet re-run under the tuning protocol (docs/benchmark.md).** Below: the "
                "earlier tables, where every baseline kept its first settings and ours' were "
                "chosen on a reported cell. They are not a fair comparison.\n\n"
                + EARLIER.read_text())
    return "The benchmark tables are not in this copy of the project."


def create_compare_tab(engine: Engine, key: gr.State):
    gr.Markdown(
        "Retrain is the gold standard: the original recipe on the retained data only. For "
        "uploaded pairs that were taught first, the model before teaching already is it. "
        "For training pairs it is trained here: **minutes on a CPU** (privacy recipe 80 "
        "epochs ≈ 7-8 min; copyright 15 epochs ≈ 8 min); fewer epochs give a rougher "
        "reference.")
    with gr.Row():
        epochs = gr.Slider(1, 80, value=80, step=1, label="Retrain epochs (capped at the "
                           "scenario's recipe)")
        run = gr.Button("Retrain and compare", variant="primary", elem_id="compare")
    pairs = gr.Dataframe(headers=COLUMNS, label="The forgetting pairs under each model",
                         interactive=False, wrap=True)
    metrics = gr.Markdown()
    with gr.Row():
        report_btn = gr.Button("Build the erasure report (HTML)", elem_id="report")
        report = gr.File(label="Erasure report", interactive=False)
    with gr.Accordion("Committed benchmark tables (paper preset, as measured)", open=False):
        gr.Markdown(benchmark_tables())

    @gpu
    @user_errors
    def compare(k, n_epochs, progress=gr.Progress(track_tqdm=True)):
        entry = engine.store.get(k)
        out = entry["outcome"]
        from mmu_core.training.recipes import RECIPES

        n_epochs = min(int(n_epochs), RECIPES[out.scenario].epochs)
        progress(0, desc="Retrain")
        retrained, how = forget_request.retrain_reference(out, epochs=n_epochs)
        progress(0.5, desc="evaluating the three models")
        cmp = forget_request.comparison(out, retrained)
        cmp["retrain"] = how.get("how")
        entry["comparison"] = cmp
        rows = []
        for model, ev in cmp["evidence"].items():
            rows += [[model, r["text"], round(r["match"], 3), round(r["itc"], 3), r["rank"],
                      round(r["member"], 3)] for r in ev]
        df = pd.DataFrame(rows, columns=COLUMNS)
        md = (f"Retrain reference: {cmp['retrain']}. Values (|delta| to Retrain):\n\n"
              + cmp["table_md"])
        return df, md

    @user_errors
    def build_report(k):
        entry = engine.store.get(k)
        html = erasure_report(entry["outcome"], entry["views"], entry["comparison"],
                              entry["model_id"] or engine.default_model)
        path = os.path.join(engine.files, f"erasure-report-{k[:8]}.html")
        Path(path).write_text(html, encoding="utf-8")
        return path

    run.click(compare, [key, epochs], [pairs, metrics], api_name="compare",
              concurrency_id="model")
    report_btn.click(build_report, key, report, api_name="report")
