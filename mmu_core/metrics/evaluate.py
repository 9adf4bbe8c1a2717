"""Metrics of the paper (section 5, appendix D): retrieval recall@1/5/10 for TR and IR with
ITC top-k candidates re-ranked by ITM (as ALBEF), V-MCQ and VE accuracy, and membership
inference by an RBF SVM on the fused hidden state."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmu_core.data.loaders import MCQ, Pair, VEExample, open_image
from mmu_core.data.scenarios import Scenario
from mmu_core.metrics.membership import membership_inference
from mmu_core.models.backbone import Backbone

RERANK_K = 16  # ITC candidates re-ranked by ITM (ALBEF uses 128-256 on galleries of 1K-5K)


@torch.no_grad()
def _image_embeds(bb: Backbone, images: list, batch: int = 128) -> torch.Tensor:
    out = []
    for s in range(0, len(images), batch):
        out.append(bb.encode_image(bb.pixels([open_image(x) for x in images[s:s + batch]])))
    return torch.cat(out)


@torch.no_grad()
def _itm_scores(bb, img_embeds, ids, mask, batch: int = 256) -> torch.Tensor:
    out = []
    for s in range(0, len(ids), batch):
        fused = bb.fuse(img_embeds[s:s + batch], ids[s:s + batch], mask[s:s + batch])
        out.append(bb.itm_logits(fused)[:, 1])
    return torch.cat(out)


def recall_at(scores: np.ndarray, positives: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """scores [Q, G] (higher is better), positives [Q, G] bool: R@k in percent, counting a
    query as a hit when any positive is within the top k."""
    order = np.argsort(-scores, axis=1, kind="stable")
    hit_rank = np.array([np.flatnonzero(positives[q, order[q]])[0] if positives[q].any()
                         else scores.shape[1] for q in range(len(scores))])
    return {f"R@{k}": float(100 * np.mean(hit_rank < k)) for k in ks}


@torch.no_grad()
def retrieval(bb: Backbone, pairs: list[Pair], distractors: list[Pair] = (),
              k: int = RERANK_K) -> dict:
    """TR (image -> text) and IR (text -> image). Queries are the images and texts of
    `pairs`; the gallery also holds `distractors` (never-trained pairs), so a small query
    set cannot score well by chance."""
    bb.eval()
    gallery = list(pairs) + list(distractors)
    images, img_index = [], {}
    for p in gallery:
        if p.image not in img_index:
            img_index[p.image] = len(images)
            images.append(p)
    img_group = np.array([p.group for p in images])
    txt_group = np.array([p.group for p in gallery])
    positives = img_group[:, None] == txt_group[None, :]  # [I, T]
    q_img = torch.as_tensor(sorted({img_index[p.image] for p in pairs}))
    q_txt = torch.arange(len(pairs))

    img_emb = _image_embeds(bb, images)
    ids, mask = bb.tokenize([p.text for p in gallery])
    img_feat = bb.image_feat(img_emb)
    txt_feat = torch.cat([bb.text_feat(bb.encode_text(ids[s:s + 256], mask[s:s + 256]))
                          for s in range(0, len(ids), 256)])
    sim = (img_feat @ txt_feat.t()).cpu()

    # ALBEF: each query's ITC top-k candidates are scored by ITM, the rest score -100.
    def rerank(sim_q: torch.Tensor, itm) -> np.ndarray:
        kk = min(k, sim_q.shape[1])
        top = sim_q.topk(kk, dim=1).indices.reshape(-1)
        rows = torch.arange(len(sim_q)).repeat_interleave(kk)
        scores = torch.full(sim_q.shape, -100.0)
        scores[rows, top] = itm(rows, top).cpu()
        return scores.numpy()

    tr = rerank(sim[q_img], lambda r, t: _itm_scores(bb, img_emb[q_img[r]], ids[t], mask[t]))
    ir = rerank(sim.t()[q_txt], lambda r, i: _itm_scores(bb, img_emb[i], ids[q_txt[r]],
                                                          mask[q_txt[r]]))
    out = {"TR": recall_at(tr, positives[q_img.numpy()]),
           "IR": recall_at(ir, positives.T[q_txt.numpy()])}
    out["r_mean"] = float(np.mean([v for d in (out["TR"], out["IR"]) for v in d.values()]))
    out.update(n_query_images=len(q_img), n_query_texts=len(q_txt),
               n_gallery_images=len(images), n_gallery_texts=len(gallery))
    return out


@torch.no_grad()
def mcq_accuracy(bb: Backbone, mcqs: list[MCQ]) -> float:
    """V-MCQ by image-text matching: each option becomes the statement "<question>
    <option>", scored by ITM against the image; the best-scoring option is the answer."""
    if not mcqs:
        return float("nan")
    bb.eval()
    correct = 0
    img_emb = _image_embeds(bb, [q.image for q in mcqs])
    for i, q in enumerate(mcqs):
        ids, mask = bb.tokenize([q.statement(o) for o in q.options])
        scores = _itm_scores(bb, img_emb[i:i + 1].expand(len(q.options), -1, -1), ids, mask)
        correct += int(scores.argmax()) == q.answer
    return 100.0 * correct / len(mcqs)


