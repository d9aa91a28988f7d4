"""Every image is read as the user has it, or refused with one line (docs/scenarios.md,
"How images are read"): bit depth, channel layouts, alpha, odd folders, the size limit,
``max_items``, and the header-only inspection that ``semsim validate`` uses."""

from __future__ import annotations

import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simulator.context import RunContext
from simulator.errors import InputError
from simulator.sources import (DatasetInfo, check_source, inspect_dataset, inspect_sources, load_dataset, load_items,
                               preload)
from simulator.sources.config import SourceConfig


def png(path: Path, width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None = None) -> Path:
    """A PNG written chunk by chunk (16-bit colour, or a header claiming any size); ``rows``
    None: an IDAT that is never decoded (only the header is read before the size check)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(rows) if rows is not None else b"\x00" * 16
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def folder(root: Path, images: dict[str, Image.Image]) -> str:
    """``images`` (``"class/file"``: image) written under ``root``; the imagefolder spec."""
    for name, im in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / name)
    return f"imagefolder:{root}"


def grey8(value: int = 0) -> Image.Image:
    return Image.fromarray(np.full((8, 8), value, np.uint8))


def rgb8(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))


def mode(path: Path) -> str:
    with Image.open(path) as im:
        return im.mode


def refused(spec: str, **kw) -> str:
    """The one-line message of loading ``spec``; inspecting it raises the very same."""
    with pytest.raises(InputError) as err:
        load_dataset(spec, **kw)
    with pytest.raises(InputError) as again:
        inspect_dataset(spec, **kw)
    msg = str(err.value)
    assert str(again.value) == msg and "\n" not in msg
    return msg


# ---- bit depth ----------------------------------------------------------------------------

SIXTEEN = np.array([[0, 257, 65535, 1000, 128, 129, 32767, 32768]] * 8, dtype=np.uint16)
SCALED = (SIXTEEN.astype(np.int64) * 255 + 32767) // 65535  # round(v * 255 / 65535)


def test_16_bit_grey_is_scaled_by_the_documented_rule(tmp_path):
    assert SCALED[0].tolist() == [0, 1, 255, 4, 0, 1, 127, 128]
    spec = folder(tmp_path, {"a/x.png": Image.fromarray(SIXTEEN), "a/y.tif": Image.fromarray(SIXTEEN.astype(">u2"))})
    pgm = tmp_path / "b" / "z.pgm"  # a 16-bit PGM: Pillow's mode I
    pgm.parent.mkdir()
    pgm.write_bytes(b"P5\n8 8\n65535\n" + SIXTEEN.astype(">u2").tobytes())
    assert [mode(p) for p in sorted(tmp_path.rglob("*.*"))] == ["I;16", "I;16B", "I"]
    items = load_dataset(spec)
    assert items.shape == (8, 8, 1)
    for img in items.images:
        assert img[..., 0].tolist() == SCALED.tolist()
    k = np.arange(256, dtype=np.uint16)
    items = load_dataset(folder(tmp_path / "k", {"a/k.png": Image.fromarray((257 * k).reshape(16, 16))}))
    assert items.images.ravel().tolist() == list(range(256))  # 257 k -> k


def test_16_bit_grey_converted_to_rgb_is_scaled_first(tmp_path):
    items = load_dataset(folder(tmp_path, {"a/x.png": Image.fromarray(SIXTEEN)}), convert="rgb")
    assert items.shape == (8, 8, 3)
    assert all((items.images[0, ..., c] == SCALED).all() for c in range(3))


def test_32_bit_and_float_images_are_refused_naming_file_and_mode(tmp_path):
    big = tmp_path / "big"
    folder(big, {"a/x.tif": Image.fromarray(np.array([[0, 200]], np.int32))})  # 8-bit values in 32 bits
    for fn in (load_dataset, inspect_dataset):
        with pytest.raises(InputError) as err:
            fn(f"imagefolder:{big}")
        assert str(err.value) == (f"{big / 'a' / 'x.tif'}: image mode I (32-bit integer, TIFF file) has no defined bit "
                                  "depth (8-bit values stored in 32 bits look like 16-bit ones): save it as 8- or "
                                  "16-bit grey")
    flt = tmp_path / "flt"
    folder(flt, {"a/x.tif": Image.fromarray(np.zeros((2, 2), np.float32))})
    assert refused(f"imagefolder:{flt}") == (
        f"{flt / 'a' / 'x.tif'}: image mode F (32-bit floating point) is not supported: semsim reads 1-, 8- and "
        "16-bit grey and 8-bit colour images; save it as 8- or 16-bit grey, or 8-bit RGB")


def test_bilevel_is_0_or_255_and_8_bit_folders_read_as_stored(tmp_path):
    bits = np.random.default_rng(0).integers(0, 2, (8, 8)).astype(bool)
    grey = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    items = load_dataset(folder(tmp_path, {"a/b.png": Image.fromarray(bits), "b/g.png": Image.fromarray(grey)}))
    assert mode(tmp_path / "a" / "b.png") == "1"
    assert items.shape == (8, 8, 1) and items.class_names == ["a", "b"]
    assert (items.images[0, ..., 0] == np.where(bits, 255, 0)).all()
    assert (items.images[1, ..., 0] == grey).all()


def test_16_bit_colour_png_is_read_as_pillow_reads_it_high_byte(tmp_path):
    values = [0, 257, 65535, 1000, 300, 65280, 511, 256, 255]
    (tmp_path / "a").mkdir()
    png(tmp_path / "a" / "x.png", 3, 1, 16, 2, b"\x00" + struct.pack(">9H", *values))
    items = load_dataset(f"imagefolder:{tmp_path}")
    assert items.shape == (1, 3, 3)
    assert items.images.ravel().tolist() == [v // 256 for v in values]


# ---- channel layouts and alpha ---------------------------------------------------------------

def test_mixed_layouts_are_refused_and_convert_converts_them_all(tmp_path):
    grey, colour = grey8(77), rgb8()
    spec = folder(tmp_path, {"a/g.png": grey, "b/c.png": colour})
    assert refused(spec) == (f"imagefolder:{tmp_path}: mixed channel layouts: a/g.png is grey, b/c.png is rgb; set "
                             "source.convert = \"grey\" or \"rgb\" to convert them all (images with alpha are "
                             "composited over black)")
    as_rgb = load_dataset(spec, convert="rgb")
    assert as_rgb.shape == (8, 8, 3)
    assert (as_rgb.images[0] == 77).all() and (as_rgb.images[1] == np.asarray(colour)).all()
    as_grey = load_dataset(spec, convert="grey")
    assert as_grey.shape == (8, 8, 1)
    assert (as_grey.images[1, ..., 0] == np.asarray(colour.convert("L"))).all()  # ITU-R 601, as Pillow's "L"
    assert inspect_dataset(spec, convert="grey").shape == (8, 8, 1)


def test_alpha_is_never_dropped_silently(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    spec = folder(tmp_path, {"a/x.png": Image.fromarray(rgba), "a/y.png": Image.fromarray(rgba)})
    assert refused(spec) == (f"imagefolder:{tmp_path}: a/x.png is rgba: semsim codes 1 or 3 channels and never drops "
                             "alpha silently; set source.convert = \"grey\" or \"rgb\" to composite the images over "
                             "black")
    over_black = np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0)).astype(np.uint8)
    items = load_dataset(spec, convert="rgb")
    assert items.shape == (8, 8, 3) and (items.images[0] == over_black).all()
    items = load_dataset(spec, convert="grey")
    assert (items.images[0, ..., 0] == np.asarray(Image.fromarray(over_black).convert("L"))).all()


def test_grey_alpha_palette_and_transparency_layouts(tmp_path):
    la = np.stack([np.full((8, 8), 200, np.uint8), np.full((8, 8), 51, np.uint8)], axis=-1)
    spec = folder(tmp_path / "la", {"a/x.png": Image.fromarray(la, mode="LA")})
    assert "a/x.png is grey+alpha" in refused(spec)
    assert (load_dataset(spec, convert="grey").images == 40).all()  # 200 * 51 / 255
    pal = rgb8().convert("P")
    assert load_dataset(folder(tmp_path / "p", {"a/x.png": pal})).shape == (8, 8, 3)
    (tmp_path / "pt" / "a").mkdir(parents=True)
    pal.save(tmp_path / "pt" / "a" / "x.png", transparency=0)
    assert "a/x.png is rgba" in refused(f"imagefolder:{tmp_path / 'pt'}")
    (tmp_path / "lt" / "a").mkdir(parents=True)
    grey8(5).save(tmp_path / "lt" / "a" / "x.png", transparency=5)
    assert "a/x.png is grey+alpha" in refused(f"imagefolder:{tmp_path / 'lt'}")
    assert (load_dataset(f"imagefolder:{tmp_path / 'lt'}", convert="grey").images == 0).all()


def test_cmyk_jpeg_is_colour(tmp_path):
    items = load_dataset(folder(tmp_path, {"a/x.jpg": Image.new("CMYK", (8, 8), (0, 255, 255, 0))}))
    assert items.shape == (8, 8, 3)


def test_builtin_datasets_convert_too(tmp_path):
    digits = load_dataset("digits")
    as_rgb = load_dataset("digits", convert="rgb")
    assert as_rgb.shape == (8, 8, 3) and (as_rgb.images == digits.images).all()
    assert np.array_equal(load_dataset("digits", convert="grey").images, digits.images)
    _write_cifar(tmp_path)
    cifar = load_dataset(f"cifar10:{tmp_path}")
    grey = load_dataset(f"cifar10:{tmp_path}", convert="grey")
    assert grey.shape == (32, 32, 1)
    assert (grey.images[3, ..., 0] == np.asarray(Image.fromarray(cifar.images[3]).convert("L"))).all()
    assert inspect_dataset(f"cifar10:{tmp_path}", convert="grey").shape == (32, 32, 1)
    with pytest.raises(InputError, match="source.convert: must be one of none, grey, rgb"):
        load_dataset("digits", convert="rgba")


# ---- folder structure -----------------------------------------------------------------------

def test_odd_folders_are_reported_in_one_line(tmp_path):
    def case(name: str, files: dict[str, Image.Image], extra=None) -> tuple[Path, str]:
        root = tmp_path / name
        root.mkdir()
        folder(root, files)
        if extra:
            extra(root)
        return root, refused(f"imagefolder:{root}")

    root, msg = case("empty_class", {"a/x.png": grey8()}, lambda r: (r / "b").mkdir())
    assert msg == f"{root / 'b'}: class folder b is empty: it holds no images"
    root, msg = case("at_root", {"a/x.png": grey8(), "y.png": grey8()})
    assert msg == (f"{root}: image y.png lies directly in the image folder: images must lie in class folders "
                   "<dir>/<class name>/<image> (names starting with '.' are ignored)")
    readme = tmp_path / "readme"  # a file that is not an image beside the class folders is left alone
    folder(readme, {"a/x.png": grey8()})
    (readme / "README").write_text("hi")
    assert load_dataset(f"imagefolder:{readme}").class_names == ["a"]
    root, msg = case("nested", {"a/x.png": grey8(), "a/deeper/y.png": grey8()})
    assert msg == (f"{root / 'a'}: sub-folder deeper in class folder a: images must lie directly in "
                   "<dir>/<class name>/ (nested folders are not read)")
    root, msg = case("dir_like_image", {"a/x.png": grey8()}, lambda r: (r / "a" / "y.png").mkdir())
    assert "sub-folder y.png in class folder a" in msg
    root, msg = case("text", {"a/x.png": grey8()}, lambda r: (r / "a" / "notes.txt").write_text("hi"))
    assert msg == (f"{root / 'a' / 'notes.txt'}: not an image: Pillow reads no '.txt' files; move it out of the "
                   "image folder or give it a name starting with '.'")
    root, msg = case("link", {"a/x.png": grey8()}, lambda r: os.symlink(r / "a" / "gone.png", r / "a" / "y.png"))
    assert msg == f"{root / 'a' / 'y.png'}: not a regular file (a broken or looping link, or a special file)"
    root, msg = case("loop", {"a/x.png": grey8()}, lambda r: os.symlink(r / "a" / "z.png", r / "a" / "z.png"))
    assert msg.startswith(f"{root / 'a' / 'z.png'}: not a regular file")
    (tmp_path / "nothing").mkdir()
    assert "image folder is empty" in refused(f"imagefolder:{tmp_path / 'nothing'}")
    assert refused(f"imagefolder:{tmp_path / 'absent'}") == f"source.dataset: {tmp_path / 'absent'}: image folder not found"


def test_hidden_names_are_ignored_and_pillow_extensions_are_read(tmp_path):
    spec = folder(tmp_path, {"a/x.jpe": rgb8(1), "a/y.JFIF": rgb8(2), "b/z.tif": rgb8(3), ".cache/q.png": grey8(),
                             "b/.w.png": grey8()})
    (tmp_path / ".DS_Store").write_text("mac")
    (tmp_path / "a" / ".notes.txt").write_text("x")
    items = load_dataset(spec)
    assert items.class_names == ["a", "b"] and len(items) == 3 and items.shape == (8, 8, 3)
    assert (items.images[2] == np.asarray(rgb8(3))).all()  # TIFF is lossless
    info = inspect_dataset(spec)
    assert info == DatasetInfo(f"imagefolder:{tmp_path}", ["a", "b"], [2, 1], (8, 8, 3))


def test_unreadable_files_are_one_line(tmp_path):
    spec = folder(tmp_path, {"a/x.png": rgb8()})
    (tmp_path / "a" / "y.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert refused(spec).startswith(f"{tmp_path / 'a' / 'y.png'}: cannot read image (")
    (tmp_path / "a" / "y.png").unlink()
    raw = (tmp_path / "a" / "x.png").read_bytes()
    (tmp_path / "a" / "y.png").write_bytes(raw[: len(raw) - 60])  # header fine, data cut
    inspect_dataset(spec)  # only decoding finds it
    with pytest.raises(InputError, match=r"y\.png: cannot read image \("):
        load_dataset(spec)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_permission_is_one_line(tmp_path):
    spec = folder(tmp_path, {"a/x.png": grey8()})
    (tmp_path / "a" / "x.png").chmod(0)
    assert "Permission denied" in refused(spec)


def test_permission_errors_are_one_line_even_as_root(tmp_path, monkeypatch):
    spec = folder(tmp_path, {"a/x.png": grey8()})

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)
    assert refused(spec) == (f"{tmp_path / 'a' / 'x.png'}: cannot read image ([Errno 13] Permission denied: "
                             f"'{tmp_path / 'a' / 'x.png'}')")


# ---- size limit -----------------------------------------------------------------------------

def test_size_limit_is_checked_from_the_header(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("1", (5000, 5000)).save(tmp_path / "a" / "big.png")
    spec = f"imagefolder:{tmp_path}"
    assert refused(spec) == (f"{tmp_path / 'a' / 'big.png'}: image 5000x5000 has 25000000 pixels, more than "
                             "source.max_pixels = 16777216; shrink the image or raise source.max_pixels")
    assert "more than source.max_pixels = 63" in refused(folder(tmp_path / "s", {"a/x.png": grey8()}), max_pixels=63)
    assert load_dataset(f"imagefolder:{tmp_path / 's'}", max_pixels=64).shape == (8, 8, 1)


def test_decompression_bombs_are_one_line_without_warnings(tmp_path):
    (tmp_path / "w" / "a").mkdir(parents=True)
    png(tmp_path / "w" / "a" / "x.png", 10000, 10000, 1, 0)  # above Pillow's warning limit
    (tmp_path / "e" / "a").mkdir(parents=True)
    png(tmp_path / "e" / "a" / "x.png", 100000, 100000, 1, 0)  # above its error limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "10000x10000 has 100000000 pixels, more than source.max_pixels" in refused(f"imagefolder:{tmp_path / 'w'}")
        assert refused(f"imagefolder:{tmp_path / 'e'}") == (
            f"{tmp_path / 'e' / 'a' / 'x.png'}: image has 10000000000 pixels, more than source.max_pixels = 16777216; "
            "shrink the image or raise source.max_pixels")
        msg = refused(f"imagefolder:{tmp_path / 'e'}", max_pixels=10**11)
    assert msg.endswith("more than Pillow's decompression-bomb limit of 178956970 (which semsim does not change); "
                        "shrink the image")
    assert Image.MAX_IMAGE_PIXELS == 89478485  # untouched


# ---- classes, max_items, preload, inspection ------------------------------------------------

def test_max_items_beyond_the_dataset_is_refused_everywhere(tmp_path):
    ctx = RunContext(seed=0)
    cfg = SourceConfig(dataset="digits", max_items=1e9)
    want = ("source.max_items: 1000000000 items asked for but the dataset digits has 1797; use at most 1797 or leave "
            "max_items unset")
    for call in (lambda: load_items(cfg, ctx), lambda: preload([cfg]), lambda: inspect_sources([cfg])):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == want
    cfg = SourceConfig(dataset="digits", classes=2, max_items=361)
    with pytest.raises(InputError) as err:
        preload([cfg])
    assert str(err.value) == ("source.max_items: 361 items asked for but the dataset digits has 360 (after classes = "
                              "2); use at most 360 or leave max_items unset")
    with pytest.raises(InputError, match="source.classes: 11 classes asked for but the dataset digits has 10"):
        inspect_sources([SourceConfig(dataset="digits", classes=11)])
    exact = SourceConfig(dataset="digits", classes=2, max_items=360)
    check_source(exact, inspect_dataset("digits"))
    assert len(load_items(exact, ctx)) == 360


def test_preload_is_keyed_by_spec_and_convert(tmp_path):
    spec = folder(tmp_path, {"a/g.png": grey8(9), "b/c.png": rgb8()})
    grey = SourceConfig(dataset=spec, convert="grey")
    rgb = SourceConfig(dataset=spec, convert="rgb", memorizable={"kind": "ood", "fraction": 0.5})
    datasets = preload([grey, rgb])
    assert {k[:2]: v.shape for k, v in datasets.items()} == {(spec, "grey"): (8, 8, 1), (spec, "rgb"): (8, 8, 3),
                                                            ("digits", "rgb"): (8, 8, 3)}
    items = load_items(rgb, RunContext(seed=0), datasets)
    assert items.shape == (8, 8, 3) and len(items) == 2
    with pytest.raises(InputError, match="mixed channel layouts"):
        preload([SourceConfig(dataset=spec)])
    infos = inspect_sources([grey, rgb, SourceConfig(dataset=spec, convert="rgb", max_pixels=64)])
    assert {k: v.describe() for k, v in infos.items()} == {
        f"{spec} (convert = grey)": "2 items in 2 classes, 8x8 grey",
        f"{spec} (convert = rgb)": "2 items in 2 classes, 8x8 RGB",
        "digits (convert = rgb)": "1797 items in 10 classes, 8x8 RGB",
        f"{spec} (convert = rgb, max_pixels = 64)": "2 items in 2 classes, 8x8 RGB"}


def test_cifar_inspection_matches_loading(tmp_path):
    _write_cifar(tmp_path)
    info = inspect_dataset(f"cifar10:{tmp_path}")
    assert info == DatasetInfo.of(load_dataset(f"cifar10:{tmp_path}"))
    assert info.items == 14 and info.shape == (32, 32, 3)
    (tmp_path / "test_batch").write_bytes(b"cut")
    assert refused(f"cifar10:{tmp_path}").startswith(f"{tmp_path / 'test_batch'}: not a CIFAR-10 pickle batch")
    assert "CIFAR-10 directory not found" in refused(f"cifar10:{tmp_path / 'nope'}")


def test_cli_refuses_a_mixed_folder_before_writing(tmp_path, capsys):
    from simulator.cli import main

    spec = folder(tmp_path / "data", {"a/g.png": grey8(), "b/c.png": rgb8()})
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'name = "img"\ndevice = "cpu"\npipelines = ["classical"]\n[source]\ndataset = "{spec}"\n')
    rc = main(["run", str(scenario), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "mixed channel layouts" in err
    assert not (tmp_path / "out").exists()


def _write_cifar(root: Path) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("data_batch_1", 7), ("test_batch", 7)):
        with open(root / name, "wb") as fh:
            pickle.dump({b"labels": rng.integers(0, 10, n).tolist(),
                         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}, fh)
    with open(root / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)


def test_a_folder_too_large_for_memory_is_refused_before_it_is_loaded(tmp_path, monkeypatch):
    from simulator.sources import imagefolder

    root = tmp_path / "big"
    folder(root, {f"a/{i}.png": grey8() for i in range(4)})
    monkeypatch.setattr(imagefolder, "available_memory", lambda: 8 * 4 * 64 - 1)  # 4 items of 8x8 need 256 B
    for fn in (load_dataset, inspect_dataset):
        with pytest.raises(InputError) as err:
            fn(f"imagefolder:{root}")
        assert str(err.value) == (f"imagefolder:{root}: 4 images of 8x8x1 need 256 B as 8-bit items, more than 1/8 "
                                  "of the 2.0 KiB of memory available (training and coding hold float copies); use "
                                  "fewer or smaller images")
    monkeypatch.setattr(imagefolder, "available_memory", lambda: 8 * 4 * 64)
    assert load_dataset(f"imagefolder:{root}").images.shape == (4, 8, 8, 1)


def test_grey_palettes_are_grey_and_several_frames_are_refused(tmp_path):
    values = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    grey_palette = Image.fromarray(values).convert("P")  # an adaptive palette of greys
    assert grey_palette.mode == "P"
    items = load_dataset(folder(tmp_path / "p", {"a/x.png": grey_palette, "a/y.png": Image.fromarray(values)}))
    assert items.shape == (8, 8, 1) and np.array_equal(items.images[0, ..., 0], values)
    anim = tmp_path / "anim" / "a"
    anim.mkdir(parents=True)
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (0, 255)]
    frames[0].save(anim / "x.gif", save_all=True, append_images=frames[1:])
    for fn in (load_dataset, inspect_dataset):
        with pytest.raises(InputError) as err:
            fn(f"imagefolder:{anim.parent}")
        assert str(err.value) == (f"{anim / 'x.gif'}: holds 2 frames (an animation or a multi-page file); semsim "
                                  "reads one image per file: save each frame as a file of its own")


def test_a_16_bit_grey_alpha_png_is_grey_alpha(tmp_path):
    import struct

    w = h = 4
    raw = b"".join(b"\x00" + b"".join(struct.pack(">HH", 1000 * (x + y), 65535) for x in range(w)) for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    root = tmp_path / "la"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0))
                                      + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with pytest.raises(InputError, match="is grey\\+alpha"):
        load_dataset(f"imagefolder:{root}")
    items = load_dataset(f"imagefolder:{root}", convert="grey")  # opaque: the grey values, high bytes
    assert items.shape == (4, 4, 1)
    assert items.images[0, ..., 0].tolist() == [[(1000 * (x + y)) >> 8 for x in range(w)] for y in range(h)]
