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
