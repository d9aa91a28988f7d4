"""The mixture builder: a structured source with injected memorizable items.

Memorizable kinds (design.md section 3), registered in
:data:`~simulator.registry.MEMORIZABLE_KINDS`: ``noise`` (i.i.d. uniform pixels), ``shuffled`` (a
real image with its pixels permuted), ``patches`` (a real image with its 4x4 patches
permuted), ``ood`` (an image from another source, conformed to this source's shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import InputError
from ..registry import MEMORIZABLE_KINDS
from .base import ItemSet

PATCH = 4


def conform(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Resize ``(N, h, w, c)`` uint8 images to ``shape = (H, W, C)`` (bilinear; grey <-> RGB)."""
    h, w, c = shape
    out = np.empty((len(images), h, w, c), dtype=np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img, mode="L" if img.shape[-1] == 1 else "RGB")
        pil = pil.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
        out[i] = np.asarray(pil, dtype=np.uint8).reshape(h, w, c)
    return out


def shuffle_pixels(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Permute the pixel positions of one ``(H, W, C)`` image (all channels alike)."""
    h, w, c = image.shape
    flat = image.reshape(h * w, c)
    return flat[rng.permutation(h * w)].reshape(h, w, c)


def shuffle_patches(image: np.ndarray, rng: np.random.Generator, patch: int = PATCH) -> np.ndarray:
    """Permute the ``patch x patch`` tiles of one ``(H, W, C)`` image (H, W multiples of patch)."""
    h, w, c = image.shape
    gh, gw = h // patch, w // patch
    tiles = image.reshape(gh, patch, gw, patch, c).transpose(0, 2, 1, 3, 4).reshape(gh * gw, patch, patch, c)
    tiles = tiles[rng.permutation(gh * gw)]
    return tiles.reshape(gh, gw, patch, patch, c).transpose(0, 2, 1, 3, 4).reshape(h, w, c)


@dataclass(frozen=True)
class MemorizableKind:
    """A kind of injected memorizable item.

    ``make(count, base, rng, ood)`` returns ``(images (count, H, W, C) uint8, origin (count,)
    int64)`` shaped like ``base``; origin indexes the image of ``base`` (or of ``ood``) the item
    was made from, -1 when made from nothing. ``needs_ood``: draws from
    ``source.memorizable.ood_dataset``.
    """

    make: Callable[[int, ItemSet, np.random.Generator, ItemSet | None], tuple[np.ndarray, np.ndarray]]
    description: str
    needs_ood: bool = False


def _noise(count, base, rng, ood):
    return rng.integers(0, 256, size=(count, *base.shape), dtype=np.uint8), np.full(count, -1, dtype=np.int64)


def _permuted(fn):
    def make(count, base, rng, ood):
        origin = rng.choice(len(base), size=count, replace=count > len(base))
        return np.stack([fn(base.images[i], rng) for i in origin]), origin.astype(np.int64)
    return make


def _patches(count, base, rng, ood):
    h, w, _ = base.shape
    if h % PATCH or w % PATCH:
        raise InputError(f"kind 'patches' needs image sides that are multiples of {PATCH} (got {h}x{w})",
                         where="source.memorizable.kind")
    return _permuted(shuffle_patches)(count, base, rng, ood)


def _ood(count, base, rng, ood):
    if ood is None or len(ood) == 0:
        raise InputError("kind 'ood' needs a non-empty source.memorizable.ood_dataset", where="source.memorizable")
    origin = rng.choice(len(ood), size=count, replace=count > len(ood))
    return conform(ood.images[origin], base.shape), origin.astype(np.int64)


MEMORIZABLE_KINDS.register("noise", MemorizableKind(_noise, "i.i.d. uniform pixels"))
MEMORIZABLE_KINDS.register("shuffled", MemorizableKind(_permuted(shuffle_pixels), "a real image, pixels permuted"))
MEMORIZABLE_KINDS.register("patches", MemorizableKind(_patches, f"a real image, {PATCH}x{PATCH} tiles permuted"))
MEMORIZABLE_KINDS.register("ood", MemorizableKind(_ood, "an image of another source, conformed to this one's shape",
                                                  needs_ood=True))


def make_memorizable(kind: str, count: int, base: ItemSet, rng: np.random.Generator,
                     ood: ItemSet | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` memorizable items of the registered ``kind`` shaped like ``base`` (see
    :class:`MemorizableKind`)."""
    try:
        spec = MEMORIZABLE_KINDS.get(kind)
    except ValueError as err:
        raise InputError(str(err), where="source.memorizable.kind") from None
    if count == 0:
        return np.zeros((0, *base.shape), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    return spec.make(count, base, rng, ood)


def build_mixture(base: ItemSet, kind: str, fraction: float, rng: np.random.Generator,
                  ood: ItemSet | None = None) -> ItemSet:
    """Replace a share ``fraction`` of ``base``'s N items by memorizable items, then shuffle.

    The result has the same N items: ``N_m = round(fraction * N)`` memorizable ones (each its
    own content element, labels ``num_classes + j``) and ``N - N_m`` structured items drawn
    without replacement from ``base``. The arrival order is a random permutation.
    """
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"must lie in [0, 1] (got {fraction})", where="source.memorizable.fraction")
    n = len(base)
    n_m = int(round(fraction * n))
    keep = np.sort(rng.choice(n, size=n - n_m, replace=False))
    mem_images, mem_origin = make_memorizable(kind, n_m, base, rng, ood)
    images = np.concatenate([base.images[keep], mem_images])
    labels = np.concatenate([base.labels[keep], base.num_classes + np.arange(n_m, dtype=np.int64)])
    kinds = np.concatenate([base.kinds[keep], np.full(n_m, kind, dtype=object)])
    origin = np.concatenate([base.origin[keep], mem_origin])
    order = rng.permutation(n)
    return ItemSet(images[order], labels[order], kinds[order], list(base.class_names), origin[order], base.name)
