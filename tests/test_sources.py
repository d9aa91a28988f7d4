"""Sources, the mixture builder, content complexity and the classical source coders."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from PIL import Image

from simulator.classical import source_coding
from simulator.errors import InputError
from simulator.metrics import content_complexity
from simulator.scenario import SourceConfig
from simulator.sources import build_mixture, load_dataset, load_items
from simulator.sources.base import ItemSet
from simulator.sources.mixture import shuffle_patches, shuffle_pixels


def test_complexity_structured_only_is_class_entropy():
    # 2 classes with 3 and 1 items: H = -(3/4 ln 3/4 + 1/4 ln 1/4)
    labels = np.array([0, 0, 0, 1])
    h = content_complexity(labels, np.zeros(4, bool), 512)
    assert h == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), abs=1e-12)


def test_complexity_with_memorizable_items_by_hand():
    # N = 5: class 0 x2, class 1 x1, 2 memorizable items of 64 raw bits each.
    # H = -(2/5 ln 2/5) - (1/5 ln 1/5) - (2/5 ln 2/5) + (2/5) 64 ln 2
    labels = np.array([0, 0, 1, 7, 8])
    mem = np.array([False, False, False, True, True])
    by_hand = -2 * (0.4 * math.log(0.4)) - 0.2 * math.log(0.2) + 0.4 * 64 * math.log(2)
    assert content_complexity(labels, mem, 64) == pytest.approx(by_hand, abs=1e-12)


def _synthetic(n: int, classes: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """A source of ``n`` items with exact shares: ``share`` memorizable, the rest spread evenly
    over ``classes`` (``n`` a multiple of what makes the shares whole)."""
    n_m = round(share * n)
    labels = np.concatenate([np.arange(n - n_m) % classes, classes + np.arange(n_m)])
    return labels, np.arange(n) >= n - n_m


@pytest.mark.parametrize("classes,share", [(4, 0.0), (10, 0.2), (7, 0.4)])
def test_complexity_does_not_grow_with_the_sample_size(classes, share):
    """The same shares at N = 500 and N = 5000 (and 1000) give the same H (within 1%; exactly
    here, the shares being exact); the former ``rho ln N`` term grew by ``rho ln 10``."""
    item_bits = 8 * 8 * 8
    small = content_complexity(*_synthetic(700 if classes == 7 else 500, classes, share), item_bits)
    large = content_complexity(*_synthetic(4900 if classes == 7 else 5000, classes, share), item_bits)
    assert large == pytest.approx(small, rel=0.01)


def test_complexity_rises_with_classes_and_with_the_memorizable_share():
    item_bits = 8 * 8 * 8
    by_classes = [content_complexity(*_synthetic(4200, k, 0.2), item_bits) for k in (2, 4, 6, 10)]
    by_share = [content_complexity(*_synthetic(5000, 10, f), item_bits) for f in (0.0, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(by_classes, by_classes[1:])), by_classes
    assert all(a < b for a, b in zip(by_share, by_share[1:])), by_share


def test_complexity_of_digits_subsamples_barely_moves():
    """Real digits with 20% shuffled items: N = 500 against all 1797 items, within 1%."""
    from simulator.context import RunContext

    ctx = RunContext(seed=0, cache_dir=None, progress=False)
    full = load_items(SourceConfig(dataset="digits", memorizable={"kind": "shuffled", "fraction": 0.2}), ctx)
    part = load_items(SourceConfig(dataset="digits", max_items=500,
                                   memorizable={"kind": "shuffled", "fraction": 0.2}), ctx)
    h = [content_complexity(s.labels, s.memorizable, 8 * 8 * 8) for s in (part, full)]
    assert h[0] == pytest.approx(h[1], rel=0.01), h


def test_digits_source():
    items = load_dataset("digits")
    assert items.images.shape == (1797, 8, 8, 1) and items.images.dtype == np.uint8
    assert items.images.max() == 255 and items.num_classes == 10
    assert np.bincount(items.labels).min() >= 170


@pytest.mark.parametrize("kind", ["noise", "shuffled", "patches", "ood"])
def test_mixture_injects_fraction_and_keeps_ground_truth(ctx, kind):
    cfg = SourceConfig(dataset="digits", memorizable={"kind": kind, "fraction": 0.25})
    items = load_items(cfg, ctx)
    assert len(items) == 1797
    mem = items.memorizable
    assert mem.sum() == round(0.25 * 1797)
    assert set(items.kinds[mem]) == {kind}
    # Each memorizable item is a content element of its own.
    assert len(np.unique(items.labels[mem])) == mem.sum()
    assert items.labels[mem].min() >= items.num_classes
    base = load_dataset("digits")
    if kind == "shuffled":  # same pixel multiset as its origin image, different arrangement
        i = np.flatnonzero(mem)[0]
        orig = base.images[items.origin[i]]
        assert np.array_equal(np.sort(items.images[i].ravel()), np.sort(orig.ravel()))
    # Same seed, same mixture; another seed, another one.
    again = load_items(cfg, ctx)
    assert np.array_equal(again.images, items.images) and np.array_equal(again.kinds, items.kinds)
    other = load_items(cfg, ctx.with_seed(1))
    assert not np.array_equal(other.images, items.images)


def test_pixel_and_patch_shuffles_are_permutations(ctx):
    rng = ctx.rng("t")
    img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    s = shuffle_pixels(img, rng)
    assert sorted(map(tuple, s.reshape(-1, 3))) == sorted(map(tuple, img.reshape(-1, 3)))
    p = shuffle_patches(img, rng)
    tiles = lambda a: sorted(a.reshape(8, 4, 8, 4, 3).transpose(0, 2, 1, 3, 4).reshape(64, -1).tobytes()[i * 48:(i + 1) * 48] for i in range(64))  # noqa: E731
    assert tiles(p) == tiles(img) and not np.array_equal(p, img)


def test_mixture_fraction_bounds(ctx):
    base = load_dataset("digits").subset(np.arange(10))
    with pytest.raises(InputError, match="fraction"):
        build_mixture(base, "noise", 1.5, ctx.rng("x"))
    all_mem = build_mixture(base, "noise", 1.0, ctx.rng("x"))
    assert all_mem.memorizable.all()


@pytest.mark.parametrize("coder", ["raw", "png", "zlib"])
@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3)])
def test_source_coders_round_trip_exactly(ctx, coder, shape):
    rng = ctx.rng("img")
    for _ in range(5):
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        data = source_coding.encode(img, coder)
        assert np.array_equal(source_coding.decode(data, coder, shape), img)
    if coder == "raw":
        assert len(data) == int(np.prod(shape))


def test_png_is_real_png_and_corruption_is_detected():
    img = np.zeros((8, 8, 1), np.uint8)
    data = source_coding.encode(img, "png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(source_coding.CorruptStream):
        source_coding.decode(data[:20], "png", (8, 8, 1))


def _write_cifar(root, n_per_batch=7, batches=("data_batch_1", "test_batch")):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    want = []
    for name in batches:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, size=n_per_batch))
        with open(root / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n_per_batch}, fh)
        want.append((data, labels))
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)], b"num_cases_per_batch": n_per_batch}, fh)
    return want


def test_cifar_pickle_loader_reads_the_real_layout(tmp_path):
    want = _write_cifar(tmp_path / "cifar")
    items = load_dataset(f"cifar10:{tmp_path / 'cifar'}")
    assert items.images.shape == (14, 32, 32, 3)
    assert items.class_names == [f"c{i}" for i in range(10)]
    data, labels = want[0]
    # Row layout: 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    assert items.images[0, 0, 1, 0] == data[0, 1] and items.images[0, 2, 0, 1] == data[0, 1024 + 64]
    assert items.images[0, 31, 31, 2] == data[0, 3071]
    assert list(items.labels[:7]) == labels


def test_imagefolder_loader_on_written_folder(tmp_path):
    rng = np.random.default_rng(1)
    for c in ("b", "a"):
        (tmp_path / c).mkdir()
        for j in range(3):
            Image.fromarray(rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)).save(tmp_path / c / f"{j}.png")
    items = load_dataset(f"imagefolder:{tmp_path}")
    assert items.class_names == ["a", "b"]
    assert items.images.shape == (6, 6, 5, 3)
    assert list(items.labels) == [0, 0, 0, 1, 1, 1]
    assert np.array_equal(items.images[3], np.asarray(Image.open(tmp_path / "b" / "0.png")))


def test_imagefolder_loader_reads_cifar10_test_split(cifar_test_dir):
    items = load_dataset(f"imagefolder:{cifar_test_dir}")
    assert items.images.shape == (10000, 32, 32, 3)
    assert items.num_classes == 10 and np.bincount(items.labels).tolist() == [1000] * 10
    assert items.class_names[0] == "airplane"


def test_imagefolder_errors_name_the_item(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    bad = tmp_path / "bad" / "cls"
    bad.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(bad / "ok.png")
    (bad / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(InputError, match="broken.png"):
        load_dataset(f"imagefolder:{tmp_path / 'bad'}")


def test_itemset_checks_shapes():
    with pytest.raises(ValueError):
        ItemSet(np.zeros((2, 4, 4, 1), np.float32), [0, 0], ["structured"] * 2, ["a"])


def test_skip_per_class_leaves_out_the_first_items_of_each_class(ctx):
    full = load_dataset("digits")
    counts = np.bincount(full.labels)
    skip = int(counts.min()) - 3
    items = load_items(SourceConfig(dataset="digits", skip_per_class=skip), ctx)
    assert len(items) == int((counts - skip).sum())
    kept = {tuple(x.ravel()) for x in items.images}
    for k in range(len(counts)):  # none of a class's first `skip` items, all of its others
        at = np.flatnonzero(full.labels == k)
        assert not any(tuple(full.images[i].ravel()) in kept for i in at[:skip] if
                       not any(np.array_equal(full.images[i], full.images[j]) for j in at[skip:]))
        assert all(tuple(full.images[i].ravel()) in kept for i in at[skip:])
    with pytest.raises(InputError, match="skip_per_class = 100000 leaves no item"):
        load_items(SourceConfig(dataset="digits", skip_per_class=100000), ctx)


def test_folds_are_disjoint_parts_of_each_class_that_cover_it(ctx):
    full = load_dataset("digits")
    counts = np.bincount(full.labels)
    parts = [load_items(SourceConfig(dataset="digits", skip_per_class=10, folds=4, fold=f), ctx) for f in range(4)]
    for f, part in enumerate(parts):  # part f of a class: its positions 10 + f, 14 + f, ... in the loader's order
        assert np.array_equal(np.bincount(part.labels, minlength=len(counts)), -(-(counts - 10 - f) // 4))
    position = {}
    for k in range(len(counts)):
        for r, i in enumerate(np.flatnonzero(full.labels == k)):
            position.setdefault(full.images[i].tobytes(), set()).add(r)
    for f, part in enumerate(parts):
        assert all(any(r >= 10 and (r - 10) % 4 == f for r in position[x.tobytes()]) for x in part.images)
    assert sum(len(p) for p in parts) == int((counts - 10).sum())
    with pytest.raises(ValueError, match="fold = 4 must be below folds = 4"):
        SourceConfig(dataset="digits", folds=4, fold=4)


def test_take_per_class_keeps_the_first_items_of_each_class_and_complements_skip(ctx):
    full = load_dataset("digits")
    first = {k: set(np.flatnonzero(full.labels == k)[:50].tolist()) for k in range(10)}
    head = load_items(SourceConfig(dataset="digits", take_per_class=50), ctx)
    rest = load_items(SourceConfig(dataset="digits", skip_per_class=50), ctx)
    assert set(head.origin.tolist()) == set().union(*first.values())
    assert not set(head.origin.tolist()) & set(rest.origin.tolist())
    assert len(head) + len(rest) == len(full)
    middle = load_items(SourceConfig(dataset="digits", skip_per_class=20, take_per_class=30, folds=4, fold=1), ctx)
    expected = {int(np.flatnonzero(full.labels == k)[r]) for k in range(10) for r in range(21, 50, 4)}
    assert set(middle.origin.tolist()) == expected
    with pytest.raises(InputError, match=r"has 500 \(after take_per_class = 50\)"):
        load_items(SourceConfig(dataset="digits", take_per_class=50, max_items=501), ctx)


def test_glyphs_are_a_fixed_digit_like_source_with_learnable_classes():
    from simulator.sources.glyphs import LETTERS, PER_CLASS

    a, b = load_dataset("glyphs"), load_dataset("glyphs")
    assert a.images.shape == (len(LETTERS) * PER_CLASS, 8, 8, 1) and np.array_equal(a.images, b.images)
    assert np.array_equal(np.bincount(a.labels), np.full(len(LETTERS), PER_CLASS))
    levels = np.rint(np.arange(17) * 255.0 / 16.0).astype(np.uint8)  # the digits' 0..16 ink counts
    assert np.isin(a.images, levels).all() and (a.images.reshape(len(a), -1).max(axis=1) > 0).all()
    digits = {x.tobytes() for x in load_dataset("digits").images}
    assert not any(x.tobytes() in digits for x in a.images)
    # the classes are structure, not noise: nearest class mean on raw pixels (fitted on the even
    # items of each class, judged on the odd ones) is far above chance (1/12)
    x = a.images.reshape(len(a), -1).astype(np.float64)
    fit = np.arange(len(a)) % 2 == 0
    means = np.stack([x[fit & (a.labels == k)].mean(axis=0) for k in range(len(LETTERS))])
    guess = np.argmin(((x[~fit, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (guess == a.labels[~fit]).mean() > 0.6
