"""Scenario section ``[jscc]``: the DeepJSCC model of the ``deepjscc`` pipeline (docs/jscc.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ..section import Section


class JsccConfig(Section):
    """Which DeepJSCC network codes the ``deepjscc`` pipeline's items, and what SNR it is told.

    ``model``: ``"auto"`` (the zoo's DeepJSCC entry for the source's channel count at
    ``link.bandwidth_ratio``) or a zoo DeepJSCC entry's name. ``snr_aware``: both networks are
    told the channel's SNR (the encoder the scenario's Es/N0, the decoder its estimate from the
    received item's noise variance, after equalisation); ``false``: both are always told
    ``design_snr_db``, a single-SNR model, whose behaviour away from that SNR the scenario shows.
    """

    model: str = "auto"
    snr_aware: bool = True
    design_snr_db: float = Field(default=10.0, ge=-20.0, le=60.0)

    @field_validator("model")
    @classmethod
    def _known(cls, v: str) -> str:
        from .. import zoo

        allowed = ["auto", *zoo.names("deepjscc")]
        if v not in allowed:
            raise ValueError(f"must be one of {', '.join(repr(a) for a in allowed)} (got {v!r})")
        return v


__all__ = ["JsccConfig"]
