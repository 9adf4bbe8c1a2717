"""Audit tab: does the forgetting hold? Relearning curves, int8 quantisation, per-pair
attacks and CKA of the visitor's result against Retrain (erasure.audit)."""

from __future__ import annotations

import gradio as gr

from mmu_ui.engine import Engine, gpu, user_errors


def create_audit_tab(engine: Engine, key: gr.State):
    gr.Markdown(
        "Forgotten knowledge can come back: after a few steps of ordinary fine-tuning, after "
        "quantisation, or under an attack that looks at each pair. This audit checks the "
        "current result against Retrain (the one **Compare** trained, else it trains one "
        "now: minutes on a CPU) and the original. The audit itself takes about a minute on "
        "a CPU; it is added to the erasure report.")
    with gr.Row():
        steps = gr.Dropdown(["0,5,20", "0,5,20,50"], value="0,5,20",
                            label="Relearning steps k", allow_custom_value=False)
        run = gr.Button("Audit this result", variant="primary", elem_id="audit")
    summary = gr.Markdown(elem_id="audit-summary")
    curves = gr.Plot(label="Relearning: R@D_f and MI after k steps")
    attacks = gr.Plot(label="Per-pair membership")
    cka = gr.Plot(label="Linear CKA per layer (debiased)")
    with gr.Accordion("All audit tables", open=False):
        tables = gr.Markdown()

    @gpu
    @user_errors
    def run_audit(k, ks, progress=gr.Progress(track_tqdm=True)):
        from mmu_core.erasure import forget_request
        from mmu_core.erasure.audit import AuditConfig, audit, audit_markdown
        from mmu_core.erasure.figures import attack_bars, cka_bars, recovery_curves

        entry = engine.store.get(k)
        out = entry["outcome"]
        retrained = entry.get("retrained")
        if retrained is None:
            progress(0, desc="Retrain (not run in Compare yet)")
            retrained, how = forget_request.retrain_reference(out)
            entry["retrained"], entry["retrain_how"] = retrained, how["how"]
        progress(0.3, desc="auditing")
        config = AuditConfig(relearn_steps=tuple(int(s) for s in ks.split(",")))
        # D_f: every pair forgotten so far (requests made one after another included);
        # original: the model that saw them all (taught copy included), as in Compare
        result = audit(out.unlearned, out.origin or out.original, retrained,
                       engine.model(out.scenario, "embedded:pretrained"), out.all_data(),
                       out.forgotten_ids, config)
        result["retrain"] = entry.get("retrain_how") or "as Compare made it"
        entry["audit"] = result
        gap = result["relearn"]["gap"]["benign"]
        last = gap[-1]
        text = (f"**Audited in {result['seconds']:.0f} s** against Retrain "
                f"({result['retrain']}). After {last['step']} steps of "
                f"benign relearning, R@D_f is {last['R@D_f']:+.1f} points and the membership "
                f"probability {last['MI']:+.1f} points from Retrain's under the same "
                f"fine-tuning (0 = as if never trained on them). Calibrated per-pair attack "
                f"AUC: unlearned {result['per_pair']['unlearned']['calibrated']['auc']:.2f}, "
                f"Retrain {result['per_pair']['retrain']['calibrated']['auc']:.2f}, original "
                f"{result['per_pair']['original']['calibrated']['auc']:.2f}.")
        return (text, recovery_curves(result), attack_bars(result), cka_bars(result),
                audit_markdown(result))

    run.click(run_audit, [key, steps], [summary, curves, attacks, cka, tables],
              api_name="audit", concurrency_id="model")
