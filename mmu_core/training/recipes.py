"""ITC + ITM training with hard negatives, as ALBEF/BLIP train retrieval models.

Recipes:
  pretrain   a new embedded backbone on the generic name-free corpus
  privacy    fine-tune on the profiles (+ normal Flickr30k pairs in every batch): the
             privacy scenario's original model
  copyright  fine-tune on Flickr30k captions + SNLI-VE (VE head): the copyright original
Passing `exclude` (a forget list) trains the same recipe on D_r only: that is Retrain.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mmu_core.data.loaders import Pair, VEExample, load_karpathy, open_image
from mmu_core.models.backbone import Backbone
from mmu_core.training.distributed import Shard, Stepper, accelerator_for, shard_of


@dataclass(frozen=True)
class Recipe:
    epochs: int
    lr: float
    batch_size: int = 32
    normal_per_batch: int = 0  # normal (scene) pairs mixed into each batch (privacy)
    qa_per_batch: int = 0  # V-MCQ "question answer" pairs mixed into each batch (privacy)
    ve_batch_size: int = 0  # VE examples per step (copyright)
    weight_decay: float = 0.02
    warmup_steps: int = 100


RECIPES = {
    "pretrain": Recipe(epochs=12, lr=1e-3),
    # Memorising text-only facts needs many hot epochs (measured: below ~50 epochs at
    # 1e-3 the ITM head and memorisation stay weak); the normal pairs keep generalisation.
    "privacy": Recipe(epochs=80, lr=1e-3, batch_size=24, normal_per_batch=8, qa_per_batch=6),
    "copyright": Recipe(epochs=15, lr=5e-4, ve_batch_size=16),
    # Real BLIP checkpoints (the `real` benchmark preset): BLIP's retrieval fine-tuning
    # (configs/retrieval_flickr.yaml: lr 1e-5, weight decay 0.05, 6 epochs, 32 per GPU);
    # privacy keeps its normal and question-answer pairs in every batch.
    "privacy-real": Recipe(epochs=6, lr=1e-5, batch_size=24, normal_per_batch=8,
                           qa_per_batch=6, weight_decay=0.05, warmup_steps=0),
    "copyright-real": Recipe(epochs=6, lr=1e-5, ve_batch_size=16, weight_decay=0.05,
                             warmup_steps=0),
}


class TensorCache:
    """Pixel values of every distinct image and token ids of every text, computed once."""

    def __init__(self, bb: Backbone, pairs: list[Pair], ve: list[VEExample] = ()):
        keys, seen = [], {}
        for p in pairs:
            if p.image not in seen:
                seen[p.image] = len(keys)
                keys.append(p)
        for v in ve:
            if v.image not in seen:
                seen[v.image] = len(keys)
                keys.append(v.image)
        self.index = seen
        chunks = []
        for s in range(0, len(keys), 256):
            chunks.append(bb.processor.image_processor(
                images=[open_image(k) for k in keys[s:s + 256]],
                return_tensors="pt")["pixel_values"])
        self.pixels = torch.cat(chunks) if chunks else torch.empty(0)
        self.bb = bb

    def pix(self, images: list[str]) -> torch.Tensor:
        return self.pixels[[self.index[i] for i in images]].to(self.bb.device)


def itc_itm_loss(bb: Backbone, pix, ids, mask, groups: torch.Tensor,
                 generator: torch.Generator, shard: Shard | None = None) -> dict[str, torch.Tensor]:
    """ALBEF's ITC (targets spread over all positives of the same group) and ITM with one
    hard negative text per image and one hard negative image per text, sampled in
    proportion to their ITC similarity.

    `ids`, `mask`, `groups` hold the whole batch; `pix` only this process's rows of it
    (`shard`; all of them in one process). Each loss is this process's share of the batch
    mean (`distributed.Shard.weight`)."""
    n = groups.shape[0]
    shard = shard or Shard(0, 1, n)
    rows = shard.rows
    img = bb.encode_image(pix)
    img_f = bb.image_feat(img)
    txt_f = bb.text_feat(bb.encode_text(ids[rows], mask[rows]))
    img_f_all, txt_f_all = shard.gather(img_f), shard.gather(txt_f)
    pos = groups[:, None] == groups[None, :]
    targets = pos.float() / pos.float().sum(1, keepdim=True)
    i2t = bb.itc_logits(img_f, txt_f_all)  # this process's images against every text
    t2i = bb.itc_logits(img_f_all, txt_f).t()
    loss_itc = -((F.log_softmax(i2t, 1) * targets[rows]).sum()
                 + (F.log_softmax(t2i, 1) * targets[rows]).sum()) * shard.weight / 2
    with torch.no_grad():  # the whole batch's draws, the same in every process
        sim = bb.itc_logits(img_f_all, txt_f_all)
        w_i2t = F.softmax(sim.float(), 1).masked_fill(pos, 0) + 1e-8 * (~pos)
        w_t2i = F.softmax(sim.t().float(), 1).masked_fill(pos, 0) + 1e-8 * (~pos)
        has_neg = (~pos).any(1)
        w_i2t[~has_neg] = 1.0  # a batch of one group has no negative: fall back to uniform
        w_t2i[~has_neg] = 1.0
        # drawn on the CPU with the caller's CPU generator (same draws on any device)
        neg_txt = torch.multinomial(w_i2t.cpu(), 1, generator=generator).squeeze(1)[rows]
        neg_img = torch.multinomial(w_t2i.cpu(), 1, generator=generator).squeeze(1)[rows]
        neg_txt, neg_img = neg_txt.to(ids.device), neg_img.to(ids.device)
    img_all = shard.gather(img)
    b = img.shape[0]
    my_ids, my_mask = ids[rows], mask[rows]
    fused = bb.fuse(torch.cat([img, img, img_all[neg_img]]),
                    torch.cat([my_ids, ids[neg_txt], my_ids]),
                    torch.cat([my_mask, mask[neg_txt], my_mask]))
    labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(ids.device)
    loss_itm = F.cross_entropy(bb.itm_logits(fused), labels, reduction="sum") \
        * shard.weight / 3
    return {"itc": loss_itc, "itm": loss_itm}


def ve_loss(bb: Backbone, pix, ids, mask, labels, shard: Shard | None = None) -> torch.Tensor:
    """VE cross-entropy; like `itc_itm_loss`, on this process's rows (pix, ids, mask,
    labels are those rows), as its share of the batch mean."""
    shard = shard or Shard(0, 1, labels.shape[0])
    fused = bb.fuse(bb.encode_image(pix), ids, mask)
    return F.cross_entropy(bb.ve_logits(fused), labels, reduction="sum") * shard.weight


def recipe_losses(bb: Backbone, pix, ids, mask, groups, generator, shard: Shard,
                  ve=None) -> dict[str, torch.Tensor]:
    """A recipe step's losses on this process's rows (`ve`: the VE batch's rows and shard)."""
    losses = itc_itm_loss(bb, pix, ids, mask, groups, generator, shard)
    if ve is not None:
        losses["ve"] = ve_loss(bb, *ve)
    return losses


def _tokens(bb: Backbone, texts: list[str]):
    enc = bb.processor.tokenizer(texts, padding="max_length", truncation=True,
                                 max_length=bb.max_text_len, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _trim(ids, mask):
    n = int(mask.sum(1).max())
    return ids[:, :n], mask[:, :n]


def train(bb: Backbone, recipe: Recipe, pairs: list[Pair], out: str | Path, *,
          mix: list[tuple[list[Pair], int]] = (), ve: list[VEExample] = (), seed: int = 0,
          resume: bool = True, log=print, epochs: int | None = None,
          keep_checkpoint: bool = False, mixed_precision: str = "no",
          grad_accum: int = 1, stop_after: int | None = None) -> dict:
    """Train `bb` in place on `pairs`, adding to every batch `n` random pairs of each
    `(pool, n)` in `mix` and, with a VE recipe, a batch of `ve`. Checkpoints each epoch
    under out/checkpoint (resumable, on any process count); saves the final model to `out`.

    Runs on the device `bb` is on, in as many processes as it was launched with
    (`distributed`: each process encodes its share of every batch; only the main process
    writes). `grad_accum` > 1 makes one optimiser step of that many batches (each batch
    still its own ITC / hard-negative pool); `mixed_precision` is accelerate's ("bf16" on
    GPUs that have it). `stop_after` epochs into the run, stop and keep the checkpoint
    (a time-sliced run: the same command resumes it, on any process count)."""
    out = Path(out)
    ckpt = out / "checkpoint"
    epochs = epochs or recipe.epochs
    if not pairs:
        raise ValueError("no training pairs")
    acc = accelerator_for(bb, mixed_precision)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)  # every process draws the same batches
    gen = torch.Generator().manual_seed(seed)

    mix = [(list(pool), n) for pool, n in mix if pool and n]
    everything = list(pairs) + [p for pool, _ in mix for p in pool]
    cache = TensorCache(bb, everything, ve)
    group_ids = {g: i for i, g in enumerate(sorted({p.group for p in everything}))}

    def encode(ps):
        ids, mask = _tokens(bb, [p.text for p in ps])
        return ids, mask, torch.tensor([group_ids[p.group] for p in ps])

    ids_all, mask_all, groups_all = encode(pairs)
    mix_enc = [encode(pool) for pool, _ in mix]
    if ve:
        v_ids, v_mask = _tokens(bb, [v.sentence for v in ve])
        v_labels = torch.tensor([v.label for v in ve])

    steps_per_epoch = math.ceil(len(pairs) / recipe.batch_size)
    total = steps_per_epoch * epochs
    opt_steps = epochs * math.ceil(steps_per_epoch / grad_accum)  # each epoch ends on a step
    opt = torch.optim.AdamW(bb.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)

    def lr_at(step):  # linear warm-up, cosine decay to 10% (in optimiser steps)
        if step < recipe.warmup_steps:
            return (step + 1) / recipe.warmup_steps
        t = (step - recipe.warmup_steps) / max(1, opt_steps - recipe.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start_epoch, history = 0, []
    if resume and (ckpt / "trainer_state.pt").is_file():
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        from mmu_core.models.backbone import load_backbone

        bb.load_state_dict(load_backbone(str(ckpt)).state_dict())
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
        start_epoch, history = state["epoch"], state["history"]
        log(f"resumed from {ckpt} at epoch {start_epoch} "
            f"({acc.num_processes} process(es) now, {state.get('processes', 1)} before)")

    stepper = Stepper({"bb": bb}, functools.partial(recipe_losses, bb), opt, sched, clip=5.0,
                      mixed_precision=mixed_precision, grad_accum=grad_accum)
    bb.train()
    t0 = time.time()
    # In a log file (no terminal) a bar redraw every few seconds is enough.
    bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, desc="train", unit="step",
               mininterval=0.1 if sys.stderr.isatty() else 10.0,
               disable=not acc.is_main_process)
    if start_epoch and ve:  # where the VE stream stood (not re-drawn: same as unbroken)
        ve_order, ve_pos = state["ve_order"], state["ve_pos"]
    else:
        ve_order, ve_pos = (rng.permutation(len(ve)) if ve else None), 0
    last = epochs if stop_after is None else min(epochs, start_epoch + stop_after)
    encoded = 0  # rows encoded by all processes together: each batch row exactly once
    for epoch in range(start_epoch, last):
        order = rng.permutation(len(pairs))
        sums = {}
        for s in range(steps_per_epoch):
            idx = torch.as_tensor(order[s * recipe.batch_size:(s + 1) * recipe.batch_size])
            ids, mask, groups = ids_all[idx], mask_all[idx], groups_all[idx]
            images = [pairs[i].image for i in idx.tolist()]
            for (pool, n), (p_ids, p_mask, p_groups) in zip(mix, mix_enc):
                nidx = torch.as_tensor(rng.choice(len(pool), min(n, len(pool)), replace=False))
                ids, mask = torch.cat([ids, p_ids[nidx]]), torch.cat([mask, p_mask[nidx]])
                groups = torch.cat([groups, p_groups[nidx]])
                images += [pool[i].image for i in nidx.tolist()]
            ids, mask = _trim(ids, mask)
            shard = shard_of(acc, len(images))
            ve_batch = None
            if ve and recipe.ve_batch_size:
                if ve_pos + recipe.ve_batch_size > len(ve):
                    ve_order, ve_pos = rng.permutation(len(ve)), 0
                vidx = torch.as_tensor(ve_order[ve_pos:ve_pos + recipe.ve_batch_size])
                ve_pos += recipe.ve_batch_size
                vi, vm = _trim(v_ids[vidx], v_mask[vidx])
                v_shard = shard_of(acc, len(vidx))
                mine = vidx[v_shard.rows]
                ve_batch = (cache.pix([ve[i].image for i in mine.tolist()]),
                            vi[v_shard.rows].to(bb.device), vm[v_shard.rows].to(bb.device),
                            v_labels[mine].to(bb.device), v_shard)
            shown = stepper(cache.pix(images[shard.rows]), ids.to(bb.device),
                            mask.to(bb.device), groups.to(bb.device), gen, shard, ve_batch,
                            counts={"rows": shard.stop - shard.start},
                            last=s == steps_per_epoch - 1)
            encoded += int(shown.pop("rows"))  # rows encoded by all processes together
            for k, v in shown.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in shown.items()})
        record = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()},
                  "elapsed_s": round(time.time() - t0, 1)}
        history.append(record)
        if acc.is_main_process:
            log(json.dumps(record))
            bb.save_pretrained(ckpt)
            torch.save({"opt": opt.state_dict(), "sched": sched.state_dict(),
                        "rng": rng.bit_generator.state, "gen": gen.get_state(),
                        "epoch": epoch + 1, "history": history,
                        "ve_order": ve_order, "ve_pos": ve_pos,
                        "processes": acc.num_processes}, ckpt / "trainer_state.pt")
        acc.wait_for_everyone()
    stepper.close()
    bar.close()
    bb.eval()
    if last < epochs:
        if acc.is_main_process:
            log(f"stopped after epoch {last} of {epochs}; the checkpoint at {ckpt} resumes "
                f"it")
        return {"stopped_at_epoch": last, "epochs": epochs, "rows_encoded_this_run": encoded,
                "history": history}
    summary = {"recipe": asdict(recipe), "epochs": epochs, "seed": seed,
               "n_pairs": len(pairs), "n_mix": [len(pool) for pool, _ in mix], "n_ve": len(ve),
               "processes": acc.num_processes, "device": str(bb.device),
               "mixed_precision": mixed_precision, "grad_accum": grad_accum,
               "rows_encoded_this_run": encoded,
               "train_seconds_this_run": round(time.time() - t0, 1), "history": history}
    if acc.is_main_process:
        bb.save_pretrained(out)
        (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
        if not keep_checkpoint:  # finished: nothing left to resume, keep the folder small
            shutil.rmtree(ckpt, ignore_errors=True)
    acc.wait_for_everyone()
    return summary


def scenario_inputs(sc, recipe: Recipe, exclude=()) -> tuple[list, list, list]:
    """(pairs, mix, ve) of a scenario's recipe without the `exclude`d pair ids: with a
    forget set excluded this is Retrain's data."""
    ids = set(exclude)
    pairs = [p for p in sc.train if p.pair_id not in ids]
    qa = [p for p in sc.qa_train if p.pair_id not in ids]
    ve = [v for v in sc.ve_train if v.pair_id not in ids]
    return pairs, [(sc.normal, recipe.normal_per_batch), (qa, recipe.qa_per_batch)], ve


def pretrain_pairs(root: str | Path) -> list[Pair]:
    return load_karpathy(Path(root) / "pretrain" / "pretrain.json")


def world_texts(root: str | Path) -> list[str]:
    """Every text of the world: the embedded tokenizer's vocabulary comes from these."""
    from mmu_core.data.scenarios import load_scenario

    root = Path(root)
    texts = [p.text for p in pretrain_pairs(root)]
    for name in ("privacy", "copyright"):
        sc = load_scenario(root, name)
        texts += [p.text for p in sc.train + sc.test + sc.unseen]
        texts += [v.sentence for v in sc.ve_train + sc.ve_test]
        for q in sc.mcq_train + sc.mcq_test:
            texts += [q.question, *q.options]
    return texts
