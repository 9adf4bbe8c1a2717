"""Real-size stand-ins: the real checkpoints' architectures, built offline from their
published configurations with random weights (no download). They cannot say whether
forgetting works; they say what a request costs at the real size and whether every path
runs there (`python -m mmu_core bench cost`, tests/test_real_size.py).

- `real-size:blip-itm-base`: `Salesforce/blip-itm-base-coco`'s architecture, i.e.
  `BlipConfig()`'s defaults (ViT-B/16 at 384 px, a BERT-base text encoder with
  cross-attention; 224M parameters).
- `real-size:blip2-opt-2.7b`: `Salesforce/blip2-opt-2.7b`, the smallest BLIP-2 (ViT-g/14 at
  224 px, a 32-query Q-Former, OPT-2.7B; 3.7B parameters). Built in bf16 by default: 7.5 GB,
  where fp32's 15 GB beside Stable Diffusion would not fit a 24 GB machine.
- `real-size:sd-1.5`: Stable Diffusion 1.5's UNet (860M), VAE (84M) and CLIP ViT-L text
  encoder (123M) at 512 px.

The tokenizers are the embedded models' (the world's words): a real vocabulary changes the
embedding tables' size, not the compute per token.
"""

from __future__ import annotations

import torch

from mmu_core.models.building import serialised

PREFIX = "real-size:"
BACKBONE = "real-size:blip-itm-base"
CAPTIONER = "real-size:blip2-opt-2.7b"
PAINTER = "real-size:sd-1.5"


def _random_init(cls, config, dtype: torch.dtype):
    """A model of `cls` with random weights, built on the meta device and materialised in
    `dtype`: a 3.9B model never passes through fp32 (15.5 GB) on its way to bf16."""
    with torch.device("meta"):
        model = cls(config)
    model = model.to_empty(device="cpu").to(dtype)
    model.tie_weights()  # to_empty gave the tied LM head a storage of its own
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norms' scales at 1, every bias at 0
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                p.normal_(0.0, 0.02)
        for b in model.buffers():  # position ids and the like are set in __init__ on meta
            if not torch.isfinite(b.float()).all():
                b.zero_()
    return model


@serialised
def blip_itm_base(dtype: torch.dtype = torch.float32):
    """A `Backbone` of BLIP ITM base's size (see the module docstring)."""
    from transformers import BlipConfig, BlipForImageTextRetrieval, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    from mmu_core.models.backbone import Backbone, load_backbone

    tok = load_backbone("embedded").processor.tokenizer
    config = BlipConfig()  # the published defaults are blip-itm-base's
    torch.manual_seed(0)
    model = BlipForImageTextRetrieval(config).to(dtype)  # 224M: the normal init is quick
    size = config.vision_config.image_size
    processor = BlipProcessor(image_processor=BlipImageProcessorPil(
        size={"height": size, "width": size}), tokenizer=tok)
    bb = Backbone(model, processor)
    bb.max_text_len = 35  # BLIP's max_words
    return bb


def blip2_config():
    """`Salesforce/blip2-opt-2.7b`'s configuration: Blip2Config's vision and Q-Former
    defaults are that checkpoint's; the LM is OPT-2.7B as published (facebook/opt-2.7b)."""
    from transformers import Blip2Config, OPTConfig

    text = OPTConfig(hidden_size=2560, num_hidden_layers=32, ffn_dim=10240,
                     num_attention_heads=32, word_embed_proj_dim=2560, vocab_size=50272,
                     max_position_embeddings=2048, bos_token_id=2, eos_token_id=2,
                     pad_token_id=1)
    return Blip2Config(text_config=text.to_dict(), num_query_tokens=32)


@serialised
def blip2_opt_2_7b(dtype: torch.dtype = torch.bfloat16):
    """A `Captioner` of `Salesforce/blip2-opt-2.7b`'s size."""
    from transformers import Blip2ForConditionalGeneration, Blip2Processor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    from mmu_core.models.captioner import Captioner
    from mmu_core.models.generators import load_captioner

    tok = load_captioner().tokenizer
    config = blip2_config()
    model = _random_init(Blip2ForConditionalGeneration, config, dtype)
    size = config.vision_config.image_size
    processor = Blip2Processor(image_processor=BlipImageProcessorPil(
        size={"height": size, "width": size}), tokenizer=tok, num_query_tokens=32)
    return Captioner(model, processor)


def sd15_modules(bos: int = 0, eos: int = 1, pad: int = 1):
    """Stable Diffusion 1.5's VAE, UNet and text encoder as published in
    runwayml/stable-diffusion-v1-5's configs (diffusers' UNet defaults are SD 1.x's; the
    text encoder is CLIP ViT-L/14's text tower), randomly initialised."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4,
                        block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                        sample_size=512, norm_num_groups=32)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, bos_token_id=bos,
        eos_token_id=eos, pad_token_id=pad))
    return vae, unet, text_encoder


@serialised
def stable_diffusion_15(dtype: torch.dtype = torch.float32):
    """A `Painter` of Stable Diffusion 1.5's size."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from mmu_core.models.generators import load_painter
    from mmu_core.models.painter import Painter

    tok = load_painter().pipe.tokenizer
    tok.model_max_length = 77
    torch.manual_seed(0)
    vae, unet, text_encoder = sd15_modules(tok.bos_token_id, tok.eos_token_id,
                                           tok.pad_token_id)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                              beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae.to(dtype), text_encoder=text_encoder.to(dtype),
                                   tokenizer=tok, unet=unet.to(dtype), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    return Painter(pipe)


BUILDERS = {BACKBONE: blip_itm_base, CAPTIONER: blip2_opt_2_7b, PAINTER: stable_diffusion_15}


def build(name: str, kind: str):
    """The stand-in `name` for a loader of `kind` ("backbone", "image-to-text model",
    "text-to-image model"); an unknown name or one of another kind is a clear error."""
    from mmu_core.models.backbone import UnknownModelError

    wanted = {"backbone": BACKBONE, "image-to-text model": CAPTIONER,
              "text-to-image model": PAINTER}[kind]
    if name != wanted:
        raise UnknownModelError(f"unknown real-size stand-in {name!r} for a {kind}; the "
                                f"{kind}'s is {wanted!r}")
    return BUILDERS[name]()


def parameters_m(module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 1)
