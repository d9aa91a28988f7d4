"""Image folders: ``<dir>/<class name>/<image file>``, classes sorted by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .base import STRUCTURED, ItemSet

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def load_imagefolder(directory: str | Path) -> ItemSet:
    """All images under ``directory/<class>/``, as ``(N, H, W, C)`` uint8.

    Every image must have the same size. If every image is greyscale the items have C = 1,
    else all are converted to RGB (C = 3). Files with other extensions are ignored.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError("image folder not found", where=f"source.dataset: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[tuple[Path, int]] = []
    for c, name in enumerate(classes):
        files += [(p, c) for p in sorted((root / name).iterdir()) if p.suffix.lower() in EXTENSIONS and p.is_file()]
    if not files:
        raise InputError("image folder is empty: expected <dir>/<class name>/<image> files "
                         f"with one of the extensions {', '.join(sorted(EXTENSIONS))}", where=f"source.dataset: {root}")
    decoded: list[Image.Image] = []
    size = None
    for path, _ in files:
        try:
            with Image.open(path) as im:
                im.load()
                img = im.copy()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise InputError(f"cannot read image ({err})", where=str(path)) from None
        if size is None:
            size = img.size
        elif img.size != size:
            raise InputError(f"image is {img.size[0]}x{img.size[1]} but the folder's first image is "
                             f"{size[0]}x{size[1]}; all images must have one size", where=str(path))
        decoded.append(img)
    grey = all(im.mode in ("L", "1", "I;16", "I") for im in decoded)
    mode, channels = ("L", 1) if grey else ("RGB", 3)
    arr = np.stack([np.asarray(im.convert(mode), dtype=np.uint8).reshape(size[1], size[0], channels) for im in decoded])
    labels = np.array([c for _, c in files], dtype=np.int64)
    return ItemSet(arr, labels, np.full(len(labels), STRUCTURED, dtype=object), classes, name=f"imagefolder:{root}")
