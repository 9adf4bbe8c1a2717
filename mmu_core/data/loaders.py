"""Readers for the on-disk formats of Flickr30k (Karpathy/ALBEF json), SNLI-VE (ALBEF json),
BLIP-style pretraining json and MLLMU-Bench (parquet, read through `datasets`).

The same code reads the procedural world and a real download. Every problem raises
`DataError` naming the file and the field.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Images beyond this many pixels are refused (Pillow's own bomb guard warns at ~89 MP).
MAX_IMAGE_PIXELS = 40_000_000
VE_LABELS = ("entailment", "neutral", "contradiction")


class DataError(ValueError):
    """A dataset file is missing, malformed or holds an unreadable image."""


@dataclass(frozen=True)
class Pair:
    """One image-text pair. Pairs sharing `group` match each other (same image, or the
    same person); `pair_id` is the id a forget list names (the image file's stem)."""

    image: str  # file path, or a "<file>#<row>" key when the bytes live in a parquet file
    text: str
    group: str
    pair_id: str
    image_bytes: bytes | None = field(default=None, repr=False, compare=False)


def open_image(pair_or_path, field_name: str = "image") -> Image.Image:
    """Open an image as RGB; a missing or corrupt file raises DataError naming it."""
    if isinstance(pair_or_path, Pair):
        src, data = pair_or_path.image, pair_or_path.image_bytes
    else:
        src, data = str(pair_or_path), None
    try:
        fp = io.BytesIO(data) if data is not None else open(src, "rb")
    except FileNotFoundError:
        raise DataError(f"{src}: field {field_name!r} names a file that does not exist") from None
    try:
        with fp:
            img = Image.open(fp)
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DataError(f"{src}: field {field_name!r} is an image of "
                                f"{img.width}x{img.height} pixels, over the limit of "
                                f"{MAX_IMAGE_PIXELS}")
            img.load()
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{src}: field {field_name!r} is not a readable image ({err})") from None


def _read_json(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of entries")
    return data


def _field(entry, name: str, path: Path, i: int):
    if not isinstance(entry, dict) or name not in entry:
        raise DataError(f"{path}: entry {i} has no field {name!r}")
    return entry[name]


def load_karpathy(path: str | Path, image_root: str | Path | None = None) -> list[Pair]:
    """Flickr30k/COCO Karpathy json as ALBEF/BLIP ship it. Train entries hold one caption
    and an `image_id`; test entries hold a caption list. BLIP's pretraining json (image,
    caption) reads the same way. Image paths are relative to `image_root` (default: the
    json's folder)."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    pairs = []
    for i, e in enumerate(_read_json(path)):
        image = str(root / _field(e, "image", path, i))
        caps = _field(e, "caption", path, i)
        caps = [caps] if isinstance(caps, str) else caps
        if not isinstance(caps, list) or not caps or not all(isinstance(c, str) and c.strip()
                                                             for c in caps):
            raise DataError(f"{path}: entry {i} field 'caption' must be a non-empty string "
                            f"or list of strings")
        stem = Path(image).stem
        group = str(e.get("image_id", stem))
        pairs.extend(Pair(image, c, group, stem) for c in caps)
    return pairs


@dataclass(frozen=True)
class VEExample:
    image: str
    sentence: str
    label: int  # index into VE_LABELS
    pair_id: str


def load_snli_ve(path: str | Path, image_dir: str | Path) -> list[VEExample]:
    """SNLI-VE in ALBEF's json (image = Flickr30k id, sentence, label)."""
    path, image_dir = Path(path), Path(image_dir)
    out = []
    for i, e in enumerate(_read_json(path)):
        img_id = str(_field(e, "image", path, i))
        label = _field(e, "label", path, i)
        if label not in VE_LABELS:
            raise DataError(f"{path}: entry {i} field 'label' is {label!r}, expected one of "
                            f"{VE_LABELS}")
        stem = Path(img_id).stem
        candidates = [image_dir / img_id] + [image_dir / f"{stem}{ext}"
                                             for ext in (".jpg", ".png", ".jpeg")]
        image = next((c for c in candidates if c.is_file()), candidates[1])
        out.append(VEExample(str(image), _field(e, "sentence", path, i),
                             VE_LABELS.index(label), stem))
    return out


@dataclass
class Profile:
    """One MLLMU-Bench row: a person's photos, biography and questions."""

    id: str
    images: list[bytes]
    biography: str
    questions: list[dict]
    source: str


def load_mllmu(source: str | Path, split: str = "train") -> list[Profile]:
    """MLLMU-Bench-style profiles from a parquet file, a folder holding `<split>.parquet`,
    or a hub dataset id already in the local cache (read through `datasets`)."""
    import datasets

    src = Path(source)
    if src.is_dir():
        src = src / f"{split}.parquet"
    if src.suffix == ".parquet":
        if not src.is_file():
            raise DataError(f"{src}: file not found")
        ds = datasets.Dataset.from_parquet(str(src))
        ds = ds.cast_column("image", datasets.Image(decode=False))
        if "images" in ds.column_names:
            ds = ds.cast_column("images", datasets.List(datasets.Image(decode=False)))
    else:
        try:
            ds = datasets.load_dataset(str(source), split=split)
        except Exception as err:  # noqa: BLE001 - the hub raises many kinds
            raise DataError(f"{source}: not a parquet file, a folder, or a cached hub "
                            f"dataset ({err})") from None
        ds = ds.cast_column("image", datasets.Image(decode=False))
    for col in ("image", "ID", "biography"):
        if col not in ds.column_names:
            raise DataError(f"{src}: column {col!r} missing")
    out = []
    for i, row in enumerate(ds):
        imgs = row.get("images") or [row["image"]]
        blobs = []
        for im in imgs:
            if not im or im.get("bytes") is None:
                raise DataError(f"{src}: row {i} field 'image' holds no image bytes")
            blobs.append(im["bytes"])
        task = row.get("Classification_Task") or {}
        out.append(Profile(str(row["ID"]), blobs, row["biography"],
                           list(task.get("Image_Textual_Questions") or []), f"{src}"))
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def profile_pairs(profiles: list[Profile]) -> list[Pair]:
    """Appendix D of the paper: each biography sentence paired with the person's image is
    one pair. With several photos, sentence k goes with photo k (cycling)."""
    pairs = []
    for p in profiles:
        for k, sentence in enumerate(split_sentences(p.biography)):
            j = k % len(p.images)
            pairs.append(Pair(f"{p.source}#{p.id}_{j}", sentence, p.id, f"{p.id}_{k}",
                              image_bytes=p.images[j]))
    return pairs


@dataclass(frozen=True)
class MCQ:
    image: Pair  # the person's main photo
    question: str
    options: tuple[str, ...]
    answer: int
    kind: str  # "private" (text-only fact) or "visible"
    person: str

    def statement(self, option: str) -> str:
        """The text a matching model scores for one option."""
        return f"{self.question} {option}"

    def as_pair(self) -> Pair:
        """The question with its correct answer: a training pair for the V-MCQ task."""
        return Pair(self.image.image, self.statement(self.options[self.answer]), self.person,
                    self.image.pair_id, image_bytes=self.image.image_bytes)



def profile_mcqs(profiles: list[Profile]) -> list[MCQ]:
    out = []
    for p in profiles:
        main = Pair(f"{p.source}#{p.id}_0", "", p.id, f"{p.id}_0", image_bytes=p.images[0])
        for i, q in enumerate(p.questions):
            try:
                letters = sorted(q["Options"])
                options = tuple(q["Options"][L] for L in letters)
                answer = letters.index(q["Correct_Answer"])
            except (KeyError, ValueError, TypeError):
                raise DataError(f"{p.source}: profile {p.id} question {i} lacks 'Options' or "
                                f"a valid 'Correct_Answer'") from None
            out.append(MCQ(main, q["Question"], options, answer, q.get("kind") or "private",
                           p.id))
    return out


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def forget_id(entry: str) -> str:
    """A forget-list line as an id: ids stay as they are; an annotation's `image` value, as
    MultiDelete writes its D_f files (`flickr30k-images/1000092795.jpg`), becomes the
    image's id (its file stem, as `load_karpathy` names pairs)."""
    entry = entry.strip()
    if "/" in entry or "\\" in entry or entry.lower().endswith(IMAGE_SUFFIXES):
        return Path(entry.replace("\\", "/")).stem
    return entry


def read_id_list(path: str | Path) -> list[str]:
    """A forget list: one id, or one annotation `image` value, per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: forget list not found")
    ids = [forget_id(line) for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: forget list is empty")
    return ids