@torch.no_grad()
def ve_accuracy(bb: Backbone, examples: list[VEExample], batch: int = 128) -> float:
    if not examples:
        return float("nan")
    bb.eval()
    correct = 0
    for s in range(0, len(examples), batch):
        chunk = examples[s:s + batch]
        img = _image_embeds(bb, [e.image for e in chunk])
        ids, mask = bb.tokenize([e.sentence for e in chunk])
        pred = bb.ve_logits(bb.fuse(img, ids, mask)).argmax(-1).cpu()
        correct += int((pred == torch.tensor([e.label for e in chunk])).sum())
    return 100.0 * correct / len(examples)


def subsample(pairs: list[Pair], n: int, seed: int) -> list[Pair]:
    """At most about `n` pairs, drawn as whole groups (an image with all its captions, a
    person with all their pairs) so each query keeps all its positives."""
    if len(pairs) <= n:
        return pairs
    groups = sorted({p.group for p in pairs})
    per_group = len(pairs) / len(groups)
    keep = set(np.random.default_rng(seed).choice(groups, size=max(1, int(n / per_group)),
                                                  replace=False))
    return [p for p in pairs if p.group in keep]


def evaluate(bb: Backbone, sc: Scenario, forget_ids, *, max_pairs: int = 1000,
             seed: int = 0, progress=None, retrieval_only: bool = False) -> dict:
    """All metrics of one model on one scenario and forget set (with `retrieval_only`, the
    retrieval task and membership inference: what the tuning protocol selects on)."""
    t0 = time.time()
    d_f, d_r = sc.split(forget_ids)
    f_ids = {p.pair_id for p in d_f}
    d_r_eval = subsample(d_r, max_pairs, seed)
    steps = [
        ("retrieval D_f", lambda: retrieval(bb, d_f, distractors=sc.unseen)),
        ("retrieval D_r", lambda: retrieval(bb, d_r_eval)),
        ("retrieval D_test", lambda: retrieval(bb, sc.test)),
        ("membership", lambda: membership_inference(bb, members=d_r_eval,
                                                    nonmembers=sc.unseen, targets=d_f,
                                                    seed=seed)),
    ]
    if sc.mcq_train and not retrieval_only:
        in_f = [q for q in sc.mcq_train if q.image.pair_id in f_ids]
        steps += [
            ("V-MCQ D_f", lambda: mcq_accuracy(bb, [q for q in in_f if q.kind == "private"])),
            ("V-MCQ D_r", lambda: mcq_accuracy(bb, [q for q in sc.mcq_train if q.kind ==
                                                    "private" and q.image.pair_id not in f_ids])),
            ("V-MCQ D_test", lambda: mcq_accuracy(bb, [q for q in sc.mcq_test
                                                       if q.kind == "visible"])),
        ]
    if sc.ve_train and not retrieval_only:
        steps += [
            ("VE D_f", lambda: ve_accuracy(bb, [v for v in sc.ve_train if v.pair_id in f_ids])),
            ("VE D_test", lambda: ve_accuracy(bb, sc.ve_test)),
        ]
    results = {}
    for name, fn in tqdm(steps, desc="evaluate", disable=progress is False):
        results[name] = fn()
    mi = results["membership"]
    headline = {"MI": mi["member_prob_D_f"], "R@D_f": results["retrieval D_f"]["r_mean"],
                "R@D_test": results["retrieval D_test"]["r_mean"],
                "R@D_r": results["retrieval D_r"]["r_mean"]}
    if "V-MCQ D_f" in results:
        headline.update({"A@D_f": results["V-MCQ D_f"], "A@D_test": results["V-MCQ D_test"],
                         "A@D_r": results["V-MCQ D_r"]})
    if "VE D_f" in results:
        headline.update({"A@D_f": results["VE D_f"], "A@D_test": results["VE D_test"]})
    return {"scenario": sc.name, "n_forget_pairs": len(d_f), "n_retain_pairs": len(d_r),
            "headline": headline, "details": results,
            "seconds": round(time.time() - t0, 1)}


def evaluate_cli(a) -> None:
    from mmu_core.data.scenarios import load_forget_ids, load_scenario
    from mmu_core.metrics.provenance import provenance
    from mmu_core.models.backbone import load_backbone

    bb = load_backbone(a.model)
    sc = load_scenario(a.data, a.scenario)
    result = evaluate(bb, sc, load_forget_ids(a.forget), max_pairs=a.max_pairs, seed=a.seed)
    result["model"] = a.model
    result["forget_list"] = str(a.forget)
    result["provenance"] = provenance(vars(a))
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    print(json.dumps({"headline": result["headline"], "seconds": result["seconds"]}, indent=1))
