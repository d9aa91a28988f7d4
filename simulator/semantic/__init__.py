"""The learned semantic language: encoder, quantization, learned entropy model, real entropy
coding and decoder (design.md sections 3 and 8; docs/semantic.md).

>>> from simulator.semantic import fit_language, SemanticConfig   # doctest: +SKIP
>>> lang = fit_language(images, clusters, num_clusters, SemanticConfig(), ctx, tag="vanilla")
>>> reps = lang.encode(images, clusters); imgs, cl = lang.decode([r.bitstream for r in reps])
"""

from .config import SemanticConfig
from .dictionary import own_dictionary
from .language import Representation, SemanticLanguage, TargetCoding, fit_language

__all__ = ["SemanticConfig", "SemanticLanguage", "Representation", "TargetCoding", "fit_language", "own_dictionary"]
