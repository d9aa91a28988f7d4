"""Joint source-channel coding and separation at a bandwidth budget (docs/jscc.md).

- :mod:`.model`: the DeepJSCC network and its training channels;
- :mod:`.codec`: :class:`~.codec.JsccCodec`, the network for the teacher and the apprentice;
- :mod:`.config`: the ``[jscc]`` scenario section;
- :mod:`.pretrain`: the zoo's DeepJSCC recipes;
- :mod:`.separation`: a codec at a bit budget, then 5G LDPC and QAM, and the capacity bound.

Importing the package loads nothing heavy: each module is imported where it is used.
"""
