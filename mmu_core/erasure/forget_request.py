"""One forget request as a person makes it (the app's engine, usable without the app):
pairs picked from the training data or uploaded, a teach-first step for uploaded pairs
the model never learned, the method run through the registry, and per-pair evidence
(match, ITC similarity, rank, membership probability) before and after."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mmu_core import unlearn
from mmu_core.data.inputs import InputError, check_user_text, read_user_image
from mmu_core.data.loaders import Pair, open_image
from mmu_core.data.scenarios import Scenario
from mmu_core.metrics.evaluate import RERANK_K
from mmu_core.metrics.membership import fit_attack, pair_features
from mmu_core.models.backbone import Backbone, load_backbone
from mmu_core.training.recipes import itc_itm_loss
from mmu_core.unlearn.request import Request, group_ids, optimiser, sample, step, tensors

UPLOAD_PREFIX = "upload-"
RANK_GALLERY = 200  # texts a pair's own text is ranked against
ATTACK_PER_CLASS = 150  # members / non-members the app's membership attack is fitted on


class NotLearnedError(InputError):
    """The pair was never in the model's training data: there is nothing to forget."""

    def __init__(self, pairs: list[Pair]):
        self.pairs = pairs
        super().__init__(
            f"{len(pairs)} pair(s) were never in this model's training data, so there is "
            "nothing to forget yet. Teach them first (a short fine-tune on the pair with "
            "retained data), then forget them.")


def uploaded_pair(image, text: str, bb: Backbone) -> Pair:
    """A person's image and text as a Pair (image kept as PNG bytes, id from the content).
    Bad input raises InputError with a message for that person."""
    img = read_user_image(image)
    text = check_user_text(text, bb.processor.tokenizer, bb.max_text_len)
    img.thumbnail((512, 512))  # the models read far smaller images; keep the state small
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    key = UPLOAD_PREFIX + hashlib.sha256(data + text.encode()).hexdigest()[:10]
    return Pair(image=key + ".png", text=text, group=key, pair_id=key, image_bytes=data)


def with_pairs(sc: Scenario, pairs: list[Pair]) -> Scenario:
    """The scenario with `pairs` added to its training data (those not there already)."""
    known = {p.pair_id for p in sc.train}
    extra = [p for p in pairs if p.pair_id not in known]
    return dataclasses.replace(sc, train=sc.train + extra) if extra else sc


def without(sc: Scenario, pair_ids) -> Scenario:
    """The scenario after earlier requests: their pairs are gone from the training data
    (deleted by their owner), so they are neither retained nor forgotten again."""
    ids = set(pair_ids)
    return dataclasses.replace(sc, train=[p for p in sc.train if p.pair_id not in ids])


def teach(original: Backbone, sc: Scenario, pairs: list[Pair], steps: int = 30,
          lr: float = 2e-4, retain_per_step: int = 24, seed: int = 0) -> Backbone:
    """A copy of `original` fine-tuned briefly on `pairs` (every step: all of them plus a
    batch of training pairs, with the scenario recipe's ITC + ITM loss), so that it has
    learned them and there is something to forget. The original is not touched."""
    bb = original.copy().train()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = optimiser(bb, lr)
    known = {p.pair_id for p in pairs}
    pool = [p for p in sc.train if p.pair_id not in known]
    for _ in range(steps):
        batch = list(pairs) + sample(pool, retain_per_step, gen)
        pix, ids, mask = tensors(bb, batch)
        loss = sum(itc_itm_loss(bb, pix, ids, mask, group_ids(batch).to(bb.device),
                                gen).values())
        step(opt, loss, bb.parameters())
    return bb.eval()


@dataclass
class Evidence:
    """What one model says about the forgetting pairs, one dict per pair."""

    rows: list[dict]

    def mean(self, key: str) -> float:
        return float(np.mean([r[key] for r in self.rows]))


