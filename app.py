"""mmu: multimodal machine unlearning, inspection app (Gradio).

Thin shell: the tabs are small factories in `mmu_ui/` over `mmu_core`. The shipped models
are loaded once and only read; each visitor's results live in a TTL store keyed by their
session state, so one visitor's forgetting never shows up for another.
"""

from __future__ import annotations

import os
import threading

import gradio as gr

from mmu_core.data.inputs import MAX_UPLOAD_BYTES
from mmu_ui.audit_tab import create_audit_tab
from mmu_ui.compare_tab import create_compare_tab
from mmu_ui.engine import LOADING, RESULT_TTL_S, Engine
from mmu_ui.forget_tab import create_forget_tab
from mmu_ui.inspect_tab import create_inspect_tab


def create_demo(engine: Engine | None = None) -> gr.Blocks:
    engine = engine or Engine()
    with gr.Blocks(title="mmu: multimodal machine unlearning") as demo:
        demo.engine = engine
        title = ("# mmu: multimodal machine unlearning\nForget image-text pairs in a "
                 "vision-language model, then check what was erased and what was kept. ")
        header = gr.Markdown(title + LOADING)
        # the session holds only a key; the result (an edited model) lives in engine.store
        key = gr.State(None, time_to_live=RESULT_TTL_S, delete_callback=engine.store.drop)
        with gr.Tab("Forget"):
            on_load, scenario, load_out = create_forget_tab(engine, key)
        with gr.Tab("Inspect"):
            create_inspect_tab(engine, key)
        with gr.Tab("Compare & report"):
            create_compare_tab(engine, key)
        with gr.Tab("Audit"):
            create_audit_tab(engine, key)
        # served before the models are in (mmu_ui.engine); these fill in once they are
        demo.load(lambda: title + engine.describe(), None, header, api_name=False)
        demo.load(on_load, scenario, load_out, api_name=False)
        # a closed page (or a reload) ends the session: its result and background work go
        demo.unload(engine.close_session)
    return demo


def _warm_up(engine: Engine) -> None:
    """Off the request path: UMAP's first fit compiles (~20 s); MVI's generators load."""
    from mmu_core.erasure.analysis import warm_up_umap

    try:  # lowest CPU priority for this thread only (Linux): pages and requests go first
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    engine.ready.wait()  # the shared model first: requests need it before these
    warm_up_umap()
    engine.generators()


def launch(demo: gr.Blocks, **kw):
    demo.warm_up = threading.Thread(target=_warm_up, args=(demo.engine,), daemon=True)
    demo.warm_up.start()
    return demo.queue(default_concurrency_limit=1).launch(
        max_file_size=MAX_UPLOAD_BYTES, allowed_paths=[demo.engine.files], **kw)


if __name__ == "__main__":
    launch(create_demo())
