"""Forget tab: pick training pairs or upload one, choose a method, run it, and see the
anchors and the per-pair evidence before and after.

Read top to bottom: the texts a result is told in (`_status` and its parts), the page's
controls (`_Controls`) and results (`_Results`), picking the pairs (`_wire_picking`), one
request end to end (`_run`, no gradio events in it), and the three buttons that make one
(`_wire_forgetting`); `create_forget_tab` only puts them together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr
import pandas as pd

from mmu_core.data.inputs import InputError, read_user_image
from mmu_core.erasure.report import evidence_header, evidence_rows

from mmu_ui.engine import METHODS, Engine, default_method, gpu, model_choices, user_errors

if TYPE_CHECKING:
    from mmu_core.erasure import forget_request


def _choice(p) -> tuple[str, str]:
    return (f"{p.pair_id}: {p.text[:60]}", p.pair_id)


ANCHOR_METHODS = ("ours", "ours-local")  # the methods that build MVI anchors


def _status(out: forget_request.Outcome, model: str | None = None) -> str:
    b, a = out.before, out.after
    taught = " (taught first: it was not in the training data)" if out.taught else ""
    steps = f", {out.info['steps']} editing steps" if "steps" in out.info else ""
    if out.info["forget_scores"]["untouched"]:
        return (f"**`{out.method}` left the {len(out.forget)} pair(s) untouched{taught}**: "
                f"mean match {b.mean('match'):.3f} → {a.mean('match'):.3f}, membership "
                f"probability {b.mean('member'):.3f} → {a.mean('member'):.3f}. Nothing was "
                f"forgotten; try another method or more steps.")
    from mmu_core.erasure.forget_request import verdicts  # loaded by then

    labels = verdicts(a)
    n, done = len(labels), labels.count("forgotten")
    head = ("Forgotten" if done == n else "Not forgotten" if labels.count(
        "not forgotten") == n else "Partly forgotten")
    return (f"**{head}: {done} of {n} pair(s) with `{out.method}`{taught}** in "
            f"{out.seconds['total']:.1f} s{steps}. Mean match {b.mean('match'):.3f} → "
            f"{a.mean('match'):.3f}; membership probability {b.mean('member'):.3f} → "
            f"{a.mean('member'):.3f}; mean rank of the own text {b.mean('rank'):.0f} → "
            f"{a.mean('rank'):.0f} of {b.rows[0]['of']}.{_left(out, labels)}"
            f"{_collateral(out, model)} Open **Inspect** for what changed around them, **Compare** "
            f"for Retrain.{_caveat(out)}")


def _caveat(out: forget_request.Outcome) -> str:
    """Taught uploads: where Retrain (the model before teaching) reads the pairs the same
    way, the verdict cannot tell the two apart (issue 33); "" when there is nothing to say."""
    from mmu_core.erasure.forget_request import upload_verdict_caveat  # loaded by then

    note = upload_verdict_caveat(out) if out.taught else ""
    return f" {note}" if note else ""


def _left(out: forget_request.Outcome, labels: list[str]) -> str:
    """What is not forgotten yet, and the next step to offer."""
    if labels.count("forgotten") == len(labels):
        return ""
    from mmu_core.erasure.forget_request import FORGOTTEN_RANK

    top = sum(r["rank"] <= FORGOTTEN_RANK for r in out.after.rows)
    member = sum(r["member"] >= 0.5 for r in out.after.rows)
    left = [f"{top} still rank their own text in the top {FORGOTTEN_RANK}"
            if top else "", f"{member} still read as members (probability >= 0.5)"
            if member else ""]
    said = " **Not yet forgotten**: " + "; ".join(x for x in left if x) + "."
    b = out.info.get("budget")
    if b and b["restored"]:
        return (f"{said} Going further would move the nearest people's own matches by "
                f"{b['collateral_beyond']:.3f}, over the budget of {b['budget']:.3f}: untick "
                f"\"Keep the nearest people within Retrain's reach\" to go further at "
                f"their cost.")
    return (said + " Next: "
            "**Forget more** with the same pairs continues from this result, or untick the tuned "
            "settings and raise the step slider, or pick another method (MultiDelete keeps "
            "the other pairs best in the benchmark; GA forgets hardest).")


def _collateral(out: forget_request.Outcome, model: str | None = None) -> str:
    """Locality of this request in one figure (metrics/collateral.py) beside what Retrain's
    is measured to be, and where the neighbours' budget took the edit back
    (unlearn/budget.py)."""
    from mmu_core.unlearn.budget import retrain_collateral

    c = out.info.get("collateral", {})
    if not c.get("pairs"):
        return ""
    ref, source = retrain_collateral(out.scenario, len(out.forget), model=model or "embedded")
    said = (f" Collateral: the own matches of the {c['groups']} nearest other people "
            f"(works) moved by {c['mean_abs_itm_change']:.3f} on average (largest "
            f"{c['max_abs_itm_change']:.3f})"
            + (f"; Retrain's move them by {ref:.3f} ({source})." if ref is not None else "."))
    b = out.info.get("budget")
    if b and b["restored"]:
        said += (f" **Stopped at the neighbours' budget** ({b['budget']:.3f}): the full edit "
                 f"moved them by {b['collateral_full']:.3f}, so {b['kept']:.0%} of it was "
                 f"kept.")
    return said


def _settings(meth, scenario, model, n_pairs, tuned, n_steps, n_r) -> tuple[dict, str]:
    """(settings, where they come from) for one request: the protocol's tuned settings for
    the scenario and request size or, unticked, ours' step slider over the method's own
    defaults. N_R1 = N_R2 is not a tuned knob: ours takes the slider's either way."""
    from mmu_core.unlearn.tuned import tuned_settings

    if tuned:
        settings, source = tuned_settings(meth, scenario, n_pairs, model=model or "embedded")
    elif meth in ANCHOR_METHODS:
        settings, source = {"max_steps": int(n_steps)}, "the step slider (ours' own defaults)"
    else:
        settings, source = {}, "the method's own defaults"
    if meth in ANCHOR_METHODS:
        settings.update(n_images=int(n_r), n_texts=int(n_r))
    return settings, source


