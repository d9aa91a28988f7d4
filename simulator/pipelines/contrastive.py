"""``contrastive`` (Chaccour & Saad 2022): the pre-processor's split routes the items.

The learnable items X_l train the language (the pre-processor's clusters are its dictionary) and
go semantically; the memorizable items X_m go through the classical coder. With target quality,
an X_l item that no operating point serves at the target goes classically too.
"""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("contrastive", PipelineSpec(
    default=True,
    description="the pre-processor splits the items: X_l through a language trained on X_l, X_m classically",
    needs_preprocessor=True, dictionary="preprocessor", on_miss="classical", language="contrastive",
    train=lambda v: ~v.predicted_memorizable, semantic=lambda v: ~v.predicted_memorizable,
    memorizable=lambda v: v.predicted_memorizable))
