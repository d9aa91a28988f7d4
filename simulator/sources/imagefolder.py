"""Image folders: ``<dir>/<class name>/<image file>``, classes sorted by name.

How an image becomes items (docs/scenarios.md, "How images are read"):

- the folder holds only class folders, each holds only image files (no sub-folders); names
  starting with ``.`` are ignored; an image file is one whose extension Pillow registers
  (``PIL.Image.registered_extensions()``); anything else is refused, naming it;
- every image's header is read first (:func:`scan`, shared with :func:`inspect_imagefolder`):
  its size (at most ``max_pixels``, all images one size) and its channel layout
  (:func:`classify`: grey, grey+alpha, rgb or rgba); one layout per folder unless
  ``convert`` is ``grey`` or ``rgb``; alpha only with a conversion, which composites over black;
- then each image is decoded: 16-bit grey scaled to 8 bits by ``round(v * 255 / 65535)``.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from .base import CONVERTS, MAX_PIXELS, STRUCTURED, DatasetInfo, ItemSet, composite_over_black, to_channels

GREY, GREY_ALPHA, RGB, RGBA = "grey", "grey+alpha", "rgb", "rgba"
#: channels of each layout as decoded (before compositing and conversion)
LAYOUT_CHANNELS = {GREY: 1, GREY_ALPHA: 2, RGB: 3, RGBA: 4}

WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit grey (and 32-bit integer, values <= 65535)
GREY_MODES = ("1", "L") + WIDE_GREY
COLOUR_MODES = ("RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P")  # read through Pillow's convert("RGB")
REFUSED_MODES = {"F": "32-bit floating point", "I;32": "32-bit integer", "I;32L": "32-bit integer",
                 "I;32B": "32-bit integer", "I;32N": "32-bit integer"}


def image_extensions() -> set[str]:
    """The file extensions (lower case, with the dot) of every format Pillow can open now."""
    Image.init()
    return set(Image.registered_extensions())


def _grey_palette(im: Image.Image) -> bool:
    """Whether every colour of a palette image's palette is a grey (R = G = B)."""
    palette = im.getpalette() or []
    triples = np.asarray(palette[: 3 * (len(palette) // 3)], dtype=np.int64).reshape(-1, 3)
    return bool(len(triples)) and bool((triples[:, 0] == triples[:, 1]).all() and (triples[:, 1] == triples[:, 2]).all())


def classify(im: Image.Image, path: Path) -> str:
    """The channel layout of an opened (not yet decoded) image, from its mode and header:
    ``grey`` (modes 1, L, I;16*, I), ``grey+alpha`` (LA, La, or grey with a transparent value),
    ``rgb`` (RGB, RGBX, CMYK, YCbCr, LAB, HSV, P), ``rgba`` (RGBA, RGBa, PA, or RGB/P with a
    transparent colour); a palette image whose palette is all grey is ``grey``. Other modes (F,
    32-bit integers outside PGM/PPM) and files of several frames are refused naming the file."""
    mode = im.mode
    transparent = "transparency" in im.info
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        raise InputError(f"holds {frames} frames (an animation or a multi-page file); semsim reads one image per file: "
                         "save each frame as a file of its own", where=str(path))
    if mode == "I" and im.format != "PPM":  # PGM/PPM: Pillow scales any maxval to 0..65535 (16-bit)
        raise InputError(f"image mode I (32-bit integer, {im.format or 'unknown'} file) has no defined bit depth "
                         "(8-bit values stored in 32 bits look like 16-bit ones): save it as 8- or 16-bit grey",
                         where=str(path))
    if im.format == "EPS":
        from PIL import EpsImagePlugin

        if not EpsImagePlugin.has_ghostscript():
            raise InputError("an EPS image needs Ghostscript to be read, and it is not installed: convert it to PNG",
                             where=str(path))
    if mode == "P" and not transparent and _grey_palette(im):
        return GREY
    if mode == "RGBA" and any(str(getattr(t, "args", "")).startswith("LA") for t in getattr(im, "tile", [])):
        return GREY_ALPHA  # a 16-bit grey+alpha PNG, which Pillow opens as RGBA
    if mode in GREY_MODES:
        return GREY_ALPHA if transparent else GREY
    if mode in ("LA", "La"):
        return GREY_ALPHA
    if mode in COLOUR_MODES:
        return RGBA if transparent and mode in ("RGB", "P") else RGB
    if mode in ("RGBA", "RGBa", "PA"):
        return RGBA
    what = f" ({REFUSED_MODES[mode]})" if mode in REFUSED_MODES else ""
    raise InputError(f"image mode {mode}{what} is not supported: semsim reads 1-, 8- and 16-bit grey and 8-bit "
                     "colour images; save it as 8- or 16-bit grey, or 8-bit RGB", where=str(path))


def _too_large(pixels: int, max_pixels: int, size: str = "") -> str:
    if pixels > max_pixels:
        return (f"image {size}has {pixels} pixels, more than source.max_pixels = {max_pixels}; shrink the image "
                f"or raise source.max_pixels")
    return (f"image {size}has {pixels} pixels, more than Pillow's decompression-bomb limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS} (which semsim does not change); shrink the image")


def _open(path: Path, max_pixels: int) -> Image.Image:
    """``Image.open(path)`` (header only), as one-line :class:`InputError` if it fails or the
    image has more than ``max_pixels`` pixels. The caller closes it."""
    with warnings.catch_warnings():  # images above PIL's warning limit are refused just below
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as err:
            found = re.search(r"\((\d+) pixels\)", str(err))
            raise InputError(_too_large(int(found.group(1)) if found else 2 * Image.MAX_IMAGE_PIXELS + 1, max_pixels),
                             where=str(path)) from None
        except Exception as err:  # a corrupt or foreign file, whatever the plugin raises
            raise InputError(f"cannot read image ({str(err) or type(err).__name__})", where=str(path)) from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise InputError(_too_large(w * h, max_pixels, f"{w}x{h} "), where=str(path))
    return im


def _entries(folder: Path) -> list[Path]:
    """The non-hidden entries of ``folder``, sorted."""
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise InputError(f"cannot list folder ({err.strerror or err})", where=str(folder)) from None


def _listing(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and ``(file, label)`` of an image folder; anything that is not
    ``<root>/<class>/<image>`` is refused."""
    if not root.is_dir():
        raise InputError("image folder not found", where=f"source.dataset: {root}")
    extensions = image_extensions()
    entries = _entries(root)
    for p in entries:
        # an image beside the class folders would be lost; other files there (a README, a
        # licence) are not images and are left alone
        if not p.is_dir() and p.suffix.lower() in extensions:
            raise InputError(f"image {p.name} lies directly in the image folder: images must lie in class folders "
                             "<dir>/<class name>/<image> (names starting with '.' are ignored)", where=str(root))
        if p.is_symlink() and not p.exists():  # a class folder whose target is gone would be lost
            raise InputError(f"{p.name} is a broken link (a class folder whose target is missing?)", where=str(root))
    entries = [p for p in entries if p.is_dir()]
    classes = sorted(p.name for p in entries)
    if not classes:
        raise InputError("image folder is empty: expected <dir>/<class name>/<image> files (e.g. .png, .jpg, .tif; "
                         "any extension Pillow reads)", where=f"source.dataset: {root}")
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        folder = root / name
        images = []
        for p in _entries(folder):
            if p.is_dir():
                raise InputError(f"sub-folder {p.name} in class folder {name}: images must lie directly in "
                                 "<dir>/<class name>/ (nested folders are not read)", where=str(folder))
            if not p.is_file():
                raise InputError("not a regular file (a broken or looping link, or a special file)", where=str(p))
            if p.suffix.lower() not in extensions:
                raise InputError(f"not an image: Pillow reads no '{p.suffix or '(no extension)'}' files; move it out "
                                 "of the image folder or give it a name starting with '.'", where=str(p))
            images.append((p, label))
        if not images:
            raise InputError(f"class folder {name} is empty: it holds no images", where=str(folder))
        files += images
    seen: dict[Path, Path] = {}
    for p, _ in files:  # links must not make one image two items (in two classes, or twice in one)
        real = p.resolve()
        if real in seen:
            raise InputError(f"{seen[real]} and {p} are the same file (through a link); semsim reads each image once: "
                             "remove one of them, or copy the file if two items are meant", where=f"imagefolder:{root}")
        seen[real] = p
    return classes, files


@dataclass
class Scan:
    """An image folder as its headers describe it (see :func:`scan`)."""

    root: Path
    classes: list[str]
    files: list[tuple[Path, int]]
    layouts: list[str]
    size: tuple[int, int]  # (width, height)
    channels: int  # C of the items after conversion

    def info(self) -> DatasetInfo:
        counts = np.bincount([c for _, c in self.files], minlength=len(self.classes))
        return DatasetInfo(f"imagefolder:{self.root}", list(self.classes), [int(c) for c in counts],
                           (self.size[1], self.size[0], self.channels))


def _check_convert(convert: str) -> None:
    if convert not in CONVERTS:
        raise InputError(f"must be one of {', '.join(CONVERTS)} (got {convert!r})", where="source.convert")


def _header(im: Image.Image, path: Path, size: tuple[int, int] | None) -> str:
    """The layout of one opened image (:func:`classify`), its size checked against ``size``,
    the folder's first image's (None for the first image)."""
    layout = classify(im, path)
    if size is not None and im.size != size:
        raise InputError(f"image is {im.size[0]}x{im.size[1]} but the folder's first image is "
                         f"{size[0]}x{size[1]}; all images must have one size", where=str(path))
    return layout


def _channels(root: Path, files: list[tuple[Path, int]], layouts: list[str], convert: str) -> int:
    """C of the items: one layout per folder without alpha (``convert = "none"``), else the
    conversion's (1 for ``grey``, 3 for ``rgb``)."""
    if convert != "none":
        return 1 if convert == "grey" else 3
    where = f"imagefolder:{root}"
    first: dict[str, Path] = {}
    for (path, _), layout in zip(files, layouts):
        first.setdefault(layout, path.relative_to(root))
    if len(first) > 1:
        (la, a), (lb, b) = list(first.items())[:2]
        raise InputError(f"mixed channel layouts: {a} is {la}, {b} is {lb}; set source.convert = \"grey\" or "
                         "\"rgb\" to convert them all (images with alpha are composited over black)", where=where)
    layout = layouts[0]
    if layout in (GREY_ALPHA, RGBA):
        raise InputError(f"{first[layout]} is {layout}: semsim codes 1 or 3 channels and never drops alpha "
                         "silently; set source.convert = \"grey\" or \"rgb\" to composite the images over black",
                         where=where)
    return 1 if layout == GREY else 3


def scan(directory: str | Path, convert: str = "none", max_pixels: int = MAX_PIXELS) -> Scan:
    """Read the listing and every image's header (nothing is decoded) and check them: the
    folder layout, each header readable, at most ``max_pixels`` pixels, one size, one channel
    layout (unless ``convert`` is ``grey`` or ``rgb``) and no alpha without a conversion."""
    _check_convert(convert)
    root = Path(directory)
    classes, files = _listing(root)
    layouts: list[str] = []
    size = None
    for path, _ in files:
        with _open(path, max_pixels) as im:
            layouts.append(_header(im, path, size))
            size = size or im.size
    return Scan(root, classes, files, layouts, size, _channels(root, files, layouts, convert))  # type: ignore[arg-type]


def _scale16(values: np.ndarray, path: Path, mode: str) -> np.ndarray:
    """16-bit grey values to 8 bits: ``round(v * 255 / 65535)`` in exact integers."""
    v = values.astype(np.int64)
    if v.size and (v.min() < 0 or v.max() > 65535):
        raise InputError(f"image mode {mode} (32-bit integer) has values {v.min()}..{v.max()} outside 0..65535: "
                         "semsim reads 1-, 8- and 16-bit grey images; save it as 8- or 16-bit", where=str(path))
    return ((v * 255 + 32767) // 65535).astype(np.uint8)


def decode(im: Image.Image, path: Path, layout: str) -> np.ndarray:
    """The pixels of one opened image of the given layout, ``(H, W, C)`` uint8 with C = 1
    (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA); 16-bit grey scaled to 8 bits."""
    try:
        im.load()
        mode = im.mode
        if mode in WIDE_GREY:
            raw = np.asarray(im)
            grey = _scale16(raw, path, mode)[..., None]
            if layout == GREY_ALPHA:
                alpha = np.where(raw == im.info["transparency"], 0, 255).astype(np.uint8)[..., None]
                return np.concatenate([grey, alpha], axis=-1)
            return grey
        target = {GREY: "L", GREY_ALPHA: "LA", RGB: "RGB", RGBA: "RGBA"}[layout]
        out = np.asarray(im.convert(target), dtype=np.uint8)
    except InputError:
        raise
    except Exception as err:  # truncated or corrupt data behind a good header
        raise InputError(f"cannot read image ({str(err) or type(err).__name__})", where=str(path)) from None
    return out.reshape(out.shape[0], out.shape[1], LAYOUT_CHANNELS[layout])


def inspect_imagefolder(directory: str | Path, convert: str = "none", max_pixels: int = MAX_PIXELS) -> DatasetInfo:
    """What :func:`load_imagefolder` would load, from the headers only (see :func:`scan`). A
    file whose header is fine but whose data is truncated or corrupt, and a 32-bit integer
    image with values above 65535, are only found by loading."""
    info = scan(directory, convert, max_pixels).info()
    _check_memory(Path(directory), info.items, info.shape)
    return info


#: The items (8-bit) may take at most this share of the memory available when they are
#: loaded: training and coding hold several float copies of them.
MEMORY_SHARE = 1 / 8


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` of /proc/meminfo, else
    free physical pages); ``None`` where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop returns


def _check_memory(root: Path, n: int, shape: tuple[int, ...]) -> None:
    """Refuse, before anything is allocated, a folder whose items would not fit in memory."""
    need = n * int(np.prod(shape))
    have = available_memory()
    if have is not None and need > MEMORY_SHARE * have:
        h, w, c = shape
        raise InputError(f"{n} images of {w}x{h}x{c} need {_size(need)} as 8-bit items, more than 1/8 of the "
                         f"{_size(have)} of memory available (training and coding hold float copies); use "
                         "fewer or smaller images", where=f"imagefolder:{root}")


def load_imagefolder(directory: str | Path, convert: str = "none", max_pixels: int = MAX_PIXELS) -> ItemSet:
    """All images under ``directory/<class>/``, as ``(N, H, W, C)`` uint8.

    Every image must have the same size and (with ``convert = "none"``) the same channel
    layout, grey (C = 1) or RGB (C = 3). ``convert = "grey"`` or ``"rgb"`` converts every image
    (alpha composited over black first, RGB to grey by ITU-R 601 luma, grey to RGB by
    repetition). See the module docstring and docs/scenarios.md for every rule.
    """
    _check_convert(convert)
    root = Path(directory)
    classes, files = _listing(root)
    images = None
    layouts: list[str] = []
    size = None
    for i, (path, _) in enumerate(files):
        with _open(path, max_pixels) as im:
            layout = _header(im, path, size)
            if convert == "none" and (layout in (GREY_ALPHA, RGBA) or (layouts and layout != layouts[0])):
                scan(root, convert, max_pixels)  # raises the folder's error, as inspect_imagefolder does
                raise AssertionError(f"{path}: layout {layout} passed the scan")
            size = size or im.size
            pixels = decode(im, path, layout)
        if layout in (GREY_ALPHA, RGBA):
            pixels = composite_over_black(pixels)
        pixels = to_channels(pixels, convert)
        if images is None:
            _check_memory(root, len(files), pixels.shape)
            images = np.empty((len(files), *pixels.shape), dtype=np.uint8)
        images[i] = pixels
        layouts.append(layout)
    labels = np.array([c for _, c in files], dtype=np.int64)
    return ItemSet(images, labels, np.full(len(labels), STRUCTURED, dtype=object), classes,
                   name=f"imagefolder:{root}")
