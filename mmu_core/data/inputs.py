"""Checks on what a person hands in (app uploads, CLI arguments): clear messages, no crash
deep inside a model."""

from __future__ import annotations

import os

from PIL import Image

from mmu_core.data.loaders import DataError, open_image

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_TEXT_CHARS = 500


class InputError(ValueError):
    """User input that cannot be used, with a message meant for that user."""


def read_user_image(path) -> Image.Image:
    if path is None or (isinstance(path, str) and not path.strip()):
        raise InputError("Please upload an image.")
    if isinstance(path, Image.Image):
        return path.convert("RGB")
    try:
        size = os.path.getsize(path)
    except OSError:
        raise InputError("The uploaded file could not be found; please upload it again.") from None
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"The image is {size / 1e6:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    try:
        return open_image(path)
    except DataError as err:
        name = os.path.basename(str(path))
        if "over the limit" in str(err):
            raise InputError(f"{name} has too many pixels to be a photo we can process.") from None
        raise InputError(f"{name} is not a readable image (PNG, JPEG, ...).") from None


def check_user_text(text, tokenizer=None, max_tokens: int | None = None) -> str:
    if text is None or not str(text).strip():
        raise InputError("Please enter the text of the pair (it is empty).")
    text = str(text).strip()
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}.")
    if tokenizer is not None and max_tokens:
        n = len(tokenizer(text)["input_ids"])
        if n > max_tokens:
            raise InputError(f"The text is {n} tokens long; this model reads at most "
                             f"{max_tokens}. Please shorten it.")
    return text
