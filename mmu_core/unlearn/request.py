"""What every unlearning method receives: the original model (never mutated), D_f and D_r
of a scenario, and a seed; plus the tensor helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmu_core.data.loaders import DataError, Pair, open_image
from mmu_core.data.scenarios import Scenario
from mmu_core.models.backbone import Backbone


@dataclass
class Request:
    original: Backbone
    scenario: Scenario
    forget: list[Pair]
    retain: list[Pair]
    scenario_name: str = "privacy"
    seed: int = 0
    extras: dict = field(default_factory=dict)  # e.g. generators handed in by the caller
    # what a method leaves for people to inspect (ours: its anchors); not part of `info`,
    # which must stay JSON
    artifacts: dict = field(default_factory=dict)

    @classmethod
    def build(cls, original: Backbone, scenario: Scenario, forget_ids, scenario_name: str,
              seed: int = 0, **extras) -> "Request":
        ids = list(forget_ids)
        if len(set(ids)) >= len(scenario.train):
            raise DataError(f"the forget set ({len(set(ids))} pairs) is not smaller than the "
                            f"training set ({len(scenario.train)} pairs): nothing would remain")
        forget, retain = scenario.split(ids)  # empty or unknown ids raise DataError
        return cls(original, scenario, forget, retain, scenario_name, seed, dict(extras))

    def fresh_model(self) -> Backbone:
        """A deep copy to edit: methods never touch `original`."""
        return self.original.copy().eval()


def group_ids(pairs: list[Pair]) -> torch.Tensor:
    index = {g: i for i, g in enumerate(sorted({p.group for p in pairs}))}
    return torch.tensor([index[p.group] for p in pairs])


def tensors(bb: Backbone, pairs: list[Pair], images=None):
    """Pixels, token ids, attention mask of pairs (or of given PIL images and the texts)."""
    pix = bb.pixels(images if images is not None else [open_image(p) for p in pairs])
    ids, mask = bb.tokenize([p.text for p in pairs])
    return pix, ids, mask


def sample(pairs: list[Pair], n: int, gen: torch.Generator) -> list[Pair]:
    """At most n distinct pairs, in a random order (all of them when n exceeds the pool)."""
    idx = torch.randperm(len(pairs), generator=gen)[:n].tolist()
    return [pairs[i] for i in idx]


def sample_exactly(pairs: list[Pair], n: int, gen: torch.Generator) -> list[Pair]:
    """Exactly n pairs, one per row of something of length n: `sample` (the same draw when
    the pool is large enough), then fresh permutations of the pool while it is not
    (privacy forget-500 leaves 250 retained pairs for 500 rows)."""
    if not pairs:
        raise ValueError("no pairs to draw from")
    out: list[Pair] = []
    while len(out) < n:
        out += sample(pairs, n - len(out), gen)
    return out


def optimiser(model_or_params, lr: float, weight_decay: float = 0.0):
    """AdamW over a model's parameters, or over a given list of them."""
    params = (model_or_params.parameters() if isinstance(model_or_params, torch.nn.Module)
              else model_or_params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def step(opt, loss: torch.Tensor, params, clip: float = 5.0) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(params), clip)
    opt.step()


def pair_loss(bb: Backbone, forget: list[Pair], contrast: list[Pair]) -> torch.Tensor:
    """The training loss of the forgetting pairs themselves (what GA-style methods ascend):
    ITM cross-entropy of each pair as a match, plus ITC of each forgetting image / text
    against the forgetting and `contrast` pairs (retained pairs of other groups serve as
    the negatives a forget set of one person lacks)."""
    import torch.nn.functional as F

    both = forget + contrast
    pix, ids, mask = tensors(bb, both)
    img, txt = bb.encode_image(pix), bb.encode_text(ids, mask)
    n = len(forget)
    sim = bb.itc_logits(bb.image_feat(img), bb.text_feat(txt))[:n]
    groups = group_ids(both).to(ids.device)
    pos = (groups[:n, None] == groups[None, :]).float()
    itc = -(F.log_softmax(sim, 1) * pos / pos.sum(1, keepdim=True)).sum(1).mean()
    itm = F.cross_entropy(bb.itm_logits(bb.fuse(img[:n], ids[:n], mask[:n])),
                          torch.ones(n, dtype=torch.long, device=ids.device))
    return itc + itm


def outputs(bb, pix, ids, mask):
    """ITC similarity rows and columns and ITM logits of a batch (for distillation)."""
    img, txt = bb.encode_image(pix), bb.encode_text(ids, mask)
    sim = bb.itc_logits(bb.image_feat(img), bb.text_feat(txt))
    itm = bb.itm_logits(bb.fuse(img, ids, mask))
    return [sim, sim.t(), itm]


def kl_to(student, teacher):
    """Summed KL(teacher || student) over the distributions `outputs` returns."""
    import torch.nn.functional as F

    return sum(F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1), reduction="batchmean")
               for s, t in zip(student, teacher))
