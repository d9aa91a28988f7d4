"""docs/ stays consistent with the code: every scenario key is documented with its section."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from simulator.scenario import Scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTION_DOCS = {"link": "phy.md", "preprocess": "preprocess.md", "semantic": "semantic.md"}


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _keys(ann, key + ".")
        else:
            out.append(key)
    return out


def test_every_scenario_key_is_documented():
    overview = (DOCS / "scenarios.md").read_text()
    missing = []
    for key in _keys(Scenario):
        leaf = key.split(".")[-1]
        section = key.split(".")[0]
        texts = [overview] + ([(DOCS / SECTION_DOCS[section]).read_text()] if section in SECTION_DOCS else [])
        if not any(f"`{key}`" in t or f"`{key.split('.', 1)[-1]}`" in t or f"`{leaf}`" in t for t in texts):
            missing.append(key)
    assert not missing, f"undocumented scenario keys: {missing}"


def test_every_metric_column_is_documented():
    from simulator.ledger import ITEM_COLUMNS

    text = (DOCS / "metrics.md").read_text()
    summary_cols = ["reads_ground_truth", "items", "semantic_items", "complexity_nats", "avg_representation_bits", "avg_estimated_bits",
                    "avg_item_bits", "system_bits_per_item", "avg_channel_uses", "avg_bits_on_air", "avg_packets", "transmissions_per_packet",
                    "delivered_share", "avg_delivery_time_s", "avg_queue_wait_s", "teacher_compute_s_per_item",
                    "apprentice_compute_s_per_item", "avg_psnr_semantic_db", "msssim_all",
                    "fidelity_share", "semantic_impact", "semantic_impact_semantic", "semantic_impact_at_20db",
                    "language_complexity_per_item_nats", "model_bits", "undelivered_items", "unsent_items",
                    "psnr_delivered_db", "psnr_all_db", "quality_target_missed_items", "esn0_db", "ebn0_db", "code_rate",
                    "bits_per_symbol", "channel_uses_per_pixel", "channel_uses_per_pixel_semantic",
                    "channel_uses_per_pixel_classical", "channel_uses_per_dimension", "real_symbols_per_dimension",
                    "goodput_bits_per_channel_use", "mcs_index", "mcs_bler", "mcs_bler_ci_low", "mcs_bler_ci_high",
                    "mcs_meets_target"]
    import pandas as pd

    from simulator.ledger import summarize
    row = {c: [1] for c in ITEM_COLUMNS}
    row.update(pipeline=["classical"], route=["classical"], delivered=[True], meets_fidelity=[True],
               quality_target_missed=[False])
    cols = summarize(pd.DataFrame(row), 0.0, {}, thresholds_db=(20.0,)).columns
    assert list(cols) == ["pipeline"] + summary_cols
    for col in ITEM_COLUMNS + summary_cols:
        col = col.replace("_at_20db", "_at_<T>db")
        assert f"| {col} |" in text or f"| {col}," in text or f", {col} |" in text, col


def test_scenario_files_validate():
    from simulator.scenario import load_scenario

    for path in sorted((DOCS.parent / "scenarios").glob("*.toml")):
        load_scenario(path)


def test_every_registered_name_is_documented():
    """Names come from the registries (no list is repeated here): each appears in docs/."""
    from simulator import registry

    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    missing = [(r.kind, name) for r in (registry.PIPELINES, registry.LINK_MODES, registry.CHANNELS, registry.DATASETS,
                                         registry.CODERS, registry.MEMORIZABLE_KINDS)
               for name in r.names() if not any(f"{q}{name}{e}" in text for q in '`"' for e in (q, ":"))]
    assert not missing, f"registered but undocumented: {missing}"


def test_architecture_names_every_module():
    text = (DOCS / "architecture.md").read_text()
    pkg = DOCS.parent / "simulator"
    missing = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg).as_posix()
        if path.name == "__init__.py" and path.parent != pkg:
            continue  # a sub-package is named by its folder
        if f"`{rel}`" not in text and f"`{path.name}`" not in text:
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not name: {missing}"