def _rank_gallery(sc: Scenario, forget: list[Pair], seed: int) -> list[str]:
    groups = {p.group for p in forget}
    pool = [p for p in sc.unseen + sc.train if p.group not in groups]
    rng = np.random.default_rng(seed)
    return [pool[i].text for i in rng.choice(len(pool), min(RANK_GALLERY, len(pool)),
                                              replace=False)]


@torch.no_grad()
def retrieval_rank(bb: Backbone, images: list, texts: list[str], gallery: list[str],
                   k: int = RERANK_K) -> list[int]:
    """Rank of texts[i] for images[i] among itself and `gallery`, as recall is measured
    (metrics/evaluate.py): the ITC top-k are re-ranked by ITM, the rest follow by ITC. A
    pair whose ITM match is gone drops out of the top even while its ITC cosine holds."""
    img_emb = bb.encode_image(bb.pixels(images))
    img_feat = bb.image_feat(img_emb)
    ids, mask = bb.tokenize(list(texts) + list(gallery))
    txt_feat = bb.text_feat(bb.encode_text(ids, mask))
    n, ranks = len(texts), []
    for i in range(n):
        cand = torch.tensor([i] + list(range(n, len(gallery) + n)),  # own text first
                            device=img_feat.device)
        sim = img_feat[i] @ txt_feat[cand].t()
        itc_rank = int(1 + (sim > sim[0]).sum())
        if itc_rank > k:
            ranks.append(itc_rank)
            continue
        top = sim.topk(min(k, len(cand))).indices
        itm = bb.itm_logits(bb.fuse(img_emb[i:i + 1].expand(len(top), -1, -1),
                                    ids[cand[top]], mask[cand[top]]))[:, 1]
        own = itm[(top == 0).nonzero()[0, 0]]
        ranks.append(int(1 + (itm > own).sum()))
    return ranks


@torch.no_grad()
def evidence(bb: Backbone, sc: Scenario, forget: list[Pair], seed: int = 0) -> Evidence:
    """Per forgetting pair: ITM match probability, ITC cosine, the rank of its own text
    among RANK_GALLERY other texts for its image as the benchmark's retrieval orders them
    (1 = best; `retrieval_rank`), and the membership probability of an RBF-SVM attack
    fitted on this model (members: retained training pairs, non-members: never-trained
    pairs)."""
    images = [open_image(p) for p in forget]
    scores = bb.score_pairs(images, [p.text for p in forget])
    gallery = _rank_gallery(sc, forget, seed)
    ranks = retrieval_rank(bb, images, [p.text for p in forget], gallery)

    rng = np.random.default_rng(seed)
    f_ids = {p.pair_id for p in forget}
    members = [p for p in sc.train if p.pair_id not in f_ids]
    n = min(ATTACK_PER_CLASS, len(members), len(sc.unseen))
    mem = [members[i] for i in rng.choice(len(members), n, replace=False)]
    non = [sc.unseen[i] for i in rng.choice(len(sc.unseen), n, replace=False)]
    attack = fit_attack(pair_features(bb, mem + non), np.r_[np.ones(n), np.zeros(n)])
    member = attack.predict_proba(scores["fused_cls"].numpy())[:, 1]
    return Evidence([{"pair_id": p.pair_id, "text": p.text,
                      "match": float(scores["itm"][i]), "itc": float(scores["itc"][i]),
                      "rank": ranks[i], "of": len(gallery) + 1,
                      "member": float(member[i])} for i, p in enumerate(forget)])


# a pair is forgotten, as the benchmark reads it, when its own text has left the top 10
# for its image (a recall@10 miss) and the membership attack reads it as a non-member
FORGOTTEN_RANK = 10
VERDICTS = ("not forgotten", "partly forgotten", "forgotten")


def verdicts(ev: Evidence) -> list[str]:
    """Per pair: "forgotten" (rank > 10 and membership < 0.5), "partly forgotten" (one of
    the two), "not forgotten" (neither)."""
    return [VERDICTS[(r["rank"] > FORGOTTEN_RANK) + (r["member"] < 0.5)] for r in ev.rows]


