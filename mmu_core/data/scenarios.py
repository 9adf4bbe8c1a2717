"""The two unlearning scenarios of the paper over one data root (the procedural world or
real downloads in the same layout), and their splits D_f / D_r / D_test.

privacy   (Table 1): profiles (MLLMU-Bench) mixed with normal captioned images
          (Flickr30k). D_f: whole profiles. Tasks: retrieval and V-MCQ.
copyright (Table 2): Flickr30k. D_f: images with all their captions. Tasks: retrieval
          and visual entailment (SNLI-VE).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from mmu_core.data.loaders import (MCQ, DataError, Pair, VEExample, load_karpathy, load_mllmu,
                                   load_snli_ve, profile_mcqs, profile_pairs, read_id_list)

SCENARIOS = ("privacy", "copyright")
DATASETS = {"privacy": "mllmu", "copyright": "flickr30k"}  # where each keeps its forget lists


@dataclass
class Scenario:
    name: str
    train: list[Pair]  # the pairs a forget set is drawn from
    test: list[Pair]  # D_test for retrieval
    unseen: list[Pair]  # never-trained pairs like D_f's: MI non-members, D_f gallery
    normal: list[Pair] = field(default_factory=list)  # mixed into privacy training batches
    ve_train: list[VEExample] = field(default_factory=list)
    ve_test: list[VEExample] = field(default_factory=list)
    mcq_train: list[MCQ] = field(default_factory=list)
    mcq_test: list[MCQ] = field(default_factory=list)
    val: list[Pair] = field(default_factory=list)  # validation split: tuning's D_test
    # never-trained pairs apart from every split above (world version 4): what "never
    # seen" looks like, which a method may read (docs/benchmark.md)
    calib: list[Pair] = field(default_factory=list)

    @property
    def qa_train(self) -> list[Pair]:
        """V-MCQ training pairs: each question with its correct answer, on the main photo."""
        return [q.as_pair() for q in self.mcq_train]

    def check_forget(self, forget_ids: list[str]) -> set[str]:
        """Validate a forget list against the training pairs; return it as a set."""
        if not forget_ids:
            raise DataError("the forget set is empty")
        known = {p.pair_id for p in self.train}
        ids = set(forget_ids)
        missing = sorted(ids - known)
        if missing:
            raise DataError(f"{len(missing)} forget id(s) are not in the {self.name} training "
                            f"data, e.g. {missing[:3]}")
        if len(ids) >= len(known):
            raise DataError(f"the forget set ({len(ids)} ids) covers the whole training set "
                            f"({len(known)} ids): nothing would remain")
        return ids

    def whole_groups(self, pair_ids) -> list[str]:
        """The ids of every training pair sharing a group with `pair_ids` (privacy: all of
        a person's profile pairs; copyright: every view of a work), in data order: what
        the benchmark's forget sets hold, where one pick would leave its siblings."""
        ids = self.check_forget(list(pair_ids)) if pair_ids else set()
        groups = {p.group for p in self.train if p.pair_id in ids}
        return list(dict.fromkeys(p.pair_id for p in self.train if p.group in groups))

    def validation_view(self) -> "Scenario":
        """The scenario as settings are tuned on it (docs/benchmark.md): the validation split
        stands in for D_test, and for the never-trained pairs where those are D_test's own
        (copyright); no V-MCQ or VE test questions. Tuning code sees only this view."""
        if not self.val:
            raise DataError(f"the {self.name} scenario has no validation split")
        test_ids = {p.pair_id for p in self.test}
        unseen = self.val if any(p.pair_id in test_ids for p in self.unseen) else self.unseen
        return replace(self, test=list(self.val), unseen=list(unseen), mcq_test=[],
                       ve_test=[])

    def split(self, forget_ids) -> tuple[list[Pair], list[Pair]]:
        """(D_f, D_r) of the training pairs."""
        ids = self.check_forget(list(forget_ids))
        return ([p for p in self.train if p.pair_id in ids],
                [p for p in self.train if p.pair_id not in ids])


def load_scenario(root: str | Path, name: str) -> Scenario:
    root = Path(root)
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {SCENARIOS}")
    if name == "privacy":
        train_profiles = load_mllmu(root / "mllmu", "train")
        test_profiles = load_mllmu(root / "mllmu", "test")
        return Scenario(
            name, train=profile_pairs(train_profiles), test=_scene_pairs(root, "test"),
            unseen=profile_pairs(test_profiles), normal=_scene_pairs(root, "train"),
            mcq_train=profile_mcqs(train_profiles), mcq_test=profile_mcqs(test_profiles),
            val=_scene_pairs(root, "val"), calib=_calibration(root, "profiles_calib.json"))
    flickr_train = load_karpathy(root / "flickr30k" / "flickr30k_train.json")
    flickr_test = load_karpathy(root / "flickr30k" / "flickr30k_test.json")
    flickr_val = load_karpathy(root / "flickr30k" / "flickr30k_val.json")
    images = root / "flickr30k" / "flickr30k-images"
    return Scenario(
        name, train=flickr_train, test=flickr_test, unseen=flickr_test,
        ve_train=load_snli_ve(root / "snli_ve" / "ve_train.json", images),
        ve_test=load_snli_ve(root / "snli_ve" / "ve_test.json", images), val=flickr_val,
        calib=_calibration(root, "flickr30k_calib.json"))


def _calibration(root: Path, name: str) -> list:
    """The calibration pool's pairs (a world of version 4 or later; else none)."""
    path = root / "calibration" / name
    return load_karpathy(path) if path.is_file() else []


def _scene_pairs(root: Path, split: str) -> list:
    """The privacy scenario's scene pairs: the embedded world keeps them name-free in
    scenes/ (its Flickr30k holds the copyright scenario's signed works); a real download
    has only Flickr30k."""
    own = root / "scenes" / f"scenes_{split}.json"
    return load_karpathy(own if own.is_file() else root / "flickr30k" / f"flickr30k_{split}.json")


def forget_list_path(root: str | Path, name: str, size: int, seed: int | str) -> Path:
    """A reported forget set by its seed (`image-<seed>.txt`), or a validation set by its
    name (`val-<k>`, for tuning only)."""
    stem = seed if isinstance(seed, str) else f"image-{seed}"
    return Path(root) / "Df" / DATASETS[name] / str(size) / f"{stem}.txt"


def validation_sets(root: str | Path, name: str, half: str = "choose") -> dict[int, list[Path]]:
    """The validation forget lists of a scenario by size (sizes not tuned have none): the
    *choose* half (`val-<k>`, settings are chosen on these) or the *confirm* half
    (`confirm-<k>`, a choice is checked on these)."""
    pattern = {"choose": "val-*.txt", "confirm": "confirm-*.txt"}[half]
    out = {}
    for path in sorted((Path(root) / "Df" / DATASETS[name]).glob(f"*/{pattern}")):
        out.setdefault(int(path.parent.name), []).append(path)
    return dict(sorted(out.items()))


def load_forget_ids(path: str | Path) -> list[str]:
    return read_id_list(path)
