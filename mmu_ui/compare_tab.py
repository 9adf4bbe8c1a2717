"""Compare tab: original vs unlearned vs retrained for the forget request's pairs, the
metrics with their deltas to Retrain, the committed benchmark tables, the erasure report
(internal or public), and the unlearned model to take home (download, Hub push)."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
import pandas as pd

from mmu_core.erasure import export as take_home
from mmu_core.erasure.report import erasure_report

from mmu_ui.engine import REFERENCE_QUEUE, Engine, gpu, user_errors

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
        "For training pairs it is trained here, once per request and shared with the Audit, "
        "the report and the export: **minutes on a CPU** (the estimate is shown when it "
        "starts); fewer epochs give a rougher reference.")
    with gr.Row():
        epochs = gr.Slider(1, 80, value=80, step=1, label="Retrain epochs (capped at the "
                           "scenario's recipe)")
        run = gr.Button("Retrain and compare", variant="primary", elem_id="compare")
    pairs = gr.Dataframe(headers=COLUMNS, label="The forgetting pairs under each model",
                         interactive=False, wrap=True)
    metrics = gr.Markdown()
    with gr.Row():
        flavour = gr.Radio(["internal", "public"], value="internal", label="Report",
                           info="internal: with the forgotten pairs, for your own records; "
                           "public: the model card only, nothing that shows what was forgotten")
        report_btn = gr.Button("Build the erasure report (HTML)", elem_id="report")
        report = gr.File(label="Erasure report", interactive=False)
    gr.Markdown("**Take the unlearned model home**: a folder that `from_pretrained` loads, "
                "with a model card (what was done, never what was forgotten) and the SHA-256 "
                "of its weights, which `python -m mmu_core verify` recomputes.")
    with gr.Row():
        download_btn = gr.Button("Download the unlearned model (zip)", elem_id="download")
        model_zip = gr.File(label="Unlearned model", interactive=False)
    with gr.Row():
        repo = gr.Textbox(label="Hub repository", placeholder="owner/name")
        token = gr.Textbox(label="Hugging Face token with write access", type="password",
                           info="used for this push only, never stored; empty: the "
                           "server's HF_TOKEN")
        private = gr.Checkbox(value=True, label="private repository")
        push_btn = gr.Button("Push to the Hugging Face Hub", elem_id="push")
    exported = gr.Markdown()
    with gr.Accordion("Committed benchmark tables (paper preset, as measured)", open=False):
        gr.Markdown(benchmark_tables())

    @user_errors
    def compare(k, n_epochs, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        from mmu_ui.reference import shared_retrain

        entry = engine.store.get(k)
        # the request's one Retrain (Audit's, if it started it), unless the slider asks for
        # another epoch count; the page's session owns it (closing the page stops it)
        job = shared_retrain(entry, n_epochs, replace=True, owner=engine.own(request, k))
        progress(0, desc=job.announce())
        cmp = comparison_of(entry, progress)
        rows = []
        for model, ev in cmp["evidence"].items():
            rows += [[model, r["text"], round(r["match"], 3), round(r["itc"], 3), r["rank"],
                      round(r["member"], 3)] for r in ev]
        df = pd.DataFrame(rows, columns=COLUMNS)
        md = (f"Retrain reference: {cmp['retrain']}. Values (|delta| to Retrain):\n\n"
              + cmp["table_md"])
        from mmu_core.erasure.forget_request import Evidence, verdict_caveat

        # where Retrain's own ranks / membership read "not forgotten" too, say so
        caveat = verdict_caveat(Evidence(cmp["evidence"]["unlearned"]),
                                Evidence(cmp["evidence"]["retrained"]))
        md += f"\n\n{caveat}" if caveat else ""
        return df, md

    def comparison_of(entry, progress=None):
        """The comparison with the request's Retrain, computed once per Retrain model."""
        retrained, how = entry["reference"].wait(progress)
        if entry.get("comparison") is None or entry["comparison"]["retrain"] != how:
            from mmu_core.erasure import forget_request

            if progress is not None:
                progress(0.9, desc="evaluating the three models")
            cmp = gpu(forget_request.comparison)(entry["outcome"], retrained)
            cmp["retrain"] = how
            entry["comparison"] = cmp
            entry["version"] = entry.get("version", 0) + 1  # the export is made again
        return entry["comparison"]

    def finished_comparison(entry):
        """For the report and the export: the comparison when Retrain is there (whichever
        tab started it), else None (they do not wait minutes for it)."""
        job = entry.get("reference")
        if job is not None and job.done and job.error is None:
            return comparison_of(entry)
        return entry.get("comparison")

    def export_of(k):
        """The visitor's result exported once (again after a comparison or audit adds to it)."""
        entry = engine.store.get(k)
        finished_comparison(entry)
        # exported again when a comparison or an audit has been added since
        has = entry.get("version", 0)
        if entry.get("export") is None or entry["export"][2] != has:
            folder = os.path.join(engine.files, f"unlearned-model-{k[:8]}")
            record, internal = take_home.export_outcome(
                entry["outcome"], folder, entry["model_id"] or engine.default_model,
                entry.get("comparison"), salt=entry.get("salt"), audit=entry.get("audit"))
            entry["salt"] = internal["request"]["salt"]  # stays on the server, for the report
            entry["export"] = (folder, record, has)
        return entry["export"][:2]

    @user_errors
    def build_report(k, kind):
        entry = engine.store.get(k)
        _, record = export_of(k)
        html = erasure_report(entry["outcome"], entry["views"], entry.get("comparison"),
                              entry["model_id"] or engine.default_model, flavour=kind,
                              record=record, audit=entry.get("audit"))
        path = os.path.join(engine.files, f"erasure-report-{kind}-{k[:8]}.html")
        Path(path).write_text(html, encoding="utf-8")
        return path

    @user_errors
    def download(k):
        folder, record = export_of(k)
        zipped = take_home.archive(folder, folder)
        return str(zipped), f"Weights SHA-256: `{record['weights_sha256']}`"

    @user_errors
    def push(k, repo_id, tok, is_private):
        folder, record = export_of(k)
        url = take_home.push(folder, (repo_id or "").strip(), token=tok or None,
                             private=bool(is_private))
        return (f"Pushed to [{url}]({url}) ({'private' if is_private else 'public'}); "
                f"weights SHA-256 `{record['weights_sha256']}`")

    # the wait for Retrain has the Audit's queue, not the model queue of every visitor
    run.click(compare, [key, epochs], [pairs, metrics], api_name="compare",
              concurrency_id="reference", concurrency_limit=REFERENCE_QUEUE)
    report_btn.click(build_report, [key, flavour], report, api_name="report")
    download_btn.click(download, key, [model_zip, exported], api_name="download")
    push_btn.click(push, [key, repo, token, private], exported, api_name="push")
