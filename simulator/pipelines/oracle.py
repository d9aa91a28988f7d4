"""``contrastive-oracle``: the contrastive pipeline with the ground-truth split (an upper bound).

The injected memorizable items (the source's ground truth) are X_m; the rest train the
language and go semantically, with the pre-processor's clusters as the header, as in
``contrastive``. It is the only pipeline that reads the ground truth
(``reads_ground_truth = True``; the ``reads_ground_truth`` summary column and the plot labels say
so). Against ``contrastive`` it tells how much of a gap to the other pipelines is the split's and
how much the language's.
"""

from ..registry import PIPELINES
from .spec import PipelineSpec

SPEC = PIPELINES.register("contrastive-oracle", PipelineSpec(
    description="the contrastive pipeline with the ground-truth split (reads the injected labels: an upper bound)",
    needs_preprocessor=True, dictionary="preprocessor", on_miss="classical", language="contrastive-oracle",
    reads_ground_truth=True,
    train=lambda v: ~v.true_memorizable, semantic=lambda v: ~v.true_memorizable,
    memorizable=lambda v: v.true_memorizable))
