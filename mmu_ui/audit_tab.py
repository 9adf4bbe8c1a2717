"""Audit tab: does the forgetting hold? Relearning curves, int8 quantisation, per-pair
attacks and CKA of the visitor's result against Retrain (erasure.audit)."""

from __future__ import annotations

import threading

import gradio as gr

from mmu_ui.engine import REFERENCE_QUEUE, Engine, gpu, user_errors


def create_audit_tab(engine: Engine, key: gr.State):
    gr.Markdown(
        "Forgotten knowledge can come back: after a few steps of ordinary fine-tuning, after "
        "quantisation, or under an attack that looks at each pair. The first answer (under "
        "a minute on a CPU) needs no Retrain: it stands on the original model and on pairs "
        "the model never saw. The gaps to Retrain follow once Retrain is trained, in the "
        "background (minutes on a CPU), once per request: Compare, the report and the "
        "export share it. Both go into the erasure report.")
    with gr.Row():
        steps = gr.Dropdown(["0,5,20", "0,5,20,50"], value="0,5,20",
                            label="Relearning steps k", allow_custom_value=False)
        epochs = gr.Slider(1, 80, value=80, step=1, label="Retrain epochs, if no Retrain is "
                           "there yet (capped at the scenario's recipe)")
        run = gr.Button("Audit this result", variant="primary", elem_id="audit")
    summary = gr.Markdown(elem_id="audit-summary")
    curves = gr.Plot(label="Relearning: R@D_f and MI after k steps")
    attacks = gr.Plot(label="Per-pair membership")
    cka = gr.Plot(label="Linear CKA per layer (debiased)")
    with gr.Accordion("All audit tables", open=False):
        tables = gr.Markdown()

    @gpu
    def measure(k, ks, retrained, progress):
        from mmu_core.erasure.audit import AuditConfig, audit

        entry = engine.store.get(k)
        out = entry["outcome"]
        config = AuditConfig(relearn_steps=tuple(int(s) for s in ks.split(",")))
        # D_f: every pair forgotten so far (requests made one after another included);
        # original: the model that saw them all (taught copy included), as in Compare. The
        # cache keeps the first answer's measurements for the one with Retrain; the lock
        # keeps a second click from measuring into it at the same time.
        with entry.setdefault("audit_lock", threading.Lock()):
            result = audit(out.unlearned, out.origin or out.original, retrained,
                           engine.model(out.scenario, "embedded:pretrained"), out.all_data(),
                           out.forgotten_ids, config, progress=lambda label: progress(
                               0.5, desc=f"auditing: {label}"),
                           cache=entry.setdefault("audit_cache", {}))
            entry["audit"] = result
            entry["version"] = entry.get("version", 0) + 1  # the export is made again
        return result

    def shown(result, text, caveat=""):
        from mmu_core.erasure.audit import audit_markdown, cannot_tell_notes
        from mmu_core.erasure.figures import attack_bars, cka_bars, recovery_curves

        auc = result["per_pair"]
        sep = result.get("separation", {}).get("per_pair", {}).get("calibrated", {})
        if not sep.get("auc", {}).get("cannot_tell"):  # else a note says why it is no verdict
            text += (" Calibrated per-pair attack AUC (0.5 = looks unseen): " + ", ".join(
                f"{m} {auc[m]['calibrated']['auc']:.2f}" for m in ("unlearned", "retrain",
                                                                      "original") if m in auc)
                + ".")
        notes = cannot_tell_notes(result) + ([caveat] if caveat else [])
        if notes:
            text += ("\n\n**What this audit cannot tell for this request**\n\n"
                     + "\n".join(f"- {n}" for n in notes))
        return (text, recovery_curves(result), attack_bars(result), cka_bars(result),
                audit_markdown(result))

    @user_errors
    def first_audit(k, ks, n_epochs, request: gr.Request,
                    progress=gr.Progress(track_tqdm=True)):
        from mmu_ui.reference import shared_retrain

        # queued now, if not yet; the page's session owns it (closing the page stops it)
        job = shared_retrain(engine.store.get(k), n_epochs, owner=engine.own(request, k))
        if job.done and job.error is None:
            return retrain_audit(k, ks, n_epochs, request, progress)
        result = measure(k, ks, None, progress)
        share = result["recovery"]["benign"]["share"][-1]
        came = ("unlearning had removed nothing from R@D_f" if share["R@D_f"] is None else
                f"{share['R@D_f']:.0%} of the R@D_f that unlearning removed came back (0% = "
                f"none, 100% = back to the original; fine-tuning on D_r can raise it for a "
                f"model that never saw D_f too, which Retrain's curve will show)")
        text = (f"**Reference-free audit in {result['seconds']:.0f} s** (against the "
                f"original and never-seen pairs; no Retrain yet). After {share['step']} "
                f"steps of benign relearning, {came}. {job.announce()} The gaps to Retrain "
                f"follow here when it is done.")
        return shown(result, text)

    @user_errors
    def retrain_audit(k, ks, n_epochs, request: gr.Request,
                      progress=gr.Progress(track_tqdm=True)):
        from mmu_ui.reference import shared_retrain

        retrained, how = shared_retrain(engine.store.get(k), n_epochs,
                                        owner=engine.own(request, k)).wait(progress)
        progress(0.5, desc="auditing against Retrain")
        result = measure(k, ks, retrained, progress)
        result["retrain"] = how
        # taught uploads: Retrain is the model before teaching, so the Forget tab's verdict
        # can be checked against it at once
        from mmu_core.erasure.forget_request import upload_verdict_caveat

        caveat = upload_verdict_caveat(engine.store.get(k)["outcome"])
        last = result["relearn"]["gap"]["benign"][-1]
        text = (f"**Audited against Retrain** ({how}; the audit's measurements took "
                f"{result['seconds']:.0f} s). After {last['step']} steps of benign "
                f"relearning, R@D_f is {last['R@D_f']:+.1f} points and the membership probability "
                f"{last['MI']:+.1f} points from Retrain's under the same fine-tuning (0 = as "
                f"if never trained on them).")
        return shown(result, text, caveat)

    outputs = [summary, curves, attacks, cka, tables]
    # the first answer holds the model queue briefly; the wait for Retrain (and the audit of
    # Retrain after it) runs in its own queue, so other visitors' requests go on meanwhile;
    # a small progress display, so the first answer stays readable while it waits
    run.click(first_audit, [key, steps, epochs], outputs, api_name="audit",
              concurrency_id="model").success(
        retrain_audit, [key, steps, epochs], outputs, api_name="audit_retrain",
        concurrency_id="reference", concurrency_limit=REFERENCE_QUEUE,
        show_progress="minimal")
