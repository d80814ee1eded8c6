"""ECBSR: the five-branch training form and its re-parameterized deploy form agree."""

from __future__ import annotations

import pytest
import torch

from vidsr.models import ECB, ECBSR, PlainSR, SelfEnsemble


def _randomise(net: torch.nn.Module, std: float = 0.05) -> None:
    """Give every parameter (the small mask scales and biases too) a non-trivial value."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * std)


@pytest.mark.parametrize("m,c,scale,with_idt", [
    (4, 16, 2, False), (4, 8, 2, False), (2, 16, 3, False), (1, 8, 4, False),
    (3, 8, 2, True), (0, 4, 3, True),
])
def test_reparameterized_matches_training_form(m: int, c: int, scale: int, with_idt: bool) -> None:
    torch.manual_seed(0)
    net = ECBSR(m, c, scale, with_idt=with_idt, online_merge=False)  # branch by branch
    _randomise(net)
    x = torch.rand(2, 1, 19, 23)  # odd sizes: every border pixel is compared
    with torch.no_grad():
        ref = net(x)
        out = net.reparameterize()(x)
    assert out.shape == (2, 1, 19 * scale, 23 * scale)
    assert (ref - out).abs().max().item() <= 1e-5


def test_reparameterize_is_exact_in_float64() -> None:
    net = ECBSR(2, 8, 2, with_idt=True, online_merge=False).double()
    _randomise(net, std=0.5)
    x = torch.rand(1, 1, 9, 7, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(net(x), net.reparameterize()(x), atol=1e-9, rtol=1e-12)


def test_border_ring_carries_the_bias() -> None:
    """Zero padding after the 1x1 conv breaks the merge at the borders; a bias ring fixes it."""
    block = ECB(1, 4)
    with torch.no_grad():
        for branch in (block.conv1x1_3x3, block.conv1x1_sbx):
            branch.conv0.bias.fill_(3.0)
    x = torch.zeros(1, 1, 6, 6)
    kernel, bias = block.merged()
    merged = torch.nn.functional.conv2d(x, kernel, bias, padding=1)
    with torch.no_grad():
        assert torch.allclose(block.forward_branches(x), merged, atol=1e-5)


@pytest.mark.parametrize("with_idt", [False, True])
def test_online_merge_gives_the_branch_forms_gradients(with_idt: bool) -> None:
    """Training through the merged kernel is the same optimisation: same loss, and the same
    gradient on every branch parameter (mask scales, 1x1 biases, PReLU slopes included)."""
    grads = []
    for online in (False, True):
        torch.manual_seed(0)
        net = ECBSR(2, 8, 3, with_idt=with_idt, online_merge=online).double()
        _randomise(net, std=0.3)
        x = torch.rand(2, 1, 11, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        loss = (net(x) - 0.5).abs().mean()
        loss.backward()
        grads.append((loss.item(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    (loss_ref, ref), (loss_on, on) = grads
    assert abs(loss_ref - loss_on) < 1e-12
    assert ref.keys() == on.keys() and len(ref) > 30
    for name, g in ref.items():
        assert torch.allclose(on[name], g, atol=1e-12, rtol=1e-9), name
        assert g.abs().max() > 0, name  # every parameter really is trained


def test_deploy_form_is_a_plain_conv_stack() -> None:
    plain = ECBSR(4, 16, 2).reparameterize()
    assert isinstance(plain, PlainSR)
    convs = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert not plain.training


def test_identity_branch_only_when_shapes_match() -> None:
    net = ECBSR(2, 8, 2, with_idt=True)  # blocks 1->8, 8->8, 8->8, 8->4
    assert [b.with_idt for b in net.blocks] == [False, True, True, False]


def test_self_ensemble_is_the_mean_over_the_eight_symmetries() -> None:
    """``SelfEnsemble`` averages the 8 flipped/rotated predictions, each mapped back: the result
    commutes with every flip and 90-degree rotation, which the net itself does not."""
    net = ECBSR(1, 4, 2).reparameterize()
    _randomise(net, std=0.3)
    ens = SelfEnsemble(net)
    x = torch.rand(1, 1, 9, 12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        by_hand = torch.zeros(1, 1, 18, 24)
        for k in range(4):
            for t in (lambda a: a, lambda a: a.flip(3)):
                by_hand += torch.rot90(t(net(t(torch.rot90(x, k, (2, 3))))), -k, (2, 3)) / 8
        out = ens(x)
        assert torch.allclose(out, by_hand, atol=1e-6)
        assert torch.allclose(ens(x.flip(2)), out.flip(2), atol=1e-6)
        assert torch.allclose(ens(torch.rot90(x, 1, (2, 3))), torch.rot90(out, 1, (2, 3)),
                              atol=1e-6)
        assert not torch.allclose(net(x.flip(2)), net(x).flip(2), atol=1e-4)


@pytest.mark.parametrize("with_idt", [False, True])
def test_absorb_gives_the_training_form_a_plain_nets_function(with_idt: bool) -> None:
    torch.manual_seed(3)
    plain = PlainSR(2, 6, 3)
    for p in plain.parameters():
        p.data.normal_(0, 0.2)
    net = ECBSR(2, 6, 3, with_idt=with_idt)
    branch = net.blocks[1].conv1x1_sbx.conv0.weight.clone()
    net.absorb(plain)
    x = torch.rand(2, 1, 11, 13)
    torch.testing.assert_close(net(x), plain(x), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(net.reparameterize()(x), plain(x), atol=1e-5, rtol=1e-4)
    # the edge branches keep their own values, so they still take part in training
    assert torch.equal(net.blocks[1].conv1x1_sbx.conv0.weight, branch)
    with pytest.raises(ValueError, match="M2C6"):
        ECBSR(2, 8, 3).absorb(plain)
