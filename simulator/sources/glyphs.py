"""A synthetic development source: 8x8 grey letter glyphs drawn the way the digits were scanned.

Twelve capital letters (A C E H K L M N T V X Z), each a fixed set of strokes in the unit square,
are drawn 150 times with a random affine jitter (rotation, scale, shear, shift) and stroke width
as binary 32x32 bitmaps, then counted in 4x4 blocks (0..16 ink pixels per cell), the
preprocessing of scikit-learn's digits (UCI optdigits). The result looks like the digits in
size, grey levels and stroke statistics but is none of them: it is where the pre-processor's
constants are chosen for small grey sources (``benchmarks/tune_cut.py``), so that no benchmark
evaluates on the source its constants were chosen on. The draw is fixed (its own seed), not the
run's: like any dataset it is the same for every scenario (with the same Pillow, whose line
rasteriser draws the strokes).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from .base import STRUCTURED, ItemSet

#: Strokes of each letter: polylines of (x, y) in the unit square, y downwards.
_ARC = [(0.5 + 0.42 * np.cos(t), 0.5 - 0.5 * np.sin(t)) for t in np.linspace(np.pi / 4, 7 * np.pi / 4, 13)]
LETTERS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0.1, 1.0), (0.5, 0.0), (0.9, 1.0)], [(0.28, 0.6), (0.72, 0.6)]],
    "C": [[(float(x), float(y)) for x, y in _ARC]],
    "E": [[(0.85, 0.0), (0.15, 0.0), (0.15, 1.0), (0.85, 1.0)], [(0.15, 0.5), (0.7, 0.5)]],
    "H": [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.85, 1.0)], [(0.15, 0.5), (0.85, 0.5)]],
    "K": [[(0.2, 0.0), (0.2, 1.0)], [(0.85, 0.0), (0.2, 0.55)], [(0.4, 0.4), (0.85, 1.0)]],
    "L": [[(0.2, 0.0), (0.2, 1.0), (0.85, 1.0)]],
    "M": [[(0.1, 1.0), (0.1, 0.0), (0.5, 0.6), (0.9, 0.0), (0.9, 1.0)]],
    "N": [[(0.15, 1.0), (0.15, 0.0), (0.85, 1.0), (0.85, 0.0)]],
    "T": [[(0.1, 0.0), (0.9, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
    "V": [[(0.1, 0.0), (0.5, 1.0), (0.9, 0.0)]],
    "X": [[(0.1, 0.0), (0.9, 1.0)], [(0.9, 0.0), (0.1, 1.0)]],
    "Z": [[(0.1, 0.0), (0.9, 0.0), (0.1, 1.0), (0.9, 1.0)]],
}
PER_CLASS = 150
SEED = 20261205
_BITMAP = 32   # drawn at 32x32, counted in 4x4 blocks


def _draw(strokes: list[list[tuple[float, float]]], rng: np.random.Generator) -> np.ndarray:
    """One glyph: ``(8, 8)`` ``uint8`` ink counts 0..16 of a jittered drawing of ``strokes``."""
    angle = rng.uniform(-0.2, 0.2)                      # radians, about +-11 degrees
    sx, sy = rng.uniform(0.65, 0.95), rng.uniform(0.75, 0.95)
    shear = rng.uniform(-0.15, 0.15)
    c, s = np.cos(angle), np.sin(angle)
    m = np.array([[c, -s], [s, c]]) @ np.array([[sx, shear], [0.0, sy]])
    shift = rng.uniform(-0.06, 0.06, size=2)
    width = int(rng.integers(3, 6))                     # stroke width in bitmap pixels
    img = Image.new("1", (_BITMAP, _BITMAP), 0)
    draw = ImageDraw.Draw(img)
    for line in strokes:
        pts = (np.asarray(line) - 0.5) @ m.T + 0.5 + shift
        px = [(float(x), float(y)) for x, y in pts * (_BITMAP - 1)]
        draw.line(px, fill=1, width=width, joint="curve")
    bits = np.asarray(img, dtype=np.uint8)
    return bits.reshape(8, 4, 8, 4).sum(axis=(1, 3)).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _glyphs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    images, labels = [], []
    for k, strokes in enumerate(LETTERS.values()):
        for _ in range(PER_CLASS):
            images.append(_draw(strokes, rng))
            labels.append(k)
    counts = np.stack(images)
    return np.rint(counts * (255.0 / 16.0)).astype(np.uint8)[..., None], np.asarray(labels, dtype=np.int64)


def load_glyphs() -> ItemSet:
    """All 1800 glyphs as ``(1800, 8, 8, 1)`` uint8 (0..16 ink counts scaled to 0..255, as the
    digits), classes 'A' .. 'Z' of :data:`LETTERS`, 150 each, in class order."""
    images, labels = _glyphs()
    return ItemSet(images.copy(), labels.copy(), np.full(len(labels), STRUCTURED, dtype=object),
                   list(LETTERS), name="glyphs")
