"""The item set every source yields, and the checks shared by all loaders."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STRUCTURED = "structured"


@dataclass
class ItemSet:
    """A source's items, in the order they arrive at the teacher.

    Attributes:
        images: ``(N, H, W, C)`` ``uint8`` pixels (C = 1 grey or 3 RGB).
        labels: ``(N,)`` ``int64`` content-element id. Structured items carry their class
            (0..num_classes-1); each memorizable item is a content element of its own and
            carries ``num_classes + j`` for the j-th memorizable item.
        kinds: ``(N,)`` ``str`` ground truth, ``"structured"`` or a memorizable kind
            (a name of :data:`~simulator.registry.MEMORIZABLE_KINDS`). Read by metrics only,
            never by the teacher.
        class_names: names of the structured classes, indexed by label.
        origin: ``(N,)`` ``int64`` index of the item in the dataset it was made from
            (-1 for pure noise).
        name: the dataset spec it came from, for reports.
    """

    images: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    class_names: list[str]
    origin: np.ndarray = field(default=None)  # type: ignore[assignment]
    name: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.kinds = np.asarray(self.kinds, dtype=object)
        if self.origin is None:
            self.origin = np.arange(n, dtype=np.int64)
        self.origin = np.asarray(self.origin, dtype=np.int64)
        if not (len(self.labels) == len(self.kinds) == len(self.origin) == n):
            raise ValueError("images, labels, kinds and origin must have the same length")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every item."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def memorizable(self) -> np.ndarray:
        """``(N,)`` bool: ground truth, item is memorizable."""
        return self.kinds != STRUCTURED

    def subset(self, index: np.ndarray) -> "ItemSet":
        """The items at ``index`` (ints or bool mask), same class names."""
        return ItemSet(self.images[index], self.labels[index], self.kinds[index], list(self.class_names),
                       self.origin[index], self.name)


#: ``source.convert`` values: keep each dataset's own channel layout, or convert every image.
CONVERTS = ("none", "grey", "rgb")

#: Default ``source.max_pixels``: the largest image (width x height) a loader decodes, 4096 x 4096.
MAX_PIXELS = 4096 * 4096


@dataclass
class DatasetInfo:
    """What a dataset holds, as :func:`~simulator.sources.inspect_dataset` finds it without decoding.

    Attributes:
        name: the dataset spec, for reports.
        class_names: the structured classes, in label order.
        class_counts: items per class, in label order.
        shape: ``(H, W, C)`` of every item after ``source.convert``.
    """

    name: str
    class_names: list[str]
    class_counts: list[int]
    shape: tuple[int, int, int]

    @property
    def items(self) -> int:
        """Number of items."""
        return int(sum(self.class_counts))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        """One line, e.g. ``1797 items in 10 classes, 8x8 grey``."""
        h, w, c = self.shape
        return f"{self.items} items in {self.num_classes} classes, {w}x{h} {'grey' if c == 1 else 'RGB'}"

    @classmethod
    def of(cls, items: ItemSet) -> "DatasetInfo":
        """The info of a loaded dataset."""
        counts = np.bincount(items.labels, minlength=items.num_classes)[: items.num_classes]
        return cls(items.name, list(items.class_names), [int(c) for c in counts], items.shape)


def class_positions(labels: np.ndarray) -> np.ndarray:
    """``(N,)`` int64: each item's position among the items of its class, in loader order, of
    ``(N,)`` integer ``labels``."""
    labels = np.asarray(labels)
    rank = np.zeros(len(labels), dtype=np.int64)
    for k in np.unique(labels):
        at = np.flatnonzero(labels == k)
        rank[at] = np.arange(len(at))
    return rank


def first_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Sorted ``int64`` indices of the first ``n`` items of each class of ``(N,)`` ``labels``
    (loader order): what ``source.take_per_class = n`` keeps, and the zoo recipes' training items."""
    return np.flatnonzero(class_positions(labels) < n)


def composite_over_black(pixels: np.ndarray) -> np.ndarray:
    """``(..., C + 1)`` uint8 pixels whose last channel is alpha, composited over black:
    ``round(c * a / 255)`` per colour channel (exact integers), ``(..., C)`` uint8."""
    colour = pixels[..., :-1].astype(np.uint32)
    alpha = pixels[..., -1:].astype(np.uint32)
    return ((colour * alpha + 127) // 255).astype(np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB to ``(..., 1)`` uint8 grey by ITU-R 601-2 luma,
    ``L = R 299/1000 + G 587/1000 + B 114/1000``, in Pillow's fixed-point arithmetic (the very
    values of Pillow's ``convert("L")``)."""
    c = rgb.astype(np.uint32)
    return ((c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def to_channels(images: np.ndarray, convert: str) -> np.ndarray:
    """``(..., C)`` uint8 images with C = 1 (grey) or 3 (RGB), converted per ``source.convert``:
    ``none`` keeps them, ``grey`` takes the :func:`luminance` of RGB, ``rgb`` repeats grey three
    times (as Pillow's ``convert("RGB")`` does)."""
    channels = images.shape[-1]
    if convert == "grey" and channels == 3:
        return luminance(images)
    if convert == "rgb" and channels == 1:
        return np.repeat(images, 3, axis=-1)
    return images


def convert_items(items: ItemSet, convert: str) -> ItemSet:
    """``items`` with their images converted by :func:`to_channels` (the same object when nothing changes)."""
    images = to_channels(items.images, convert)
    if images is items.images:
        return items
    return ItemSet(np.ascontiguousarray(images), items.labels, items.kinds, list(items.class_names), items.origin,
                   items.name)