def _budget(keep, meth, scenario, model, n_pairs) -> tuple[float | None, str]:
    """(the neighbours' budget or None, the sentence that says which)."""
    from mmu_core.unlearn.budget import default_budget

    if meth == "retrain":
        return None, "Retrain is no edit of this model: it has no neighbours' budget."
    if not keep:
        return None, "No neighbours' budget (unticked)."
    budget, source = default_budget(scenario, n_pairs, model=model or "embedded")
    if budget is None:
        return None, f"No neighbours' budget: {source}."
    return budget, f"Neighbours' budget {budget:.3f}: {source}."


def _history(out: forget_request.Outcome) -> str:
    if len(out.history) <= 1:
        return ""
    steps = ", ".join(f"{i}) {len(ids)} pair(s) with `{m}`"
                      for i, (m, ids) in enumerate(zip(out.methods, out.history), 1))
    return (f"\n\n**Requests so far** (each on top of the one before): {steps}; "
            f"{len(out.forgotten_ids)} pairs forgotten in all. Compare, Audit and the report "
            f"cover all of them, against a Retrain that leaves all of them out.")


@dataclass
class _Controls:
    """What a visitor sets: the training data, model and method, the pairs (gallery, ids,
    upload), the settings, and the buttons."""

    scenario: gr.Radio
    model_id: gr.Dropdown
    method: gr.Dropdown
    gallery: gr.Gallery
    chosen: gr.Dropdown
    whole: gr.Button
    upload: gr.File
    preview: gr.Image
    text: gr.Textbox
    seed: gr.Number
    use_tuned: gr.Checkbox
    steps: gr.Slider
    n_anchor: gr.Slider
    budget: gr.Checkbox
    score: gr.Button
    run: gr.Button
    more: gr.Button
    teach: gr.Button  # shown only when an upload must be taught before it can be forgotten

    def request(self, key: gr.State) -> list:
        """The inputs of one forget request, in `_run`'s order."""
        return [self.scenario, self.model_id, self.method, self.chosen, self.upload,
                self.text, self.seed, self.use_tuned, self.steps, self.n_anchor, self.budget,
                key]