def verdict_cannot_tell(after: Evidence, retrain: Evidence) -> dict:
    """Where the verdict's two measures cannot tell the unlearned model from Retrain: the
    pairs whose own text the unlearned model still ranks in the top FORGOTTEN_RANK while
    Retrain, which never saw them, does too ("rank"), and the pairs it reads as members
    (probability >= 0.5) while Retrain does too ("member"). For those pairs that measure's
    "not forgotten" is what a model that never learned them says as well."""
    by_id = {r["pair_id"]: r for r in retrain.rows}
    out = {"rank": [], "member": [], "pairs": len(after.rows)}
    for u in after.rows:
        r = by_id.get(u["pair_id"])
        if r is None:
            continue
        if u["rank"] <= FORGOTTEN_RANK and r["rank"] <= FORGOTTEN_RANK:
            out["rank"].append(u["pair_id"])
        if u["member"] >= 0.5 and r["member"] >= 0.5:
            out["member"].append(u["pair_id"])
    return out


def verdict_caveat(after: Evidence, retrain: Evidence) -> str:
    """The sentence the page adds to a verdict that Retrain's evidence cannot tell apart from
    the unlearned model's ("" when both measures separate the two for every pair)."""
    c = verdict_cannot_tell(after, retrain)
    parts = [f"ranks the own text of {len(c['rank'])} of them in the top {FORGOTTEN_RANK} too"
             if c["rank"] else "",
             f"reads {len(c['member'])} of them as members too" if c["member"] else ""]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return (f"**The verdict cannot tell for this request** (of {c['pairs']} pair(s)): "
            f"Retrain, which never saw them, {' and '.join(parts)}; for those pairs \"not "
            f"forgotten\" is what a model that never learned them says as well, so that "
            f"measure does not separate the two here.")


def upload_verdict_caveat(outcome: Outcome) -> str:
    """`verdict_caveat` for a request of taught uploads, whose Retrain (the model before
    teaching) is at hand: its evidence on the same pairs, with the request's seed. "" for
    other requests (their Retrain trains in the background: Compare says it there)."""
    if needs_retrain(outcome):
        return ""
    return verdict_caveat(outcome.after, evidence(outcome.shipped, outcome.scenario_data,
                                                  outcome.forget, outcome.seed))


@dataclass
class Outcome:
    """Everything a forget request produced; `original` is the model the method started
    from (the taught copy when pairs were taught first)."""

    scenario: str
    method: str
    settings: dict
    forget: list[Pair]
    taught: bool
    original: Backbone
    unlearned: Backbone
    shipped: Backbone  # the model the request was made against (before any teaching)
    scenario_data: Scenario
    before: Evidence
    after: Evidence
    info: dict
    anchors: list = field(default_factory=list)  # mvi.Anchors (ours only)
    mvi: object = None
    seconds: dict = field(default_factory=dict)
    # the pairs of every request so far, oldest first (this one last); `shipped` saw them all
    history: list = field(default_factory=list)
    mvi_pairs: list = field(default_factory=list)  # what MVI was fitted on (kept in a sequence)
    methods: list = field(default_factory=list)  # each request's method, as `history`
    # the model before the first request (its taught copy when that one taught uploads):
    # what a sequence's comparison and audit call "original"
    origin: Backbone | None = None
    seed: int = 0  # the request's (its evidence's rank gallery and attack draw)

    @property
    def sequence(self) -> bool:
        return len(self.history) > 1

    @property
    def forgotten(self) -> list[Pair]:
        return [p for request in self.history for p in request]

    @property
    def forgotten_ids(self) -> list[str]:
        return [p.pair_id for p in self.forgotten]

    def all_data(self) -> Scenario:
        """The scenario with every pair forgotten so far back in its training data (what
        `shipped` was trained on): D_f = `forgotten`."""
        return with_pairs(self.scenario_data, self.forgotten)

    def whole_sequence(self) -> Outcome:
        """The requests so far read as one: every pair forgotten so far, from the model
        before the first request to the latest result (what Compare and Audit measure)."""
        return dataclasses.replace(self, original=self.origin or self.original,
                                   forget=self.forgotten, scenario_data=self.all_data())


