"""The classical route: container-free items on the link and the per-item ``best`` coder."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.apprentice import reconstruct
from simulator.classical import payload, source_coding
from simulator.classical.codecs import BEST_MEMBERS
from simulator.classical.config import ClassicalConfig
from simulator.classical.quality import encode_to_target
from simulator.classical.streams import classical_file, encode_classical
from simulator.link.packets import packetize
from simulator.route import Route
from simulator.sources import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").images[:6]


def _decode(bits, coder, container, shape):
    return np.frombuffer(source_coding.decode(classical_file(bits, coder, container, shape), coder, shape),
                         dtype=np.uint8).reshape(shape)


@pytest.mark.parametrize("coder,quality", [("jpeg", 60), ("webp", "target"), ("best-lossless", "target"),
                                           ("png", "target")])
def test_container_free_items_decode_like_files_and_count_the_payload(digits, coder, quality):
    shape = digits.shape[1:]
    whole = encode_classical(digits, coder, quality, 20.0, container="file")
    bare = encode_classical(digits, coder, quality, 20.0, container="none")
    assert bare.container == "none" and np.array_equal(whole.quality, bare.quality, equal_nan=True)
    for i, img in enumerate(digits):
        stream = classical_file(whole.bits[i], coder, "file", shape)
        assert len(bare.bits[i]) == payload.payload_bits(coder, stream, shape) <= len(whole.bits[i])
        assert np.array_equal(_decode(bare.bits[i], coder, "none", shape), _decode(whole.bits[i], coder, "file", shape))
    assert sum(map(len, bare.bits)) < sum(map(len, whole.bits))


def test_best_takes_the_shortest_member_meeting_the_target(digits):
    digits = digits[:4]  # every member's full quality scan per item: 4 items
    shape = digits.shape[1:]
    target = 24.0
    # brute force: every member at the target, measured below as the link would carry it
    brute = [{m: encode_to_target(m, img, target) for m in BEST_MEMBERS} for img in digits]
    for container in ("none", "file"):
        got = encode_classical(digits, "best", "target", target, container=container)
        assert got.met.all()
        for i, img in enumerate(digits):
            sizes = {}
            for m, r in brute[i].items():
                if r.met:
                    sizes[m] = (len(payload.item_bits(m, r.stream, shape, r.quality)) if container == "none"
                                else 8 * len(r.stream))
            file = classical_file(got.bits[i], "best", container, shape)
            member = BEST_MEMBERS[file[0]]
            assert sizes[member] == min(sizes.values())
            assert len(got.bits[i]) == 8 + sizes[member]  # the tag, then the member's item
            rec = _decode(got.bits[i], "best", container, shape).astype(np.float64)
            mse = ((rec - img) ** 2).mean()
            assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= target


def test_best_needs_a_quality_target():
    with pytest.raises(ValueError, match='needs quality = "target"'):
        ClassicalConfig(coder="best", quality=50)
    with pytest.raises(ValueError, match="PSNR target"):
        encode_classical(np.zeros((1, 8, 8, 1), np.uint8), "best", 50, 20.0)


def test_a_damaged_container_free_item_is_lost_not_a_crash(digits):
    """The apprentice rebuilds the file from header and payload; bits that do not form one
    make the item undelivered (as a failed decode does), never an exception."""
    shape = digits.shape[1:]
    bare = encode_classical(digits, "jpeg", 50, None, container="none")
    k, hb = 256, 16
    packets, ok = [], []
    for i, bits in enumerate(bare.bits):
        b = bits.copy()
        if i % 2:  # cut the payload: no longer whole bytes after the 7-bit quality
            b = b[:-3]
        p = packetize(b, k, hb, Route.CLASSICAL.header_bit)
        packets.append(p)
        ok.append(np.ones(len(p), dtype=bool))
    rec = reconstruct(shape, packets, ok, hb, "jpeg", container="none")
    assert rec.delivered.tolist() == [True, False] * 3
    for i in (0, 2, 4):
        assert np.array_equal(rec.images[i], _decode(bare.bits[i], "jpeg", "none", shape))