def _build_controls() -> _Controls:
    with gr.Row():
        scenario = gr.Radio(["privacy", "copyright"], value="privacy", label="Training data",
                            info="privacy: fictitious people's profiles; copyright: scenes")
        model_id = gr.Dropdown(["embedded"], value="embedded", allow_custom_value=True,
                               label="Model", info="embedded runs on the CPU")
        first, why = default_method()
        method = gr.Dropdown(list(METHODS), value=first, label="Method",
                             info=f"first shown: {first}, {why}. ours = the paper's MVI "
                             f"anchors + contrastive semantic editing")
    gallery = gr.Gallery(label="Training pairs (click to add to the forget set)", columns=8,
                         height=250, allow_preview=False)
    # custom values allowed: any training pair id can be named, not only the gallery's
    chosen = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True,
                         label="Forget set: training pairs")
    whole = gr.Button("Add the rest of their groups (a person's every pair, a work's every "
                      "view)", size="sm", elem_id="whole-groups")
    with gr.Row():
        with gr.Column():
            upload = gr.File(label="…or upload an image (PNG/JPEG, up to 5 MB)",
                             file_types=["image"], type="filepath", height=90,
                             elem_id="upload")
            preview = gr.Image(label="Uploaded image", type="filepath", interactive=False,
                               height=160)
        with gr.Column():
            text = gr.Textbox(label="Text of the uploaded pair", lines=2, max_length=500,
                              elem_id="upload-text",
                              placeholder="e.g. mira solberg is a baker from oslo.")
            with gr.Accordion("Settings", open=False):
                seed = gr.Number(0, precision=0, label="Seed", info="0 reuses the shipped "
                                 "MVI fit; another seed fits MVI anew (~15 s on a CPU)")
                use_tuned = gr.Checkbox(True, label="Tuned settings", info="each method's "
                                        "settings chosen by the benchmark protocol for this "
                                        "scenario and request size (docs/benchmark.md)")
                steps = gr.Slider(10, 240, value=80, step=10,
                                  label="ours: max editing steps (when not tuned)")
                n_anchor = gr.Slider(1, 4, value=1, step=1, label="ours: N_R1 = N_R2")
                budget = gr.Checkbox(True, label="Keep the nearest people within Retrain's "
                                     "reach", info="an edit that moves the 10 nearest other "
                                     "people's own matches by more than Retrain does (+0.05; "
                                     "measured on the confirm lists per size) is taken back "
                                     "toward the original, and the request says so")
            with gr.Row():
                score = gr.Button("Score the uploaded pair", elem_id="score")
                run = gr.Button("Forget", variant="primary", elem_id="forget")
                more = gr.Button("Forget more (on top of this result)", elem_id="forget-more")
            teach = gr.Button("Teach it first, then forget", visible=False, elem_id="teach")
    return _Controls(scenario, model_id, method, gallery, chosen, whole, upload, preview, text,
                     seed, use_tuned, steps, n_anchor, budget, score, run, more, teach)


@dataclass
class _Results:
    """What a request shows: its status, the anchors R_1 / R_2 and the per-pair evidence."""

    status: gr.Markdown
    continuing: gr.State
    anchors_img: gr.Gallery
    anchors_txt: gr.Markdown
    table: gr.Dataframe

    def of_request(self, key: gr.State, teach: gr.Button) -> list:
        """The outputs of one forget request, in the order `_run` returns them."""
        return [key, self.status, teach, self.anchors_img, self.anchors_txt, self.table,
                self.continuing]


def _build_results() -> _Results:
    status = gr.Markdown(elem_id="forget-status")
    # whether the request that asked to teach first was a "Forget more": teaching continues it
    continuing = gr.State(False)
    anchors_img = gr.Gallery(label="R_1: anchor images from MVI", columns=8, height=180,
                             object_fit="contain", fit_columns=False,
                             allow_preview=False)
    anchors_txt = gr.Markdown()
    table = gr.Dataframe(headers=evidence_header(), interactive=False, wrap=True,
                         label="Each forgetting pair before → after (rank of its own text; "
                               "1 = best)")
    return _Results(status, continuing, anchors_img, anchors_txt, table)


