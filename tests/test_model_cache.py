"""The shared model cache: parallel workers that need the same model train it once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from simulator.context import RunContext
from simulator.errors import InputError
from simulator import model_cache
from simulator.semantic import fit_language
from simulator.semantic.config import SemanticConfig
from simulator.sources import load_dataset


def test_concurrent_fits_of_one_configuration_train_once(tmp_path):
    items = load_dataset("digits").subset(np.arange(64))
    clusters = items.labels % 3
    cfg = SemanticConfig(architecture="factorized", epochs=1, batch_size=32)

    def fit(_):
        ctx = RunContext(seed=3, cache_dir=tmp_path, progress=False)
        return fit_language(items.images, clusters, 3, cfg, ctx, "t")

    with ThreadPoolExecutor(max_workers=3) as pool:
        langs = list(pool.map(fit, range(3)))
    assert sorted(lang.from_cache for lang in langs) == [False, True, True]
    streams = [[r.bitstream for r in lang.encode(items.images, clusters)] for lang in langs]
    assert streams[0] == streams[1] == streams[2]


def test_save_load_round_trip_and_checks(tmp_path):
    path = tmp_path / "m.pt"
    key = model_cache.digest("fmt", np.arange(3), "cfg", 7)
    assert key != model_cache.digest("fmt", np.arange(3), "cfg", 8)
    model_cache.save(path, {"format": "fmt", "key": key, "x": 1})
    assert model_cache.load(path, key, "fmt", "thing")["x"] == 1
    with pytest.raises(InputError, match="another configuration"):
        model_cache.load(path, "0" * 64, "fmt", "thing")
    with pytest.raises(InputError, match="unknown format"):
        model_cache.load(path, key, "other-fmt", "thing")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt"):
        model_cache.load(path, key, "fmt", "thing")
