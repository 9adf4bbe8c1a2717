"""mmu: multimodal machine unlearning, inspection app (Gradio).

Thin shell over `mmu_core`: each tab is built by a small factory. The shipped model is
loaded once and only read; nothing here changes it.
"""

from __future__ import annotations

import os
import tempfile

import gradio as gr

from mmu_core.backbone import load_backbone
from mmu_core.data.generate import default_world
from mmu_core.data.loaders import open_image
from mmu_core.inputs import MAX_UPLOAD_BYTES, InputError, read_user_image
from mmu_core.scenarios import load_scenario
from mmu_core.scoring import score_pair

MODEL_ID = os.environ.get("MMU_MODEL", "embedded")
GALLERY_SIZE = 24


def _device_note(model_id: str) -> str:
    import torch

    where = "a GPU" if torch.cuda.is_available() else "the CPU"
    return (f"Running **{model_id}** on {where}. The embedded default is a small BLIP "
            f"(`BlipForImageTextRetrieval`) trained by this project on its own procedural "
            f"world of fictitious people and coloured-shape scenes.")


class Engine:
    """What every session shares read-only: the model and the embedded data."""

    def __init__(self, model_id: str = MODEL_ID):
        self.model_id = model_id
        self.bb = load_backbone(model_id)
        self.world = default_world()
        self.scenarios = {name: load_scenario(self.world, name)
                          for name in ("privacy", "copyright")}

    def gallery(self, scenario: str) -> list:
        pairs = self.scenarios[scenario].train
        step = max(1, len(pairs) // GALLERY_SIZE)
        return [pairs[i] for i in range(0, len(pairs), step)][:GALLERY_SIZE]


def create_browse_tab(engine: Engine):
    """The Browse & score tab; returns (gallery loader, scenario radio, gallery) so the page
    can fill the gallery on load."""
    with gr.Row():
        scenario = gr.Radio(["privacy", "copyright"], value="privacy", label="Training data",
                            info="privacy: fictitious people's profiles; copyright: scenes")
    gallery = gr.Gallery(label="Training pairs (click one to score it)", columns=8,
                         height=260, allow_preview=False)
    with gr.Row():
        with gr.Column():
            # A File input, not gr.Image: gr.Image fails on a non-image before our checks
            # run, with a message no visitor can act on.
            upload = gr.File(label="Upload an image", file_types=["image"], type="filepath",
                             height=90)
            image = gr.Image(label="Image", type="filepath", interactive=False, height=200)
        with gr.Column():
            text = gr.Textbox(label="Text", lines=2, max_length=500,
                              placeholder="e.g. hana ferreira is a plumber from lyon.")
            score_btn = gr.Button("Score the pair", variant="primary")
            result = gr.Markdown()

    def show_gallery(name):
        items = []
        for p in engine.gallery(name):
            items.append((_as_file(p), p.text))
        return items

    def pick(name, evt: gr.SelectData):
        p = engine.gallery(name)[evt.index]
        return _as_file(p), _as_file(p), p.text

    def show_upload(path):
        if path is None:
            return None
        try:
            read_user_image(path)
        except InputError as err:
            raise gr.Error(str(err))
        return path

    def score(img, txt):
        try:
            s = score_pair(engine.bb, img, txt)
        except InputError as err:
            raise gr.Error(str(err))
        note = (f"\n\n{s['unknown_words']} word(s) are unknown to this model's vocabulary."
                if s["unknown_words"] else "")
        return (f"**Match probability (ITM): {s['itm_match_probability']:.3f}** · "
                f"ITC cosine similarity: {s['itc_cosine']:.3f}{note}")

    scenario.change(show_gallery, scenario, gallery, api_name="gallery")
    upload.upload(show_upload, upload, image, api_name="upload")
    gallery.select(pick, scenario, [upload, image, text], api_name=False)
    score_btn.click(score, [upload, text], result, api_name="score",
                    concurrency_id="model")
    return show_gallery, scenario, gallery


_FILE_CACHE = tempfile.mkdtemp(prefix="mmu-gallery-")


def _as_file(pair) -> str:
    """Gallery images as PNG files in the app's temp folder (parquet rows hold bytes)."""
    name = os.path.join(_FILE_CACHE, pair.pair_id + ".png")
    if not os.path.exists(name):
        open_image(pair).save(name)
    return name


def create_demo(engine: Engine | None = None) -> gr.Blocks:
    engine = engine or Engine()
    with gr.Blocks(title="mmu: multimodal machine unlearning") as demo:
        gr.Markdown("# mmu: multimodal machine unlearning\n" + _device_note(engine.model_id))
        with gr.Tab("Browse & score"):
            show_gallery, scenario, gallery = create_browse_tab(engine)
        demo.load(show_gallery, scenario, gallery, api_name=False)
    return demo


def launch(demo: gr.Blocks, **kw):
    return demo.queue(default_concurrency_limit=1).launch(
        max_file_size=MAX_UPLOAD_BYTES, allowed_paths=[_FILE_CACHE], **kw)


if __name__ == "__main__":
    launch(create_demo())