def _wire_picking(engine: Engine, ui: _Controls, status: gr.Markdown):
    """The gallery, whole groups, the upload's check and its score; returns the page-load
    handler (the gallery, and GPU models if any, once the engine is ready)."""

    def show_gallery(name):
        return ([(engine.image_file(p), p.text) for p in engine.gallery(name)],
                gr.update(choices=[_choice(p) for p in engine.gallery(name)], value=[]))

    def add_pick(name, current, evt: gr.SelectData):
        pid = engine.gallery(name)[evt.index].pair_id
        return gr.update(value=sorted(set(current or []) | {pid}))

    @user_errors
    def add_whole_groups(name, current):
        sc = engine.scenarios[name]
        ids = sc.whole_groups(current or [])  # an unknown id: DataError, shown on the page
        by_id = {p.pair_id: p for p in sc.train}
        shown = [_choice(p) for p in engine.gallery(name)]
        extra = [_choice(by_id[i]) for i in ids if i not in {c[1] for c in shown}]
        return gr.update(choices=shown + extra, value=ids)

    @user_errors
    def show_upload(path):
        if path is None:
            return None
        read_user_image(path)
        return path

    def on_load(name):  # once the engine is ready: the gallery, and GPU models if any
        return (*show_gallery(name), gr.update(choices=model_choices()))

    @user_errors
    def score(path, txt, name, model):
        from mmu_core.metrics.scoring import score_pair

        s = score_pair(engine.model(name, model), path, txt)
        note = (f" {s['unknown_words']} word(s) are unknown to this model's vocabulary."
                if s["unknown_words"] else "")
        return (f"**Match probability (ITM): {s['itm_match_probability']:.3f}** · "
                f"ITC cosine similarity: {s['itc_cosine']:.3f}.{note}")

    ui.scenario.change(show_gallery, ui.scenario, [ui.gallery, ui.chosen],
                       api_name="gallery")
    # page-only events (a click in the gallery, clearing the upload, the page load) are
    # not API endpoints: /gallery and the forget set's ids cover them for a client
    ui.gallery.select(add_pick, [ui.scenario, ui.chosen], ui.chosen, api_name=False)
    ui.whole.click(add_whole_groups, [ui.scenario, ui.chosen], ui.chosen,
                   api_name="whole_groups")
    ui.upload.upload(show_upload, ui.upload, ui.preview, api_name="upload")
    ui.upload.clear(lambda: None, None, ui.preview, api_name=False)
    ui.score.click(score, [ui.upload, ui.text, ui.scenario, ui.model_id], status,
                   api_name="score", concurrency_id="model")
    return on_load


def _pairs(engine: Engine, name, model, ids, path, txt) -> list:
    """The request's pairs: the named training pairs, then the upload (if any) as a pair."""
    from mmu_core.erasure import forget_request

    sc = engine.scenarios[name]
    by_id = {p.pair_id: p for p in sc.train}
    unknown = [i for i in ids or [] if i not in by_id]
    if unknown:
        raise InputError(f"Not in the {name} training data: {', '.join(unknown[:3])}.")
    pairs = [by_id[i] for i in ids or []]
    if path is not None or (txt or "").strip():
        if path is None:
            raise InputError("The text is filled in but no image is uploaded.")
        pairs.append(forget_request.uploaded_pair(path, txt, engine.model(name, model)))
    if not pairs:
        raise InputError("Pick training pairs in the gallery or upload an image with its "
                         "text.")
    return pairs


def _previous(engine: Engine, old_key, name, model):
    """The visitor's current result, which "Forget more" continues from."""
    if old_key is None:
        raise InputError("Nothing to continue from yet: make a first request with "
                         "Forget.")
    entry = engine.store.get(old_key)
    previous = entry["outcome"]
    if previous.scenario != name or (entry["model_id"] or "embedded") != \
            (model or "embedded"):
        raise InputError(f"The current result is for {previous.scenario} with "
                         f"{entry['model_id']}: switch back to continue from it.")
    return previous


def _anchors_text(out: forget_request.Outcome, meth: str) -> str:
    if not out.anchors:
        return f"`{meth}` uses no anchors (only ours and ours-local build R_1/R_2)."
    return "**R_2: anchor texts from MVI**\n\n" + "\n".join(
        f"- *{a.text}* → " + " | ".join(a.texts) for a in out.anchors[:12])


