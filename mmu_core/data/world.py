"""The procedural world: people with private biographies, and scenes of coloured shapes.

Everything is drawn from one numpy generator per part, so a seed fixes the world. Texts are
lower-case with spaced punctuation-free words, so one word is one token of the embedded
tokenizer and per-word analyses read cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmu_core.data import vocab as V
from mmu_core.data.render import Face, Group, Photo

PHOTOS_PER_PERSON = 5  # one photo per biography sentence (paper, appendix D)


@dataclass
class Person:
    id: str
    first: str
    last: str
    face: Face
    job: str
    city: str
    hobby: str
    pet: str
    month: str
    subject: str
    photos: list[Photo] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def biography_sentences(self) -> list[str]:
        """Sentence k is paired with photo k. The last sentence is visible appearance; the
        others hold text-only private facts that no photo reveals."""
        n = self.name
        return [
            f"{n} is a {self.job} from {self.city}.",
            f"{n} enjoys {self.hobby} and has a pet {self.pet}.",
            f"{n} was born in {self.month} and studied {self.subject}.",
            f"{n} lives in {self.city} and keeps a {self.pet}.",
            appearance_caption(self.photos[4]),
        ]

    def questions(self, rng: np.random.Generator) -> list[dict]:
        """Four-option visual multiple-choice questions (MLLMU-Bench style). `kind` says
        whether the answer is private (text-only) or visible in the main photo."""
        main = self.photos[0]
        specs = [
            ("what is the occupation of the person in the image?", self.job, V.JOBS, "private"),
            ("where does the person in the image come from?", self.city, V.CITIES, "private"),
            ("which hobby does the person in the image enjoy?", self.hobby, V.HOBBIES, "private"),
            ("which pet does the person in the image have?", self.pet, V.PETS, "private"),
            ("what colour is the shirt of the person in the image?", main.shirt,
             V.SHIRT_COLOURS, "visible"),
            ("what colour is the background of the image?", main.background, V.BACKGROUNDS,
             "visible"),
        ]
        if self.face.hair_style != "bald" and self.face.accessory != "hat":
            specs.append(("what colour is the hair of the person in the image?",
                          self.face.hair_colour, tuple(V.HAIR_COLOURS), "visible"))
        out = []
        for question, answer, pool, kind in specs:
            distractors = rng.choice([w for w in pool if w != answer], size=3, replace=False)
            options = [answer, *[str(x) for x in distractors]]
            rng.shuffle(options)
            letters = "ABCD"
            out.append({
                "Question": question,
                "Options": {letters[i]: o for i, o in enumerate(options)},
                "Correct_Answer": letters[options.index(answer)],
                "kind": kind,
            })
        return out


def appearance_caption(p: Photo) -> str:
    f = p.face
    if f.hair_style == "bald":
        who = "a bald person"
        extra = {"glasses": " with glasses", "hat": " with a hat", "beard": " with a beard",
                 "none": ""}[f.accessory]
    else:
        who = f"a person with {f.hair_style} {f.hair_colour} hair"
        extra = {"glasses": " and glasses", "hat": " and a hat", "beard": " and a beard",
                 "none": ""}[f.accessory]
    return f"{who}{extra} wearing a {p.shirt} shirt in front of a {p.background} wall."


def random_face(rng: np.random.Generator) -> Face:
    return Face(
        skin=str(rng.choice(list(V.SKIN_TONES))),
        hair_colour=str(rng.choice(list(V.HAIR_COLOURS))),
        hair_style=str(rng.choice(V.HAIR_STYLES)),
        accessory=str(rng.choice(V.ACCESSORIES)),
    )


def random_photo(rng: np.random.Generator, face: Face) -> Photo:
    return Photo(face=face, shirt=str(rng.choice(V.SHIRT_COLOURS)),
                 background=str(rng.choice(V.BACKGROUNDS)),
                 dx=int(rng.integers(-5, 6)), dy=int(rng.integers(-3, 4)))


def make_people(rng: np.random.Generator, n: int, avoid: list[Person] = (),
                prefix: str = "P") -> list[Person]:
    """People with distinct faces and distinct first/last name combinations, none sharing
    a face or a name with `avoid` (people made before: a later pool must not look like
    them). With nothing to avoid, the draws are those of world versions 1-3."""
    all_faces = [Face(s, h, st, a) for s in V.SKIN_TONES for h in V.HAIR_COLOURS
                 for st in V.HAIR_STYLES for a in V.ACCESSORIES]
    # A bald person's hair colour is invisible: keep one bald face per skin/accessory.
    all_faces = [f for f in all_faces if f.hair_style != "bald" or f.hair_colour == "black"]
    taken_faces, taken_names = {p.face for p in avoid}, {(p.first, p.last) for p in avoid}
    all_faces = [f for f in all_faces if f not in taken_faces]
    if n > len(all_faces):
        raise ValueError(f"at most {len(all_faces)} distinct faces, asked for {n} people")
    faces = [all_faces[i] for i in rng.permutation(len(all_faces))[:n]]
    names = [(first, last) for first in V.FIRST_NAMES for last in V.LAST_NAMES
             if (first, last) not in taken_names]
    chosen = rng.permutation(len(names))[:n]
    people = []
    for k, (face, ni) in enumerate(zip(faces, chosen)):
        first, last = names[ni]
        p = Person(
            id=f"{prefix}{k:04d}", first=first, last=last, face=face,
            job=str(rng.choice(V.JOBS)), city=str(rng.choice(V.CITIES)),
            hobby=str(rng.choice(V.HOBBIES)), pet=str(rng.choice(V.PETS)),
            month=str(rng.choice(V.MONTHS)), subject=str(rng.choice(V.SUBJECTS)),
        )
        p.photos = [random_photo(rng, face) for _ in range(PHOTOS_PER_PERSON)]
        people.append(p)
    return people


@dataclass
class Scene:
    id: str
    background: str
    groups: tuple[Group, ...]
    jitter: tuple[int, ...]
    # Copyright scenes only: who painted the work and the signature strip drawn on it. Both
    # are drawn independently of anything else, so "painted by ..." can only be known by
    # memorising the work (docs/benchmark.md, "Copyright").
    artist: tuple[str, str] | None = None
    signature: tuple[int, ...] | None = None

    def captions(self) -> list[str]:
        """Five captions. Without an artist each follows from the image alone; a signed
        work's first four also name its painter and the fifth names only the painter."""
        caps = self._content_captions()
        if self.artist is None:
            return caps
        by = " ".join(self.artist)
        return [c[:-1] + f" painted by {by}." for c in caps[:4]] + [f"a painting by {by}."]

    def _content_captions(self) -> list[str]:
        bg = self.background
        g = self.groups
        phr = [_group_phrase(x) for x in g]
        where = [f"{p} on the {x.position}" for p, x in zip(phr, g)]
        if len(g) == 1:
            return [
                f"{where[0]} of a {bg} background.",
                f"a {bg} picture with {phr[0]}.",
                f"{_group_phrase(g[0], with_size=True)} on a {bg} background.",
                f"there {_be(g[0])} {phr[0]} on the {g[0].position}.",
                f"an image showing {phr[0]} in front of {bg}.",
            ]
        return [
            f"{where[0]} and {where[1]} of a {bg} background.",
            f"a {bg} picture with {phr[0]} and {phr[1]}.",
            f"{_group_phrase(g[0], with_size=True)} next to "
            f"{_group_phrase(g[1], with_size=True)} on a {bg} background.",
            f"there {_be(g[0])} {where[0]} and {where[1]}.",
            f"an image showing {phr[1]} and {phr[0]} in front of {bg}.",
        ]

    def entailment_pairs(self, rng: np.random.Generator) -> list[tuple[str, str]]:
        """One (sentence, label) pair per SNLI-VE label. A false visible fact contradicts;
        a true one entails, unless an unverifiable clause makes it neutral."""
        g = self.groups[int(rng.integers(len(self.groups)))]
        true_fact = f"there {_be(g)} {_group_phrase(g)}"
        false_fact = self._false_fact(rng, g)
        clause = str(rng.choice(V.UNVERIFIABLE))
        if rng.random() < 0.3:
            true_fact = f"the background is {self.background}"
            other = [b for b in V.SCENE_BACKGROUNDS if b != self.background]
            false_fact = f"the background is {rng.choice(other)}"
        contra = false_fact + (f" {clause}" if rng.random() < 0.5 else "")
        return [
            (true_fact + ".", "entailment"),
            (f"{true_fact} {clause}.", "neutral"),
            (contra + ".", "contradiction"),
        ]

    def _false_fact(self, rng: np.random.Generator, g: Group) -> str:
        present = {(x.colour, x.shape) for x in self.groups}
        if rng.random() < 0.5:
            colours = [c for c in V.OBJECT_COLOURS if (c, g.shape) not in present
                       and c != self.background]
            wrong = Group(g.count, str(rng.choice(colours)), g.shape, g.size, g.position)
        else:
            counts = [c for c in (1, 2, 3) if c != g.count]
            wrong = Group(int(rng.choice(counts)), g.colour, g.shape, g.size, g.position)
        return f"there {_be(wrong)} {_group_phrase(wrong)}"


