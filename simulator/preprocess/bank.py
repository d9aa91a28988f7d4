"""The memory bank: a FIFO queue of K stale keys with their cluster tags (MoCo-style).

Keys come from the momentum encoder and are enqueued once per training step; the oldest ones
are overwritten when the queue is full (a ring buffer). Each key carries the tag of the
cluster C_l it was assigned to, so that eq. (3) can be computed from the bank entries of each
cluster. Tags are ``-1`` until clusters are initialised.
"""

from __future__ import annotations

import torch


class MemoryBank:
    """A ring buffer of ``size`` unit keys of dimension ``dim`` and their cluster tags.

    Attributes:
        keys: ``(size, dim)`` float32; only the first :attr:`count` rows are valid until the
            bank has wrapped around once.
        tags: ``(size,)`` int64 cluster tag per row (``-1`` = none).
        ptr: the row the next key is written to.
        count: how many rows hold keys (``<= size``).

    Example:
        >>> bank = MemoryBank(4, 2)
        >>> bank.enqueue(torch.eye(2), torch.tensor([0, 1]))
        >>> bank.count, bank.ptr
        (2, 2)
    """

    def __init__(self, size: int, dim: int, device: str | torch.device = "cpu"):
        if size < 1 or dim < 1:
            raise ValueError(f"size and dim must be >= 1 (got {size}, {dim})")
        self.size = int(size)
        self.keys = torch.zeros(self.size, dim, device=device)
        self.tags = torch.full((self.size,), -1, dtype=torch.long, device=device)
        self.ptr = 0
        self.count = 0

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, tags: torch.Tensor | None = None) -> None:
        """Write a batch of keys (and tags) at the head, overwriting the oldest rows.

        A batch longer than the bank keeps only its last ``size`` keys.
        """
        keys = keys.detach()
        n = keys.shape[0]
        if tags is None:
            tags = torch.full((n,), -1, dtype=torch.long, device=keys.device)
        if n >= self.size:
            keys, tags, n = keys[-self.size:], tags[-self.size:], self.size
        idx = (self.ptr + torch.arange(n, device=self.keys.device)) % self.size
        self.keys[idx] = keys.to(self.keys)
        self.tags[idx] = tags.to(self.tags)
        self.ptr = int((self.ptr + n) % self.size)
        self.count = min(self.size, self.count + n)

    def valid_keys(self) -> torch.Tensor:
        """``(count, dim)``: the rows that hold keys."""
        return self.keys[: self.count] if self.count < self.size else self.keys

    def valid_tags(self) -> torch.Tensor:
        """``(count,)``: the tags of :meth:`valid_keys`."""
        return self.tags[: self.count] if self.count < self.size else self.tags

    @torch.no_grad()
    def retag(self, tags: torch.Tensor) -> None:
        """Replace the tags of the valid rows (e.g. after the prototypes moved)."""
        self.tags[: self.count] = tags.to(self.tags)
