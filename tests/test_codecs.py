"""The image codecs (simulator/classical/codecs.py) and the quality search (quality.py)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import simulator.classical.codecs as codecs  # registers the codecs
from simulator.classical import quality as Q
from simulator.classical import source_coding as sc
from simulator.metrics import psnr_db
from simulator.registry import CODERS
from simulator.sources.digits import load_digits

LOSSY = ["jpeg", "webp", "avif", "heif"]
LOSSLESS = ["webp-lossless", "jpegxl-lossless", "brotli", "best-lossless"]


@lru_cache(maxsize=None)
def _digits() -> np.ndarray:
    return load_digits().images


def _synthetic(kind: int) -> np.ndarray:
    """32x32 RGB uint8: 0 smooth gradients and a disc, 1 texture and noise, 2 blocks and edges."""
    rng = np.random.default_rng(kind)
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    if kind == 0:
        img = np.stack([x * 7, y * 7, 128 + 60 * np.sin((x + y) / 5)], -1)
        img[(x - 16) ** 2 + (y - 12) ** 2 < 60] = (230, 40, 40)
        img += rng.normal(0, 4, img.shape)
    elif kind == 1:
        img = np.stack([128 + 90 * np.sin(x / 2 + c) * np.cos(y / 3) for c in range(3)], -1)
        img += rng.normal(0, 20, img.shape)
    else:
        img = np.kron(rng.integers(0, 256, (4, 4, 3)), np.ones((8, 8, 1))).astype(np.float64)
        img += rng.normal(0, 2, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _images():
    d = _digits()
    return {"digit0": d[0], "digit7": d[7], "digit42": d[42], "synth0": _synthetic(0), "synth1": _synthetic(1),
            "synth2": _synthetic(2)}


IMAGES = _images()


def _decoded(name: str, stream: bytes, image: np.ndarray) -> np.ndarray:
    return sc.decode(stream, name, image.shape)


@lru_cache(maxsize=None)
def _scan(name: str, key: str):
    """Every quality of the codec on one test image: [(quality, length, psnr)]."""
    image = IMAGES[key]
    coder = CODERS.get(name)
    lo, hi = coder.qualities
    rows = []
    for q in range(lo, hi + 1):
        stream = coder.encode_at(image, q)
        rows.append((q, len(stream), psnr_db(image, _decoded(name, stream, image))))
    return rows


def _brute(rows, target):
    ok = [r for r in rows if r[2] >= target]
    if not ok:
        return rows[-1][1], False
    return min(ok, key=lambda r: (r[1], -r[2], r[0]))[1], True


def test_all_registered_with_their_kind():
    names = CODERS.names()
    for name in LOSSY + LOSSLESS:
        assert name in names
    for name in LOSSY:
        coder = CODERS.get(name)
        assert not coder.lossless and coder.encode_at is not None
        lo, hi = coder.qualities
        assert lo <= coder.default_quality <= hi
    for name in LOSSLESS:
        assert CODERS.get(name).lossless


@pytest.mark.parametrize("name", LOSSY)
@pytest.mark.parametrize("key", ["digit7", "synth0"])
def test_lossy_round_trip_meets_the_reported_psnr(name, key):
    image = IMAGES[key]
    res = Q.encode_to_target(name, image, 30.0)
    out = _decoded(name, res.stream, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert psnr_db(image, out) == res.psnr_db
    assert res.met == (res.psnr_db >= 30.0)
    # met exactly when some quality reaches 30 dB (WebP, 4:2:0 by format, cannot on the red disc of synth0)
    assert res.met == (max(r[2] for r in _scan(name, key)) >= 30.0)
    lo, hi = CODERS.get(name).qualities
    assert lo <= res.quality <= hi
    # the default-quality encode decodes too, and the encoders are deterministic
    stream = sc.encode(image, name)
    assert stream == sc.encode(image, name)
    assert _decoded(name, stream, image).shape == image.shape


@pytest.mark.parametrize("name", LOSSLESS + ["raw", "zlib", "png"])
@pytest.mark.parametrize("key", ["digit0", "synth1", "synth2"])
def test_lossless_round_trip_is_exact(name, key):
    image = IMAGES[key]
    out = _decoded(name, sc.encode(image, name), image)
    assert out.dtype == np.uint8 and np.array_equal(out, image)
    res = Q.encode_to_target(name, image, 30.0)
    assert res.quality is None and res.met and res.psnr_db == float("inf")


@pytest.mark.parametrize("name", LOSSY)
@pytest.mark.parametrize("key", sorted(IMAGES))
def test_quality_search_equals_brute_force(name, key):
    rows = _scan(name, key)
    for target in (25.0, 30.0, 35.0, 40.0):
        res = Q.encode_to_target(name, IMAGES[key], target)
        length, met = _brute(rows, target)
        assert (len(res.stream), res.met) == (length, met), (name, key, target, res.quality)


@pytest.mark.parametrize("name", ["jpeg", "webp", "heif"])  # avif's top quality is lossless
def test_unreachable_target_gives_highest_quality_not_met(name):
    image = IMAGES["synth1"]
    res = Q.encode_to_target(name, image, 150.0)
    hi = CODERS.get(name).qualities[1]
    assert not res.met and res.quality == hi
    assert res.stream == CODERS.get(name).encode_at(image, hi)


def test_best_lossless_is_never_longer_than_a_member_plus_its_tag():
    items = list(_digits()[:60]) + [_synthetic(k) for k in range(3)]
    for image in items:
        best = sc.encode(image, "best-lossless")
        lengths = {m: len(sc.encode(image, m)) for m in codecs.BEST_LOSSLESS_MEMBERS}
        assert len(best) == 1 + min(lengths.values())
        assert all(len(best) <= 1 + n for n in lengths.values())
        member = codecs.best_lossless_tag(best)
        assert lengths[member] == min(lengths.values())
        assert best[0] == codecs.BEST_LOSSLESS_MEMBERS.index(member)
        assert np.array_equal(sc.decode(best, "best-lossless", image.shape), image)


@pytest.mark.parametrize("name", LOSSY + LOSSLESS + ["png", "zlib"])
def test_corrupt_streams_raise_corrupt_stream(name):
    image = IMAGES["synth0"]
    stream = sc.encode(image, name)
    bad = [b"", stream[: len(stream) // 2], b"\x07not an image at all" * 5]
    if name == "best-lossless":
        bad.append(bytes([250]) + stream[1:])  # no such tag
    for data in bad:
        with pytest.raises(sc.CorruptStream):
            sc.decode(data, name, image.shape)
    with pytest.raises(sc.CorruptStream):  # a valid stream, but of another shape
        sc.decode(stream, name, (16, 16, 3))


def test_unknown_codec_lists_the_allowed_names():
    with pytest.raises(ValueError) as err:
        Q.encode_to_target("bpg", IMAGES["synth0"], 30.0)
    for name in LOSSY + LOSSLESS + ["raw", "png", "zlib"]:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="allowed"):
        Q.encode_at_quality("jpeg2000", IMAGES["synth0"], 50)


@pytest.mark.parametrize("name", LOSSY)
def test_quality_out_of_range_names_the_codec_and_its_range(name):
    lo, hi = CODERS.get(name).qualities
    for bad in (lo - 1, hi + 1, 50.5, "50", True):
        with pytest.raises(ValueError, match=rf"'{name}'.*{lo}\.\.{hi}"):
            Q.encode_at_quality(name, IMAGES["synth0"], bad)
        with pytest.raises(ValueError, match=rf"'{name}'.*{lo}\.\.{hi}"):
            CODERS.get(name).encode_at(IMAGES["synth0"], bad)
    res = Q.encode_at_quality(name, IMAGES["synth0"], hi)
    assert res.quality == hi and res.met


def test_lossless_takes_no_quality_and_targets_must_be_finite():
    with pytest.raises(ValueError, match="lossless"):
        Q.encode_at_quality("png", IMAGES["synth0"], 50)
    assert Q.encode_at_quality("png", IMAGES["synth0"], None).quality is None
    with pytest.raises(ValueError, match="finite"):
        Q.encode_to_target("jpeg", IMAGES["synth0"], float("nan"))


def test_cifar_codecs_order_at_30_db(cifar_test_dir):
    """On 10 real CIFAR-10 test images: AVIF < JPEG < PNG in bits at 30 dB (the benchmark's claim, small)."""
    from PIL import Image

    files = sorted(cifar_test_dir.glob("*/*.jpg"))[::1000][:10]
    bits = {"jpeg": 0, "avif": 0, "png": 0}
    for f in files:
        with Image.open(f) as im:
            image = np.asarray(im.convert("RGB"))
        for name in bits:
            res = Q.encode_to_target(name, image, 30.0)
            assert res.met
            bits[name] += res.bits
    assert bits["avif"] < bits["jpeg"] < bits["png"], bits
