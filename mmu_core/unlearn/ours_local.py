"""Ours-local: the paper's contrastive semantic editing (MVI anchors, L_cl, L_cf, alpha;
`ours.py`, unchanged) with the retained pairs kept by design (issue 25).

`ours` edits every weight and holds D_r only by a KL term on a batch's outputs; the
diagnosis (docs/experiments/ours-locality/) found that its push moves weights that every
pair uses and keeps pushing after a pair is forgotten. This variant adds, as settings:

- `project`: the update of each linear layer is projected off the directions D_r's inputs
  use (AlphaEdit's null-space constraint, with Adam: the update is projected, not the raw
  gradient); biases, norms and embeddings are not edited;
- `mask`: a SalUn / SFR-on saliency mask, edit only weights whose gradient on D_f
  outweighs their gradient on D_r (hard: masked weights never move);
- `retain`: MultiDelete's feature retention (fused CLS and projected features of D_r,
  unimodal features of D_f) in place of, or beside, ours' output KL;
- `edit`: "encoders" leaves the heads every pair goes through (ITM head, ITC projections)
  as they are;
- `bounded`: a bounded push: a forgetting pair leaves the batch once its ITM match is no
  better than its image with another person's text (where Retrain puts a forgotten
  person); the edit stops when no pair is left, instead of pushing on through shared
  weights;
- `batch_size` 0: the batch grows with the forget set (16 to 64 rows), so 500 pairs get as
  many passes over D_f as 50 do within the same step cap.
The design choices were made on validation sets only (docs/experiments/ours-locality/).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from mmu_core.metrics.collateral import NEAREST_GROUPS, nearest_groups
from mmu_core.unlearn import ours, register
from mmu_core.unlearn.locality import (NullSpaceProjector, feature_retention,
                                       original_features, saliency_mask)
from mmu_core.unlearn.request import (Request, kl_to, optimiser, outputs, pair_loss, sample,
                                      tensors)

RETAIN = ("kl", "features", "both", "none")
RETAIN_FROM = ("random", "near")
RETAIN_POOL = 512  # retained pairs a retain batch is drawn from
EDIT = ("all", "encoders")
HEADS = ("itm_head", "vision_proj", "text_proj")


@dataclass(frozen=True)
class Settings:
    max_steps: int = 240
    lr: float = 3e-4
    project: float | None = 0.95  # D_r input energy each linear layer protects; None = off
    mask: float | None = None  # fraction of weights the saliency mask may free; None = off
    retain: str = "features"  # "kl" (ours'), "features" (MultiDelete's), "both", "none"
    retain_weight: float = 1.0
    # "encoders": the heads every pair shares (ITM head, ITC projections) stay as they are;
    # the diagnosis found ours moving the ITM head by a third of its norm
    edit: str = "encoders"
    # where retain batches come from: "random" D_r pairs, or "near": half of each from the
    # other people (works) nearest the forget set, whose matches an edit moves most
    retain_from: str = "random"
    bounded: bool = True
    # the push also holds a row while its ITC cosine beats the mismatch's; off: Retrain does
    # not rank a forgotten pair below a trained person's text in ITC, and with it on every
    # privacy-50 design run kept all rows to the step cap (docs/experiments/ours-locality)
    bound_itc: bool = False
    batch_size: int = 0  # 0 = by the forget set's size: rows / 8, within [16, 64]
    recheck_every: int = 20  # steps between re-reading every row's state (bounded push)
    # the paper's parts, as in ours
    n_images: int = 1
    n_texts: int = 1
    strategy: str = "swap"
    alpha: float | None = None
    saturate: bool = True


def batch_for(rows: int, s: Settings) -> int:
    return s.batch_size or min(64, max(16, -(-rows // 8)))


@torch.no_grad()
def above_mismatch(bb, x_pix, x_ids, x_mask, m_ids, m_mask, itc: bool = True,
                   chunk: int = 128) -> torch.Tensor:
    """Per row: does the pair still match better than its image with other groups' texts
    (`ours.mismatch_texts`: [t, rows, L], the median of the t), by ITM probability (what a
    person reads, what retrieval re-ranks by) or, with `itc`, by ITC cosine (what picks
    retrieval's candidates)? [N] bool."""
    out = []
    for s in range(0, len(x_ids), chunk):
        img = bb.encode_image(x_pix[s:s + chunk])
        ids, mask = x_ids[s:s + chunk], x_mask[s:s + chunk]
        others = m_ids[:, s:s + chunk], m_mask[:, s:s + chunk]
        above = (bb.itm_logits(bb.fuse(img, ids, mask)).softmax(-1)[:, 1]
                 > ours.mismatch_match(bb, img, *others))
        if itc:
            feats = bb.image_feat(img)
            cos = torch.stack([(feats * bb.text_feat(bb.encode_text(i, m))).sum(-1)
                               for i, m in zip(*others)]).median(0).values
            above |= (feats * bb.text_feat(bb.encode_text(ids, mask))).sum(-1) > cos
        out.append(above)
    return torch.cat(out)


@register("ours-local")
def contrastive_editing_kept_local(request: Request, **settings):
    s = Settings(**settings)
    if s.retain not in RETAIN:
        raise ValueError(f"unknown retain {s.retain!r}; choose from {RETAIN}")
    if s.edit not in EDIT:
        raise ValueError(f"unknown edit {s.edit!r}; choose from {EDIT}")
    if s.retain_from not in RETAIN_FROM:
        raise ValueError(f"unknown retain_from {s.retain_from!r}; choose from {RETAIN_FROM}")
    paper = ours.Settings(n_images=s.n_images, n_texts=s.n_texts, strategy=s.strategy,
                          alpha=s.alpha, saturate=s.saturate)
    items, info = ours.prepare_anchors(request, paper)
    bb = request.fresh_model()
    torch.manual_seed(request.seed)
    rows = [(p, a.images[i], a.texts[j]) for p, a in zip(request.forget, items)
            for i in range(s.n_images) for j in range(s.n_texts)]
    x_pix, x_ids, x_mask = tensors(bb, [r[0] for r in rows])
    r1_pix = bb.pixels([r[1] for r in rows])
    r2_ids, r2_mask = bb.tokenize([r[2] for r in rows])
    alpha = (ours.token_alpha(bb, x_ids, x_mask, r2_ids, r2_mask) if s.alpha is None
             else s.alpha * x_mask.float())
    forget_groups = {p.group for p in request.forget}
    m_ids, m_mask = ours.mismatch_texts(bb, request, len(rows), request.seed + 1)
    batch = batch_for(len(rows), s)
    gen = torch.Generator().manual_seed(request.seed)

    def edit_loss(idx):
        t = ours.edit_losses(bb, x_pix[idx], x_ids[idx], x_mask[idx], r1_pix[idx], r2_ids[idx],
                             r2_mask[idx], alpha[idx], paper)
        return t, t["cl_p"] + t["cf_p"] + t["cl_n"] + t["cf_n"]

    # the retained pairs a retain batch is drawn from, read once with the original's
    # features (a fresh draw of D_r pairs every step spent more time opening images)
    retained = sample(request.retain, RETAIN_POOL, gen)
    near_rows = torch.zeros(0, dtype=torch.long)
    if s.retain_from == "near":
        k = max(NEAREST_GROUPS, 2 * len(forget_groups))
        groups = set(nearest_groups(request.original, request.forget, request.retain, k))
        near = [p for p in request.retain if p.group in groups]
        retained = near + [p for p in retained if p.group not in groups]
        near_rows = torch.arange(len(near))
    r_all = tensors(bb, retained)
    if s.retain in ("features", "both"):
        r_target = original_features(request.original, *r_all)
        f_target = original_features(request.original, x_pix, x_ids, x_mask)

    def retain_loss(idx):
        if s.retain == "none":
            return None
        if len(near_rows):  # half of each batch from the nearest other people
            half = batch // 2
            pick = torch.cat([near_rows[torch.randperm(len(near_rows), generator=gen)[:half]],
                              torch.randperm(len(retained), generator=gen)[:batch - half]])
        else:
            pick = torch.randperm(len(retained), generator=gen)[:batch]
        r = tuple(t[pick] for t in r_all)
        loss = 0.0
        if s.retain in ("kl", "both"):
            with torch.no_grad():
                target = outputs(request.original, *r)
            loss = loss + kl_to(outputs(bb, *r), target)
        if s.retain in ("features", "both"):
            loss = loss + feature_retention(
                bb, r, {k: v[pick] for k, v in r_target.items()},
                (x_pix[idx], x_ids[idx], x_mask[idx]), {k: v[idx] for k, v in f_target.items()})
        return loss

    projector = NullSpaceProjector(bb, request.retain, s.project, seed=request.seed) \
        if s.project else None
    params = projector.parameters() if projector else list(bb.parameters())
    if s.edit == "encoders":
        heads = {id(p) for h in HEADS for p in getattr(bb.model, h).parameters()}
        params = [p for p in params if id(p) not in heads]
    for p in bb.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    masks = None
    if s.mask:
        probe = torch.randperm(len(rows), generator=gen)[:64]
        masks = saliency_mask(
            params, lambda: edit_loss(probe)[1],
            lambda: pair_loss(bb, sample(request.retain, 64, gen), []), s.mask)
        info["mask_free_fraction"] = round(float(sum(m.sum() for m in masks)
                                                 / sum(m.numel() for m in masks)), 4)
    if projector:
        info["projector"] = projector.summary()
    opt = optimiser(params, s.lr)
    active = torch.ones(len(rows), dtype=torch.bool)
    history, steps_done = [], 0
    for it in tqdm(range(s.max_steps), desc="editing", mininterval=1.0, leave=False):
        if s.bounded and (it % s.recheck_every == 0 or not active.any()):
            active = above_mismatch(bb, x_pix, x_ids, x_mask, m_ids, m_mask,
                                    s.bound_itc).cpu()
            if not active.any():
                break
        live = active.nonzero().flatten() if s.bounded else torch.arange(len(rows))
        idx = live[torch.randperm(len(live), generator=gen)[:batch]]
        if s.bounded:  # the batch's own state, read before its step
            on = above_mismatch(bb, x_pix[idx], x_ids[idx], x_mask[idx], m_ids[:, idx],
                                m_mask[:, idx], s.bound_itc).cpu()
            active[idx] = on
            idx = idx[on]
            if not len(idx):
                continue
        steps_done += 1
        terms, loss = edit_loss(idx)
        kept = retain_loss(idx)
        if kept is not None:
            terms["retain"] = kept
            loss = loss + s.retain_weight * kept
        before = projector.snapshot() if projector else None
        frozen = [p.detach().clone() for p in params] if masks else None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if masks:
            for p, m in zip(params, masks):
                if p.grad is not None:
                    p.grad.mul_(m)
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        with torch.no_grad():
            if masks:  # hard constraint: what the mask holds never moves
                for p, m, f in zip(params, masks, frozen):
                    p.copy_(torch.where(m.bool(), p, f))
            if projector:
                projector.project(before)
        history.append({k: round(float(v.detach()), 4) for k, v in terms.items()
                        if torch.is_tensor(v)} | {"rows_on": len(idx)})
    for p in bb.parameters():
        p.requires_grad_(True)
    if s.bounded:
        active = above_mismatch(bb, x_pix, x_ids, x_mask, m_ids, m_mask, s.bound_itc).cpu()
    return bb, {**info, "settings": asdict(s), "rows": len(rows), "batch": batch,
                "steps": steps_done, "rows_still_above_mismatch": int(active.sum())
                if s.bounded else None,
                "history": history[::max(1, steps_done // 5)] + history[-1:],
                "anchors": [{"pair_id": a.pair_id, "R_2": a.texts} for a in items[:5]]}
