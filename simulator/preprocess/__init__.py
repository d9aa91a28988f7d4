"""The teacher's contrastive pre-processor (Chaccour & Saad 2022, section III; design.md section 4).

    pre = fit_preprocessor(items, cfg, ctx, costs)   # train, or load from the cache (pre.from_cache)
    a = pre.assign(images)                    # a.cluster, a.confidence, a.cost
    mask = pre.split(a)                       # True = memorizable (X_m)

See docs/preprocess.md.
"""

from .config import PRESETS, PreprocessConfig, ResolvedPreprocess, ThresholdConfig
from .model import Preprocessor, fit_encoder, fit_preprocessor
from .ranking import Assignment

__all__ = ["PRESETS", "Assignment", "PreprocessConfig", "Preprocessor", "ResolvedPreprocess", "ThresholdConfig",
           "fit_encoder", "fit_preprocessor"]
