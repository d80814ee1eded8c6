"""edge-SR models: shapes, and each reduction written out by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidsr.models import ESRCNN, ESRTM, ESRTR, ESRMax


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("make", [
    lambda s: ESRMax(s, 7, 4), lambda s: ESRTM(s, 5, 3), lambda s: ESRTR(s, 3, 2),
    lambda s: ESRCNN(s, 2, 3, 4),
])
def test_output_shape(scale: int, make) -> None:
    net = make(scale)
    out = net(torch.rand(2, 1, 11, 13))
    assert out.shape == (2, 1, 11 * scale, 13 * scale)


def _banks(net, x: torch.Tensor, groups: int) -> list[torch.Tensor]:
    """Per group, the (N, C, sH, sW) tensor of candidate outputs, built channel by channel."""
    s, c = net.scale, net.c
    y = net.filter(x) if hasattr(net, "filter") else net.cnn(x)
    out = []
    for g in range(groups):
        chans = [F.pixel_shuffle(y[:, (g * c + i) * s * s:(g * c + i + 1) * s * s], s)
                 for i in range(c)]
        out.append(torch.cat(chans, dim=1))
    return out


def test_max_reduction() -> None:
    net = ESRMax(2, 5, 3)
    x = torch.rand(1, 1, 8, 9)
    (v,) = _banks(net, x, 1)
    assert torch.allclose(net(x), v.max(dim=1, keepdim=True).values)


def test_template_matching() -> None:
    net = ESRTM(3, 3, 4)
    x = torch.rand(1, 1, 6, 5)
    v, k = _banks(net, x, 2)
    ref = (v * k.exp() / k.exp().sum(1, keepdim=True)).sum(1, keepdim=True)
    assert torch.allclose(net(x), ref, atol=1e-6)


def test_transformer_like() -> None:
    net = ESRTR(2, 3, 2)
    x = torch.rand(1, 1, 6, 5)
    v, q, k = _banks(net, x, 3)
    a = (q * k).exp()
    assert torch.allclose(net(x), (v * a / a.sum(1, keepdim=True)).sum(1, keepdim=True), atol=1e-6)


def test_cnn_front_feeds_template_matching() -> None:
    net = ESRCNN(2, 3, 2, 4)
    x = torch.rand(1, 1, 7, 7)
    v, k = _banks(net, x, 2)
    ref = (v * torch.softmax(k, dim=1)).sum(1, keepdim=True)
    assert torch.allclose(net(x), ref, atol=1e-6)


def test_initialisation_starts_near_nearest_neighbour() -> None:
    """Centre taps set to 1: eSR-MAX of a constant image starts at or above the constant."""
    torch.manual_seed(0)
    net = ESRMax(2, 7, 4)
    assert torch.all(net.filter.weight[:, 0, 3, 3] == 1.0)


def test_max_replicates_edges_so_a_flat_frame_stays_flat() -> None:
    """Zero padding would make the max pick up the artificial step at the frame border."""
    torch.manual_seed(0)
    net = ESRMax(2, 7, 4)
    with torch.no_grad():
        out = net(torch.full((1, 1, 9, 11), 0.6))
    # a flat input gives one s x s phase pattern, repeated up to the very edge
    pattern = out[:, :, 8:10, 10:12]
    assert torch.allclose(out, pattern.repeat(1, 1, 9, 11), atol=1e-6)
    assert net.filter.padding_mode == "replicate"
    assert ESRTM(2, 7, 4).filter.padding_mode == "zeros"  # trained with padded borders in the loss
