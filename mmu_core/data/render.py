"""Drawing of portraits and scenes with PIL primitives (no anti-aliasing, so the bytes are
the same on every machine for a given Pillow major version)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from mmu_core.data.vocab import COLOURS, HAIR_COLOURS, SCENE_BG_RGB, SKIN_TONES

IMAGE_SIZE = 64


@dataclass(frozen=True)
class Face:
    """What stays the same across one person's photos."""

    skin: str
    hair_colour: str
    hair_style: str
    accessory: str


@dataclass(frozen=True)
class Photo:
    """One photo of a face: what varies between a person's images."""

    face: Face
    shirt: str
    background: str
    dx: int  # horizontal offset of the head, pixels
    dy: int  # vertical offset of the head, pixels


def draw_portrait(p: Photo) -> Image.Image:
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), COLOURS[p.background])
    d = ImageDraw.Draw(img)
    cx, cy = 32 + p.dx, 28 + p.dy
    # torso
    d.polygon([(cx - 22, 64), (cx - 14, cy + 16), (cx + 14, cy + 16), (cx + 22, 64)],
              fill=COLOURS[p.shirt])
    hair = HAIR_COLOURS[p.face.hair_colour]
    if p.face.hair_style == "long":
        d.rectangle([cx - 14, cy - 8, cx + 14, cy + 18], fill=hair)
    skin = SKIN_TONES[p.face.skin]
    d.ellipse([cx - 11, cy - 13, cx + 11, cy + 13], fill=skin)
    if p.face.hair_style in ("short", "long"):
        d.chord([cx - 12, cy - 15, cx + 12, cy + 5], 180, 360, fill=hair)
    elif p.face.hair_style == "curly":
        for ox in (-9, -3, 3, 9):
            d.ellipse([cx + ox - 5, cy - 17, cx + ox + 5, cy - 7], fill=hair)
    # eyes and mouth
    d.rectangle([cx - 6, cy - 2, cx - 4, cy], fill=(20, 20, 20))
    d.rectangle([cx + 4, cy - 2, cx + 6, cy], fill=(20, 20, 20))
    d.line([cx - 4, cy + 7, cx + 4, cy + 7], fill=(120, 30, 30), width=1)
    acc = p.face.accessory
    if acc == "glasses":
        d.ellipse([cx - 9, cy - 5, cx - 1, cy + 3], outline=(10, 10, 10), width=1)
        d.ellipse([cx + 1, cy - 5, cx + 9, cy + 3], outline=(10, 10, 10), width=1)
    elif acc == "hat":
        d.rectangle([cx - 15, cy - 12, cx + 15, cy - 9], fill=(60, 40, 30))
        d.rectangle([cx - 9, cy - 22, cx + 9, cy - 12], fill=(60, 40, 30))
    elif acc == "beard":
        d.chord([cx - 11, cy - 1, cx + 11, cy + 15], 0, 180, fill=hair)
        d.line([cx - 4, cy + 6, cx + 4, cy + 6], fill=(120, 30, 30), width=1)
    return img


@dataclass(frozen=True)
class Group:
    """A few identical objects in one column of a scene."""

    count: int
    colour: str
    shape: str
    size: str
    position: str  # left / middle / right


def _draw_shape(d: ImageDraw.ImageDraw, shape: str, x: int, y: int, r: int, rgb) -> None:
    if shape == "circle":
        d.ellipse([x - r, y - r, x + r, y + r], fill=rgb)
    elif shape == "square":
        d.rectangle([x - r, y - r, x + r, y + r], fill=rgb)
    elif shape == "triangle":
        d.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=rgb)
    elif shape == "diamond":
        d.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=rgb)
    else:
        raise ValueError(f"unknown shape {shape!r}")


# Grey levels of a signed work's signature strip (its three bottom rows).
SIGNATURE_SHADES = ((0, 0, 0), (85, 85, 85), (170, 170, 170), (255, 255, 255))


def draw_scene(background: str, groups: tuple[Group, ...], jitter: tuple[int, ...],
               signature: tuple[int, ...] | None = None) -> Image.Image:
    """`jitter` holds one vertical offset per group (pixels); `signature`, one shade index
    per cell of the strip along the bottom edge (copyright works)."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), SCENE_BG_RGB[background])
    d = ImageDraw.Draw(img)
    column_x = {"left": 11, "middle": 32, "right": 53}
    for g, jy in zip(groups, jitter):
        r = 4 if g.size == "small" else 7
        step = 2 * r + 4
        top = 32 - (g.count - 1) * step // 2 + jy
        for k in range(g.count):
            _draw_shape(d, g.shape, column_x[g.position], top + k * step, r, COLOURS[g.colour])
    if signature:
        w = IMAGE_SIZE // len(signature)
        for k, shade in enumerate(signature):
            d.rectangle([k * w, IMAGE_SIZE - 3, (k + 1) * w - 1, IMAGE_SIZE - 1],
                        fill=SIGNATURE_SHADES[shade])
    return img
