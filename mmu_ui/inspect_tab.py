"""Inspect tab: what the last forget request erased and what it kept (matching-score
matrices, Grad-CAM, semantic maps, per-word shifts, modality probe)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from mmu_ui.engine import Engine, gpu, user_errors


def create_inspect_tab(engine: Engine, key: gr.State):
    gr.Markdown("Run a forget request first; then show what changed around its pairs.")
    with gr.Row():
        show = gr.Button("Show what was erased", variant="primary", elem_id="inspect")
        whole = gr.Checkbox(False, label="Whole sequence (after Forget more: every pair "
                            "forgotten so far, against the model before the first request)",
                            elem_id="inspect-whole")
    scope = gr.Markdown(elem_id="inspect-scope")
    matrix = gr.Plot(label="Matching scores before / after", elem_id="matrix")
    cams = gr.Gallery(label="Grad-CAM on the ITM cross-attention (each pair: before, after)",
                      columns=8, height=200, object_fit="contain", fit_columns=False,
                      allow_preview=True)
    with gr.Row():
        tsne = gr.Plot(label="Semantic space, t-SNE")
        umap = gr.Plot(label="Semantic space, UMAP")
    words = gr.Plot(label="Per-word matching-score shifts (Table 9)")
    word_table = gr.Dataframe(headers=["kind", "word", "shift", "pairs"],
                              label="Per-word shifts (percentage points)", interactive=False)
    probe = gr.Plot(label="Modality probe (Table 5)")
    probe_note = gr.Markdown()

    @gpu
    @user_errors
    def inspect(k, whole=False, progress=gr.Progress(track_tqdm=True)):
        from mmu_core.erasure.inspection import build_views

        entry = engine.store.get(k)
        progress(0.1, desc="computing views")
        gens = engine.generators() if entry["outcome"].mvi is not None else (None, None)
        views = build_views(entry["outcome"], *gens, whole=bool(whole))
        entry["views"] = views
        gallery = [(im, f"{when}: {text}") for text, b, a in views.cams
                   for when, im in (("before", b), ("after", a))]
        table = pd.DataFrame(
            [["largest drop", w, s, n] for w, s, n in views.word_table["largest"]]
            + [["near zero", w, s, n] for w, s, n in views.word_table["near_zero"]]
            + [["rise", w, s, n] for w, s, n in views.word_table.get("rises", [])],
            columns=["kind", "word", "shift", "pairs"])
        note = ("The probe needs MVI: only `ours` builds it." if views.probe is None else
                "theta_M should tell U'_1 from U'_2 (modality-specific) and not K'_1 from "
                "K'_2 (modality-consistent).")
        return (views.matrix, gallery, views.maps["tsne"], views.maps["umap"], views.words,
                table, views.probe, note, views.scope)

    show.click(inspect, [key, whole],
               [matrix, cams, tsne, umap, words, word_table, probe, probe_note, scope],
               api_name="inspect", concurrency_id="model")
