"""Build the embedded default from scratch: a word-level BERT tokenizer over the world's
texts and a small `BlipForImageTextRetrieval`, sized to train in minutes on 2 CPU cores."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mmu_core.models.building import serialised

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


@dataclass(frozen=True)
class EmbeddedSize:
    image_size: int = 64  # pixels; the world is drawn at 64x64
    patch_size: int = 8  # 8x8 patches -> 64 image tokens + CLS
    hidden: int = 128  # width of both encoders
    vision_layers: int = 2
    text_layers: int = 2
    heads: int = 4
    embed_dim: int = 64  # ITC projection width (image_text_hidden_size)
    max_text_len: int = 32


def words_of(texts) -> list[str]:
    """Lower-cased words and punctuation, as BERT's pre-tokenizer splits them."""
    vocab = set()
    for t in texts:
        vocab.update(re.findall(r"\w+|[^\w\s]", t.lower()))
    return sorted(vocab)


def build_tokenizer(texts):
    """A BertTokenizerFast whose vocabulary is every word of `texts` (one token per word,
    so per-word analyses need no sub-word merging)."""
    from transformers import BertTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + words_of(texts))}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True,
                             model_max_length=EmbeddedSize.max_text_len)


@serialised
def new_backbone(texts, size: EmbeddedSize = EmbeddedSize(), seed: int = 0):
    """A randomly initialised embedded backbone with a tokenizer over `texts`."""
    import torch
    from transformers import BlipConfig, BlipForImageTextRetrieval, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    from mmu_core.models.backbone import Backbone

    tok = build_tokenizer(texts)
    ids = tok.convert_tokens_to_ids
    text_cfg = dict(vocab_size=len(tok), hidden_size=size.hidden,
                    encoder_hidden_size=size.hidden, intermediate_size=4 * size.hidden,
                    num_hidden_layers=size.text_layers, num_attention_heads=size.heads,
                    max_position_embeddings=size.max_text_len, pad_token_id=ids("[PAD]"),
                    bos_token_id=ids("[DEC]"), eos_token_id=ids("[SEP]"),
                    sep_token_id=ids("[SEP]"))
    # initializer_range: BLIP's vision default (1e-10) leaves position embeddings at ~0
    # in a model trained from scratch.
    vision_cfg = dict(hidden_size=size.hidden, intermediate_size=4 * size.hidden,
                      num_hidden_layers=size.vision_layers, num_attention_heads=size.heads,
                      image_size=size.image_size, patch_size=size.patch_size,
                      initializer_range=0.02)
    config = BlipConfig(text_config=text_cfg, vision_config=vision_cfg,
                        image_text_hidden_size=size.embed_dim)
    torch.manual_seed(seed)
    model = BlipForImageTextRetrieval(config)
    image_processor = BlipImageProcessorPil(size={"height": size.image_size,
                                               "width": size.image_size})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tok)
    bb = Backbone(model, processor)
    bb.max_text_len = size.max_text_len
    return bb
