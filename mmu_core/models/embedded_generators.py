"""Build the embedded generators from scratch: a small `Blip2ForConditionalGeneration`
(image-to-text) and a small Stable Diffusion (`AutoencoderKL` + `UNet2DConditionModel` +
`CLIPTextModel`, assembled into a `StableDiffusionPipeline`), with tokenizers built
offline over the world's words. Sized to train in minutes on 2 CPU cores."""

from __future__ import annotations

from dataclasses import dataclass

from mmu_core.models.building import serialised
from mmu_core.models.embedded import words_of


@dataclass(frozen=True)
class CaptionerSize:
    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 96
    qformer_hidden: int = 96
    lm_hidden: int = 128
    layers: int = 2
    heads: int = 4
    query_tokens: int = 8
    max_text_len: int = 40
    lm: str = "opt"  # the language model: "opt" (decoder-only) or "t5" (encoder-decoder)


@dataclass(frozen=True)
class PainterSize:
    image_size: int = 32  # 64 px diffusion is 4-7x slower on CPU
    vae_channels: tuple = (32, 64, 64)  # three blocks: 32 px -> 8x8 latents
    unet_channels: tuple = (32, 64)
    text_hidden: int = 128
    text_layers: int = 2
    max_text_len: int = 32


def word_level_tokenizer(texts, specials=("<pad>", "</s>", "<unk>")):
    """A fast word-level tokenizer (one token per lower-cased word or punctuation mark)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(list(specials) + words_of(texts))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="</s>",
                                   eos_token="</s>", unk_token="<unk>")


@serialised
def new_captioner(texts, size: CaptionerSize = CaptionerSize(), seed: int = 0):
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    from mmu_core.models.captioner import Captioner

    tok = word_level_tokenizer(texts)
    image_processor = BlipImageProcessorPil(size={"height": size.image_size,
                                                  "width": size.image_size})
    processor = Blip2Processor(image_processor=image_processor, tokenizer=tok,
                               num_query_tokens=size.query_tokens)  # adds the <image> token
    h = size.vision_hidden
    config = Blip2Config(
        vision_config=dict(hidden_size=h, intermediate_size=4 * h, num_hidden_layers=size.layers,
                           num_attention_heads=size.heads, image_size=size.image_size,
                           patch_size=size.patch_size, initializer_range=0.02),
        qformer_config=dict(hidden_size=size.qformer_hidden, num_hidden_layers=size.layers,
                            num_attention_heads=size.heads,
                            intermediate_size=4 * size.qformer_hidden, encoder_hidden_size=h,
                            cross_attention_frequency=1),
        text_config=_lm_config(size, tok),
        num_query_tokens=size.query_tokens,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    return Captioner(Blip2ForConditionalGeneration(config), processor)


def _lm_config(size: CaptionerSize, tok) -> dict:
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
               eos_token_id=tok.eos_token_id)
    if size.lm == "opt":
        return dict(model_type="opt", vocab_size=len(tok), hidden_size=size.lm_hidden,
                    word_embed_proj_dim=size.lm_hidden, ffn_dim=4 * size.lm_hidden,
                    num_hidden_layers=size.layers, num_attention_heads=size.heads,
                    max_position_embeddings=size.query_tokens + size.max_text_len + 8, **ids)
    if size.lm == "t5":  # the decoder starts from padding, as T5's does
        return dict(model_type="t5", vocab_size=len(tok), d_model=size.lm_hidden,
                    d_kv=size.lm_hidden // size.heads, d_ff=4 * size.lm_hidden,
                    num_layers=size.layers, num_decoder_layers=size.layers,
                    num_heads=size.heads, decoder_start_token_id=tok.pad_token_id, **ids)
    raise ValueError(f"unknown language model {size.lm!r}: 'opt' or 't5'")


# Other generators of the same classes (the paper's Table 8 swaps SD versions and BLIP-2
# language models): name -> (which generator, its size). Made by
# `python -m mmu_core train-generators --variant NAME`.
VARIANTS = {
    "t5": ("captioner", CaptionerSize(lm="t5")),  # BLIP-2 with a T5 LM (blip2-flan-t5-xl)
    # a wider, deeper text encoder, as SD 2.1's OpenCLIP encoder is to 1.5's CLIP
    "v2": ("painter", PainterSize(text_hidden=192, text_layers=3)),
}


def clip_tokenizer(texts, max_len: int):
    """A CLIPTokenizer built offline: a BPE trained on the world's texts with CLIP's
    `</w>` end-of-word suffix, as CLIP's own vocabulary has."""
    import json
    import tempfile
    from pathlib import Path

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    tk = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=specials,
                                  end_of_word_suffix="</w>", show_progress=False)
    tk.train_from_iterator(list(texts), trainer)
    with tempfile.TemporaryDirectory() as tmp:  # the trained BPE's vocab and merges
        tk.model.save(tmp)
        vocab = json.loads((Path(tmp) / "vocab.json").read_text())
        merges = [tuple(m.split()) for m in (Path(tmp) / "merges.txt").read_text().splitlines()
                  if m and not m.startswith("#")]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_len)


@serialised
def new_painter(texts, size: PainterSize = PainterSize(), seed: int = 0):
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    from mmu_core.models.painter import Painter

    tok = clip_tokenizer(texts, size.max_text_len)
    torch.manual_seed(seed)
    n = len(size.vae_channels)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * n,
                        up_block_types=("UpDecoderBlock2D",) * n,
                        block_out_channels=size.vae_channels, layers_per_block=1,
                        sample_size=size.image_size, norm_num_groups=16)
    latent = size.image_size // 2 ** (n - 1)
    unet = UNet2DConditionModel(
        sample_size=latent, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=size.unet_channels,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=size.text_hidden, attention_head_dim=8, norm_num_groups=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=size.text_hidden, intermediate_size=2 * size.text_hidden,
        num_hidden_layers=size.text_layers, num_attention_heads=4,
        max_position_embeddings=size.max_text_len, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                              beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet,
                                   scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    return Painter(pipe)