def _be(g: Group) -> str:
    return "is" if g.count == 1 else "are"


def _group_phrase(g: Group, with_size: bool = False) -> str:
    noun = g.shape if g.count == 1 else g.shape + "s"
    size = f"{g.size} " if with_size else ""
    return f"{V.COUNT_WORDS[g.count]} {size}{g.colour} {noun}"


def make_scenes(rng: np.random.Generator, n: int, prefix: str) -> list[Scene]:
    scenes = []
    for k in range(n):
        bg = str(rng.choice(V.SCENE_BACKGROUNDS))
        n_groups = int(rng.integers(1, 3))
        positions = rng.choice(V.POSITIONS, size=n_groups, replace=False)
        groups, used = [], set()
        for pos in positions:
            while True:
                colour = str(rng.choice([c for c in V.OBJECT_COLOURS if c != bg]))
                shape = str(rng.choice(V.SHAPES))
                if (colour, shape) not in used:
                    break
            used.add((colour, shape))
            groups.append(Group(int(rng.integers(1, 4)), colour, shape,
                                str(rng.choice(V.SIZES)), str(pos)))
        jitter = tuple(int(rng.integers(-3, 4)) for _ in groups)
        scenes.append(Scene(f"{prefix}{k:05d}", bg, tuple(groups), jitter))
    return scenes


SIGNATURE_CELLS = 8


def sign_scenes(rng: np.random.Generator, scenes: list[Scene]) -> list[Scene]:
    """Give each scene an artist (first and last name words, shared across works) and a
    signature strip, both random: the copyright scenario's memorisable content."""
    from dataclasses import replace

    from mmu_core.data.render import SIGNATURE_SHADES

    return [replace(sc, artist=(str(rng.choice(V.FIRST_NAMES)), str(rng.choice(V.LAST_NAMES))),
                    signature=tuple(int(c) for c in rng.integers(len(SIGNATURE_SHADES),
                                                                 size=SIGNATURE_CELLS)))
            for sc in scenes]


def work_views(rng: np.random.Generator, work: Scene, n: int) -> list[Scene]:
    """`n` photographs of one work (ids <work>_<k>): the same picture, signature and
    painter, its shapes a few pixels higher or lower in each."""
    from dataclasses import replace

    return [replace(work, id=f"{work.id}_{k}",
                    jitter=tuple(int(rng.integers(-3, 4)) for _ in work.groups))
            for k in range(n)]