def _run(engine: Engine, name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep,
         old_key, teach_first, progress, more=False) -> tuple:
    """One forget request (or, `more`, one on top of the visitor's current result), told
    as `_Results.of_request`'s outputs. An upload the model never learned is not forgotten:
    the visitor is offered to teach it first."""
    from mmu_core.erasure import forget_request

    progress(0, desc="preparing")
    previous = _previous(engine, old_key, name, model) if more else None
    pairs = _pairs(engine, name, model, ids, path, txt)
    settings, source = _settings(meth, name, model, len(pairs), tuned, n_steps, n_r)
    budget, budget_source = _budget(keep, meth, name, model, len(pairs))
    bb = engine.model(name, model)
    extras = {}
    if meth in ANCHOR_METHODS:
        extras["captioner"], extras["painter"] = engine.generators()
    try:
        if previous is not None:
            out = forget_request.forget_more(previous, pairs, meth, settings,
                                             teach_first=teach_first, seed=int(sd or 0),
                                             budget=budget, **extras)
        else:
            out = forget_request.forget(bb, engine.scenarios[name], name, pairs, meth,
                                        settings, teach_first=teach_first,
                                        seed=int(sd or 0), budget=budget, **extras)
    except forget_request.NotLearnedError as err:
        scenario = forget_request.with_pairs(engine.scenarios[name], err.pairs)
        base = previous.unlearned if previous is not None else bb
        before = forget_request.evidence(base, scenario, err.pairs)
        msg = (f"**Nothing to forget yet.** {err} Right now the model gives this pair a "
               f"match of {before.mean('match'):.3f} and a membership probability of "
               f"{before.mean('member'):.3f}.")
        return (old_key, msg, gr.update(visible=True), None, "", None, more)
    # one result per visitor: free the previous model (the store stops its Retrain)
    engine.store.drop(old_key)
    new_key = engine.store.put({"outcome": out, "model_id": model, "views": None,
                                "comparison": None, "audit": None})
    imgs = [(im, a.texts[0]) for a in out.anchors[:12] for im in a.images]
    df = pd.DataFrame(evidence_rows(out), columns=evidence_header())
    used = f"\n\nSettings: `{json.dumps(settings)}`, from {source}. {budget_source}"
    return (new_key, _status(out, model) + used + _history(out), gr.update(visible=False), imgs,
            _anchors_text(out, meth), df, False)


def _wire_forgetting(engine: Engine, ui: _Controls, res: _Results, key: gr.State) -> None:
    """Forget, Forget more, and Teach it first (which continues a "Forget more" if that
    is what asked for it); one model request at a time (concurrency_id "model")."""

    @gpu
    @user_errors
    def forget(name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep, old_key,
               progress=gr.Progress(track_tqdm=True)):
        return _run(engine, name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep,
                    old_key, False, progress)

    @gpu
    @user_errors
    def teach_then_forget(name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep,
                          old_key, cont, progress=gr.Progress(track_tqdm=True)):
        return _run(engine, name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep,
                    old_key, True, progress, more=bool(cont))

    @gpu
    @user_errors
    def forget_more(name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep, old_key,
                    progress=gr.Progress(track_tqdm=True)):
        return _run(engine, name, model, meth, ids, path, txt, sd, tuned, n_steps, n_r, keep,
                    old_key, False, progress, more=True)

    inputs, outputs = ui.request(key), res.of_request(key, ui.teach)
    ui.run.click(forget, inputs, outputs, api_name="forget", concurrency_id="model")
    ui.more.click(forget_more, inputs, outputs, api_name="forget_more", concurrency_id="model")
    ui.teach.click(teach_then_forget, inputs + [res.continuing], outputs,
                   api_name="teach_then_forget", concurrency_id="model")


def create_forget_tab(engine: Engine, key: gr.State):
    """The tab's controls, then its results, then their events; returns the page-load
    handler, the scenario radio and the load handler's outputs (for app.py)."""
    controls = _build_controls()
    results = _build_results()
    on_load = _wire_picking(engine, controls, results.status)
    _wire_forgetting(engine, controls, results, key)
    return on_load, controls.scenario, [controls.gallery, controls.chosen, controls.model_id]
