"""Grad-CAM on the ITM cross-attention (after ALBEF/BLIP, LAVIS `compute_gradcam`), with
captum: which image patches the text attends to when the model decides "this is a match".

HF BLIP does not keep its attention maps, so the attribution layer is the cross-attention's
dropout module, whose input is the attention probabilities [B, heads, text, 1 + patches].
The last layer gives gradient to the CLS row only (it is all the ITM head reads), so an
earlier layer is the default. Compute only; `figures.overlay` draws the map.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import LayerGradCam


def cross_attention_dropout(bb, layer: int) -> torch.nn.Module:
    layers = bb.model.text_encoder.encoder.layer
    if not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer {layer} out of range: the text encoder has {len(layers)}")
    return layers[layer].crossattention.self.dropout


def itm_gradcam(bb, image, text: str, layer: int = 0) -> np.ndarray:
    """A [rows, cols] map over the image patches (>= 0), averaged over the text's tokens
    and the heads, of the gradient-weighted attention behind the ITM match logit."""
    was_training = bb.training
    bb.eval()
    pix = bb.pixels([image])
    ids, mask = bb.tokenize([text])

    def match_logit(pixel_values):
        img = bb.encode_image(pixel_values)
        return bb.itm_logits(bb.fuse(img, ids.expand(len(img), -1),
                                     mask.expand(len(img), -1)))

    cam = LayerGradCam(match_logit, cross_attention_dropout(bb, layer))
    # attribute_to_layer_input: the dropout's input is the attention map itself
    with torch.enable_grad():
        attr = cam.attribute(pix, target=1, attribute_to_layer_input=True,
                             relu_attributions=True)
    bb.train(was_training)
    attr = attr.detach()[0, 0]  # [text tokens, 1 + patches]
    tokens = mask[0].bool()
    per_patch = attr[tokens][:, 1:].mean(0)  # drop the image CLS column
    side = int(round(per_patch.numel() ** 0.5))
    return per_patch.reshape(side, side).cpu().numpy()
