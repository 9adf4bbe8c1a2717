"""Image-to-text generator: `transformers.Blip2ForConditionalGeneration` (real:
`Salesforce/blip2-opt-2.7b`, or `Salesforce/blip2-flan-t5-xl`), frozen.

For MVI it offers K' of an image (the Q-Former outputs, projected into the language
model's input space: what BLIP-2 itself feeds its LM) and its text decoder (the LM),
conditioned on any prefix of embeddings, for the reconstruction loss and for generation.
A decoder-only LM (OPT) reads the prefix before the text; an encoder-decoder LM (T5)
reads it in its encoder and writes the text in its decoder, as BLIP-2 uses each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class Captioner:
    def __init__(self, model, processor):
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.seq2seq = not model.config.use_decoder_only_language_model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def lm_dim(self) -> int:
        return self.model.config.text_config.hidden_size

    def pixels(self, images) -> torch.Tensor:
        return self.processor.image_processor(images=images, return_tensors="pt")[
            "pixel_values"].to(self.device)

    def knowledge(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """K' of images: [B, num_query_tokens, lm_dim]."""
        return self.model.get_image_features(pixel_values=pixel_values).pooler_output

    def _text_ids(self, texts: list[str], max_len: int = 40):
        tok = self.tokenizer
        enc = tok([t + (tok.eos_token or "") for t in texts], padding="longest", truncation=True,
                  max_length=max_len, return_tensors="pt", add_special_tokens=False)
        # a leading column the targets drop: OPT's BOS; T5 has none (its decoder starts
        # from padding), so the pad id holds the place
        cfg = self.model.config.text_config
        lead = cfg.bos_token_id if cfg.bos_token_id is not None else cfg.pad_token_id
        bos = torch.full((len(texts), 1), lead)
        ids = torch.cat([bos, enc["input_ids"]], 1).to(self.device)
        mask = torch.cat([torch.ones_like(bos), enc["attention_mask"]], 1).to(self.device)
        return ids, mask

    def lm_loss(self, prefix: torch.Tensor, texts: list[str], reduction: str = "mean",
                ignore_unknown: bool = False):
        """Negative log-likelihood of `texts` under the LM conditioned on `prefix`
        [B, P, lm_dim]: the text decoder's own loss. Per sample with reduction="none".
        ignore_unknown: leave out the tokenizer's unknown token (words the decoder cannot
        say) from the targets."""
        lm = self.model.language_model
        ids, mask = self._text_ids(texts)
        if self.seq2seq:  # the prefix is the encoder's input; the decoder writes the text
            target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            logits = lm(inputs_embeds=prefix.to(lm.dtype), labels=target).logits
            pred = logits
        else:
            emb = lm.get_input_embeddings()(ids)
            inputs = torch.cat([prefix.to(emb.dtype), emb], 1)
            att = torch.cat([torch.ones(prefix.shape[:2], dtype=mask.dtype,
                                        device=mask.device), mask], 1)
            logits = lm(inputs_embeds=inputs, attention_mask=att).logits
            # position t predicts token t+1: the text tokens after BOS are the targets
            pred = logits[:, prefix.shape[1]:-1]
            target = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
        if ignore_unknown and self.tokenizer.unk_token_id is not None:
            target = target.masked_fill(target == self.tokenizer.unk_token_id, -100)
        nll = F.cross_entropy(pred.transpose(1, 2), target, ignore_index=-100, reduction="none")
        per_sample = nll.sum(1) / (target != -100).sum(1).clamp(min=1)
        return per_sample.mean() if reduction == "mean" else per_sample

    @torch.no_grad()
    def generate(self, prefix: torch.Tensor, max_new_tokens: int = 30,
                 do_sample: bool = False, generator_seed: int | None = None) -> list[str]:
        """Decode text from a conditioning prefix [B, P, lm_dim] (greedy by default)."""
        lm = self.model.language_model
        cfg = self.model.config.text_config
        if self.seq2seq:
            inputs = prefix.to(lm.dtype)
        else:
            bos = torch.full((prefix.shape[0], 1), cfg.bos_token_id, device=self.device)
            embed = lm.get_input_embeddings()(bos)
            # the prefix (MVI's, fp32) in the LM's own dtype: a bf16 / fp16 BLIP-2 too
            inputs = torch.cat([prefix.to(embed.dtype), embed], 1)
        att = torch.ones(inputs.shape[:2], dtype=torch.long, device=self.device)
        if generator_seed is not None:
            torch.manual_seed(generator_seed)
        out = lm.generate(inputs_embeds=inputs, attention_mask=att, do_sample=do_sample,
                          max_new_tokens=max_new_tokens, eos_token_id=cfg.eos_token_id,
                          pad_token_id=cfg.pad_token_id)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    @torch.no_grad()
    def caption(self, images, **kw) -> list[str]:
        return self.generate(self.knowledge(self.pixels(images)), **kw)
