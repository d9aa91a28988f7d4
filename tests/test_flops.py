"""The one FLOP convention (2 per multiply-accumulate of convolutions and matrix products)
against hand counts, and the networks' counts against a layer-by-layer hand count."""

from __future__ import annotations

import torch
from torch import nn

from simulator.context import RunContext
from simulator.flops import forward_flops
from simulator.preprocess.nets import Encoder, count_flops
from simulator.semantic.codec import count_flops as codec_flops
from simulator.semantic.config import SemanticConfig


def test_single_layers_match_the_hand_formula():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert forward_flops(lambda: conv(torch.zeros(1, 3, 8, 8))) == 2 * (8 * 8 * 8) * (3 * 3 * 3)
    up = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)
    assert forward_flops(lambda: up(torch.zeros(1, 8, 4, 4))) == 2 * (8 * 4 * 4) * (3 * 4 * 4)
    lin = nn.Linear(12, 5)
    assert forward_flops(lambda: lin(torch.zeros(1, 12))) == 2 * 12 * 5
    assert forward_flops(lambda: torch.relu(torch.zeros(1000))) == 0  # element-wise: not counted


def _hand_count(model: nn.Module, run) -> int:
    """2 x MACs of every conv / transposed conv / linear layer, from the shapes seen in a forward pass."""
    total = [0]

    def hook(m, inp, out):
        x = inp[0]
        if isinstance(m, nn.ConvTranspose2d):
            total[0] += 2 * x.numel() * m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Conv2d):
            total[0] += 2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += 2 * x.numel() // x.shape[-1] * m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hs:
            h.remove()
    return total[0]


def test_the_networks_are_counted_by_the_convention(tmp_path):
    enc = Encoder((8, 8, 1), "cnn", 8, 16)
    enc.eval()
    assert count_flops(enc, (8, 8, 1)) == _hand_count(enc, lambda: enc(torch.zeros(1, 1, 8, 8)))
    ctx = RunContext(seed=0, cache_dir=tmp_path)
    from simulator.semantic.language import _build

    codec = _build((8, 8, 1), 4, SemanticConfig(), ctx)
    x, cl, rung = torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        y = torch.round(codec.encode(x, cl, rung))
    enc_f, dec_f = codec_flops(codec)
    assert enc_f == _hand_count(codec, lambda: codec.encode(x, cl, rung)) > 0
    assert dec_f == _hand_count(codec, lambda: codec.decode(y, cl, rung)) > 0