def forget(original: Backbone, sc: Scenario, scenario_name: str, pairs: list[Pair],
           method: str = "ours", settings: dict | None = None, teach_first: bool = False,
           seed: int = 0, budget: float | None = None, **extras) -> Outcome:
    """Forget `pairs` (training pairs and/or uploads) with a registered method, within the
    neighbours' `budget` if one is given (unlearn/budget.py).

    Uploaded pairs the model never saw raise NotLearnedError unless `teach_first`: then a
    copy is taught them first and that copy is what gets unlearned."""
    if not pairs:
        raise InputError("Pick or upload at least one pair to forget.")
    if method not in unlearn.names():
        raise InputError(f"Unknown method {method!r}; choose from {unlearn.names()}.")
    known = {p.pair_id for p in sc.train}
    new = [p for p in pairs if p.pair_id not in known]
    if new and not teach_first:
        raise NotLearnedError(new)
    seconds = {}
    t0 = time.perf_counter()
    data = with_pairs(sc, new)
    base = teach(original, data, new, seed=seed) if new else original
    seconds["teach"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    before = evidence(base, data, pairs, seed)
    extras.setdefault("mvi_pairs", sc.train)  # what the shipped model was trained on
    request = Request.build(base, data, [p.pair_id for p in pairs], scenario_name, seed,
                            **extras)
    model, info = unlearn.run(method, request, neighbour_budget=budget,
                              **(settings or {}))
    after = evidence(model, data, pairs, seed)
    seconds["method"] = info["seconds"]
    seconds["total"] = round(seconds["teach"] + time.perf_counter() - t0, 2)
    return Outcome(scenario_name, method, dict(settings or {}), list(pairs), bool(new), base,
                   model, original, data, before, after, info, request.artifacts.get("anchors", []),
                   request.artifacts.get("mvi"), seconds, [list(pairs)], extras["mvi_pairs"],
                   [method], base, seed)


def forget_more(previous: Outcome, pairs: list[Pair], method: str | None = None,
                settings: dict | None = None, teach_first: bool = False, seed: int = 0,
                budget: float | None = None, **extras) -> Outcome:
    """A further request on top of `previous`: the method starts from its unlearned model,
    on the data without every pair forgotten so far. Retrain for the result is a retrain
    on the data without all of them (`retrain_reference`)."""
    done = set(previous.forgotten_ids)
    again = [p.pair_id for p in pairs if p.pair_id in done]
    if again:
        raise InputError(f"{len(again)} pair(s) were forgotten by an earlier request already, "
                         f"e.g. {again[:2]}")
    extras.setdefault("mvi_pairs", previous.mvi_pairs)  # the same MVI fit, not a new one
    out = forget(previous.unlearned, without(previous.scenario_data, done), previous.scenario,
                 pairs, method or previous.method, settings, teach_first, seed, budget,
                 **extras)
    return dataclasses.replace(out, shipped=previous.shipped, origin=previous.origin,
                               history=previous.history + out.history,
                               methods=previous.methods + out.methods)


def needs_retrain(outcome: Outcome) -> bool:
    """False for taught uploads: the model the request was made against is already Retrain
    (trained on the same data without those pairs)."""
    return not (outcome.taught and len(outcome.history) <= 1
                and all(p.pair_id.startswith(UPLOAD_PREFIX) for p in outcome.forget))


def retrain_reference(outcome: Outcome, epochs: int | None = None, **extras):
    """The Retrain model for this request and how it was obtained: the model before teaching
    (`needs_retrain`), else Retrain runs (the scenario's full recipe on D_r: minutes).
    `extras` reach the Request (`train_log`: a callable given each epoch's JSON record)."""
    if not needs_retrain(outcome):
        return outcome.shipped, {"how": "the model before teaching (never saw the uploads)"}
    return _retrain(outcome.shipped, outcome.scenario_data, [p.pair_id for p in outcome.forget],
                    outcome.scenario, epochs, **extras)


def _retrain(original: Backbone, data: Scenario, forget_ids: list[str], scenario: str,
             epochs: int | None, **extras):
    request = Request.build(original, data, forget_ids, scenario, **extras)
    model, info = unlearn.run("retrain", request, **({"epochs": epochs} if epochs else {}))
    full = info.get("recipe_epochs")
    of = f" of the recipe's {full}" if full and info["epochs"] < full else ""
    rough = " (a rougher reference than the full recipe)" if of else ""
    return model, {"how": f"retrained on D_r for {info['epochs']}{of} epochs{rough}", **info}


def retrain_task(outcome: Outcome, epochs: int):
    """This request's Retrain as a background task (`background.Worker`: a child process at
    the lowest priority). The child gets the data and the forget list; the parent saves the
    model the request was made against into the job's folder first and loads the trained
    model back: the job's result is `retrain_reference`'s (model, info)."""
    from mmu_core.erasure.background import Task

    device = outcome.shipped.device.type
    return Task("mmu_core.erasure.forget_request:retrain_into",
                {"data": outcome.scenario_data, "forget_ids": [p.pair_id for p in outcome.forget],
                 "scenario": outcome.scenario, "epochs": epochs, "device": device},
                prepare=lambda folder: outcome.shipped.save_pretrained(folder / "original"),
                collect=lambda out: _retrained(out, device))


def retrain_into(out, report, data: Scenario, forget_ids: list[str], scenario: str,
                 epochs: int, device: str = "cpu") -> None:
    """The child's side of `retrain_task`: Retrain from the saved original, each finished
    epoch reported, the model written with save_pretrained and its info as JSON."""
    if device == "cuda" and not torch.cuda.is_available():
        device = "cpu"
    original = load_backbone(str(out.parent / "original"), device)

    def log(line: str) -> None:  # `training.recipes.train` logs one JSON record per epoch
        if line.startswith("{"):
            report({"epoch": json.loads(line)["epoch"], "epochs": epochs})

    model, info = _retrain(original, data, forget_ids, scenario, epochs, train_log=log)
    model.save_pretrained(out / "model")
    (out / "info.json").write_text(json.dumps(info))


def _retrained(out, device: str):
    return (load_backbone(str(out / "model"), device),
            json.loads((out / "info.json").read_text()))


def comparison(outcome: Outcome, retrained: Backbone, max_pairs: int = 300, seed: int = 0) -> dict:
    """Headline metrics of original, unlearned and retrained models with the deltas to
    Retrain (Markdown) and per-pair evidence. D_f is every pair forgotten so far and the
    original is the model before the first request, as Retrain (`retrain_reference`) is
    trained without all of them: after one request, this request's pairs and model."""
    from mmu_core.metrics.compare import headline_table
    from mmu_core.metrics.evaluate import evaluate

    data, forgotten = outcome.all_data(), outcome.forgotten
    models = {"original": outcome.origin or outcome.original, "unlearned": outcome.unlearned,
              "retrained": retrained}
    results = {name: evaluate(bb, data, outcome.forgotten_ids, max_pairs=max_pairs, seed=seed)
               for name, bb in models.items()}
    heads = {name: r["headline"] for name, r in results.items()}
    if outcome.sequence:  # before/after of the last request cover its pairs only
        rows = {name: evidence(bb, data, forgotten, seed).rows for name, bb in models.items()}
    else:
        rows = {"original": outcome.before.rows, "unlearned": outcome.after.rows,
                "retrained": evidence(retrained, data, forgotten, seed).rows}
    return {"models": heads, "metrics": list(heads["retrained"]),
            "table_md": headline_table(results, retrain="retrained"), "evidence": rows}
