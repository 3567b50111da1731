"""Group-equivariant networks: exact C4 / D4 equivariance, approximate C8, parameter matching."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from odl_learned.nets import (
    ConvBlock,
    EquivariantConvBlock,
    Group,
    GroupBatchNorm,
    GroupConv2d,
    GroupPool,
    GroupResidualBlock,
    LearnedProximalGradient,
    LiftingConv2d,
    count_parameters,
    network_equivariance_error,
    get_group,
    match_parameters,
    matched_cnn,
    rotate_image,
)

DT = torch.float64
EXACT_GROUPS = ("C4", "D4")
SIZES = (9, 10)  # odd and even square images


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _smooth_image(n, seed=1):
    """A sum of wide Gaussian blobs near the centre: smooth, so interpolated rotations are accurate."""
    c = torch.arange(n, dtype=DT) - (n - 1) / 2
    a, b = torch.meshgrid(c, c, indexing="ij")
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, n, dtype=DT)
    for _ in range(6):
        ca, cb = (torch.rand(2, generator=g, dtype=DT) - 0.5) * n * 0.5
        s = 4 + 4 * torch.rand(1, generator=g, dtype=DT)
        x += torch.randn(1, generator=g, dtype=DT) * torch.exp(-((a - ca) ** 2 + (b - cb) ** 2) / (2 * s**2))
    return x[None, None]


def _errors(module, x, group):
    return [network_equivariance_error(module, x, group, g) for g in range(group.order)]


# --------------------------------------------------------------------------- #
# Groups and their actions
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["C1", "C2", "C4", "C8", "D1", "D2", "D4", "D8"])
def test_group_axioms(name):
    G = get_group(name)
    n = G.order
    assert G.compose(0, 0) == 0
    for i in range(n):
        assert G.compose(0, i) == i == G.compose(i, 0)
        assert G.compose(i, G.inverse(i)) == 0
        assert sorted(G.regular_permutation(i)) == list(range(n))
    for i, j, k in itertools.product(range(n), repeat=3):
        assert G.compose(G.compose(i, j), k) == G.compose(i, G.compose(j, k))


@pytest.mark.parametrize("name", ["C4", "D4"])
@pytest.mark.parametrize("n", SIZES)
def test_actions_are_representations(name, n):
    """T_g T_h = T_{gh} exactly, on images and on regular fields."""
    G = get_group(name)
    x = _randn(2, 3, n, n)
    y = _randn(2, 3, G.order, n, n)
    for g, h in itertools.product(range(G.order), repeat=2):
        gh = G.compose(g, h)
        assert torch.equal(G.transform(G.transform(x, h), g), G.transform(x, gh))
        assert torch.equal(G.transform(G.transform(y, h), g), G.transform(y, gh))


def test_dihedral_is_not_abelian():
    G = get_group("D4")
    rot, flip = G.index(1), G.index(0, 1)
    assert G.compose(rot, flip) != G.compose(flip, rot)
    assert G.compose(flip, rot) == G.index(3, 1)


def test_rotate_image_direction():
    """45 + 45 degrees by interpolation ~ the exact 90 degrees of torch.rot90 (same sense)."""
    x = _smooth_image(33)
    twice = rotate_image(rotate_image(x, 45), 45)
    c = torch.arange(33, dtype=DT) - 16
    disc = c[:, None] ** 2 + c[None, :] ** 2 <= (0.6 * 16) ** 2
    exact = torch.rot90(x, 1, dims=(-2, -1))
    assert float(((twice - exact) * disc).norm() / (exact * disc).norm()) < 0.02
    other_way = torch.rot90(x, -1, dims=(-2, -1))
    assert float(((twice - other_way) * disc).norm() / (other_way * disc).norm()) > 0.5
    with pytest.raises(ValueError, match="square"):
        rotate_image(torch.zeros(3, 4), 45)


@pytest.mark.parametrize("basis", ["pixel", "harmonic"])
def test_kernel_transforms(basis):
    """M_g reproduces T_g on kernels: exact permutations for C4/D4 elements, for either basis."""
    G = get_group("D8")
    mats = G.kernel_transforms(5, basis)
    w = _randn(mats.shape[-1])
    base = (mats[0] @ w).reshape(5, 5)
    for g in range(G.order):
        if G.is_exact(g):
            assert torch.allclose((mats[g] @ w).reshape(5, 5), G.transform_image(base, g), rtol=0, atol=1e-14)
    if basis == "pixel":
        assert torch.equal(mats[0], torch.eye(25, dtype=DT))
    else:  # the rotated harmonic basis rotates in the sense of torch.rot90 (checked at 90 degrees)
        from odl_learned.nets.equivariant import _harmonic_basis

        a0, _ = _harmonic_basis(5, 0.0)
        a90, _ = _harmonic_basis(5, 90.0)
        rotated = torch.rot90(a0.T.reshape(-1, 5, 5), 1, dims=(-2, -1)).reshape(-1, 25).T
        assert torch.allclose(a90, rotated, atol=1e-13)


# --------------------------------------------------------------------------- #
# Exact equivariance of the layers (C4, D4), odd and even image sizes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", EXACT_GROUPS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("basis", ["pixel", "harmonic"])
def test_lifting_and_group_conv_equivariant(name, n, basis):
    torch.manual_seed(0)
    G = get_group(name)
    lift = LiftingConv2d(2, 3, 3, G, kernel_basis=basis).double()
    conv = GroupConv2d(3, 2, 5, G, kernel_basis=basis).double()
    with torch.no_grad():
        conv.bias.normal_()
    assert max(_errors(lift, _randn(2, 2, n, n), G)) < 1e-12
    assert max(_errors(conv, _randn(2, 3, G.order, n, n), G)) < 1e-12


@pytest.mark.parametrize("name", EXACT_GROUPS)
@pytest.mark.parametrize("n", SIZES)
def test_pool_norm_residual_equivariant(name, n):
    torch.manual_seed(0)
    G = get_group(name)
    y = _randn(2, 3, G.order, n, n)
    for module in (GroupPool("max"), GroupPool("mean"), GroupBatchNorm(3).double(), torch.nn.PReLU(3, 0.1).double()):
        assert max(_errors(module, y, G)) < 1e-12
    block = GroupResidualBlock(3, G, batch_norm=True).double()
    assert max(_errors(block, y, G)) < 1e-12


@pytest.mark.parametrize("name", EXACT_GROUPS)
@pytest.mark.parametrize("n", SIZES)
def test_equivariant_block_equivariant(name, n):
    torch.manual_seed(0)
    G = get_group(name)
    x = _randn(2, 2, n, n)
    for kwargs in ({}, {"pool": "max", "batch_norm": True, "activation": "relu"}, {"residual": True}):
        block = EquivariantConvBlock(2, 2, hidden=4, num_layers=3, group=G, **kwargs).double()
        with torch.no_grad():
            for p in block.parameters():
                p.add_(0.1 * torch.randn_like(p))  # nonzero PReLU slopes and biases
        errors = _errors(block, x, G)
        assert max(errors) < 1e-5, errors
        assert max(errors) < 1e-12  # in fact to rounding error
    # a C4-equivariant block is in general not equivariant to reflections
    block = EquivariantConvBlock(1, 1, hidden=4, group="C4").double()
    assert network_equivariance_error(block, _randn(1, 1, n, n), "D4", get_group("D4").index(0, 1)) > 1e-3


def test_learned_proximal_gradient_is_equivariant():
    """Equivariant proxes + an equivariant operator (the identity: denoising) -> an equivariant solver."""
    torch.manual_seed(0)
    identity = lambda t: t  # noqa: E731
    net = LearnedProximalGradient(
        identity,
        identity,
        prox=lambda k: EquivariantConvBlock(1, 1, hidden=4, group="C4", residual=True),
        num_iter=3,
        step_size=0.5,
    ).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    y = _randn(2, 1, 11, 11)
    errors = _errors(net, y, get_group("C4"))
    assert max(errors) < 1e-12, errors
    assert not torch.allclose(net(y), y)  # it does something


# --------------------------------------------------------------------------- #
# C8: approximate, measured
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("basis", ["pixel", "harmonic"])
def test_c8_equivariance_error(basis):
    G = get_group("C8")
    x = _smooth_image(49)
    errors = []
    for seed in range(3):
        torch.manual_seed(seed)
        block = EquivariantConvBlock(1, 1, hidden=8, group=G, kernel_basis=basis).double()
        e = [network_equivariance_error(block, x, G, g, mask_radius=0.6) for g in range(G.order)]
        assert max(e[0::2]) < 1e-12  # the C4 subgroup is exact
        errors.append(max(e[1::2]))  # rotations by odd multiples of 45 degrees
    print(f"C8 ({basis}) 45-degree equivariance error of a random 3-layer block: {[round(v, 4) for v in errors]}")
    assert max(errors) < 0.2


# --------------------------------------------------------------------------- #
# Implementation: one conv2d call, agreement with a naive reference
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["C4", "D4", "C8"])
def test_group_conv_matches_naive_loops(name, monkeypatch):
    torch.manual_seed(0)
    G = get_group(name)
    conv = GroupConv2d(2, 3, 3, G).double()
    lift = LiftingConv2d(2, 3, 3, G).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = _randn(2, 2, G.order, 7, 7)
    x_img = _randn(2, 2, 7, 7)
    order = G.order

    def transformed(kernel, g):  # T_g on a pixel kernel through the same matrices
        return (conv.transforms[g] @ kernel.reshape(-1)).reshape(3, 3)

    expected = torch.zeros(2, 3, order, 7, 7, dtype=DT)
    expected_lift = torch.zeros(2, 3, order, 7, 7, dtype=DT)
    for o, g in itertools.product(range(3), range(order)):
        for i in range(2):
            k = transformed(lift.weight[o, i], g)
            expected_lift[:, o, g] += F.conv2d(x_img[:, i : i + 1], k[None, None], padding=1)[:, 0]
            for h in range(order):
                k = transformed(conv.weight[o, i, G.compose(G.inverse(g), h)], g)
                expected[:, o, g] += F.conv2d(x[:, i, h : h + 1], k[None, None], padding=1)[:, 0]
        expected[:, o, g] += conv.bias[o]
        expected_lift[:, o, g] += lift.bias[o]

    calls = []
    original = F.conv2d

    def counting_conv2d(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", counting_conv2d)
    with torch.no_grad():
        out, out_lift = conv(x), lift(x_img)
    assert len(calls) == 2  # one conv2d per layer
    assert torch.allclose(out, expected, atol=1e-12)
    assert torch.allclose(out_lift, expected_lift, atol=1e-12)


def test_shapes_and_parameter_counts():
    conv = GroupConv2d(4, 6, 3, "D4")
    assert count_parameters(conv) == 6 * 4 * 8 * 9 + 6
    assert conv.filter_bank().shape == (48, 32, 3, 3)
    lift = LiftingConv2d(2, 5, 5, "C8", kernel_basis="harmonic")
    assert count_parameters(lift) == 5 * 2 * lift.num_basis + 5
    assert lift(torch.zeros(1, 2, 6, 6)).shape == (1, 5, 8, 6, 6)
    block = EquivariantConvBlock(3, 2, hidden=5, num_layers=4, group="C4")
    assert block(torch.zeros(2, 3, 8, 8)).shape == (2, 2, 8, 8)
    single = EquivariantConvBlock(1, 1, num_layers=1, group="D4")
    assert single(torch.zeros(1, 1, 5, 5)).shape == (1, 1, 5, 5)


def test_zero_last_layer_gives_zero_or_identity():
    block = EquivariantConvBlock(1, 1, hidden=4, group="C4", residual=True)
    torch.nn.init.zeros_(block.last_layer.weight)
    x = torch.randn(2, 1, 6, 6)
    assert torch.equal(block(x), x)


def test_gradients_reach_all_parameters():
    torch.manual_seed(0)
    cases = ({"group": "C4", "batch_norm": True}, {"group": "D4", "pool": "max"}, {"group": "C8", "kernel_basis": "harmonic"})
    for kwargs in cases:
        block = EquivariantConvBlock(2, 1, hidden=4, num_layers=3, **kwargs)
        with torch.no_grad():
            for m in block.modules():
                if isinstance(m, torch.nn.PReLU):
                    m.weight.fill_(0.1)
        block(torch.randn(3, 2, 8, 8)).square().sum().backward()
        for name, p in block.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (kwargs, name)
    res = GroupResidualBlock(2, "D4", batch_norm=True)
    res(torch.randn(2, 2, 8, 6, 6)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in res.parameters())


# --------------------------------------------------------------------------- #
# Parameter matching
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "kwargs",
    [
        {"hidden": 8, "group": "C4"},
        {"hidden": 8, "group": "D4"},
        {"hidden": 4, "group": "C8", "num_layers": 5},
        {"hidden": 6, "group": "D4", "kernel_size": 5, "in_channels": 2, "out_channels": 3},
        {"hidden": 3, "group": "C4", "kernel_basis": "harmonic"},
    ],
)
def test_parameter_matching_within_10_percent(kwargs):
    kwargs = dict(kwargs)
    c_in, c_out = kwargs.pop("in_channels", 1), kwargs.pop("out_channels", 1)
    eq = EquivariantConvBlock(c_in, c_out, **kwargs)
    cnn = matched_cnn(eq)
    assert isinstance(cnn, ConvBlock)
    n_eq, n_cnn = count_parameters(eq), count_parameters(cnn)
    assert abs(n_cnn - n_eq) <= 0.1 * n_eq, (n_eq, n_cnn)
    assert cnn(torch.zeros(1, c_in, 8, 8)).shape == (1, c_out, 8, 8)
    hidden = cnn.layers[0].out_channels
    for other in (hidden - 1, hidden + 1):  # the closest width
        if other >= 1:
            n_other = count_parameters(ConvBlock(c_in, c_out, other, eq.num_layers, eq.kernel_size))
            assert abs(n_other - n_eq) >= abs(n_cnn - n_eq)


def test_match_parameters_custom_build():
    hidden = match_parameters(10_000, lambda h: torch.nn.Linear(h, h))  # h^2 + h parameters
    assert hidden == 99  # 9900 is closer than 10100
    with pytest.raises(ValueError, match="does not grow"):
        match_parameters(100, lambda h: torch.nn.Linear(3, 3))


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_bad_input():
    with pytest.raises(ValueError, match="odd"):
        LiftingConv2d(1, 1, 4, "C4")
    with pytest.raises(ValueError, match="group"):
        get_group("C3")
    with pytest.raises(ValueError, match="num_rotations"):
        Group(6)
    with pytest.raises(ValueError, match="kernel_basis"):
        GroupConv2d(1, 1, 3, "C4", kernel_basis="spline")
    with pytest.raises(ValueError, match=r"expected \(B, 2, 4, H, W\)"):
        GroupConv2d(2, 1, 3, "C4")(torch.zeros(1, 2, 8, 5, 5))
    with pytest.raises(ValueError, match=r"expected \(B, 1, H, W\)"):
        LiftingConv2d(1, 1, 3, "C4")(torch.zeros(1, 1, 4, 5, 5))
    with pytest.raises(ValueError, match="residual"):
        EquivariantConvBlock(1, 2, residual=True)
    with pytest.raises(ValueError, match="mode"):
        GroupPool("sum")
    with pytest.raises(ValueError, match="reflections"):
        get_group("C4").index(0, 1)


def test_inference_reuses_the_filter_bank_until_weights_change():
    from odl_learned.nets import LiftingConv2d

    torch.manual_seed(0)
    lift = LiftingConv2d(1, 2, 3, "C4")
    x = torch.randn(1, 1, 9, 9)
    with torch.no_grad():
        first = lift(x)
        bank = lift._cached_bank[1]
        assert torch.equal(lift(x), first) and lift._cached_bank[1] is bank  # reused
        lift.weight.mul_(2.0)  # an in-place update invalidates it
        assert torch.allclose(lift(x) - lift.bias.view(1, 2, 1, 1, 1), 2 * (first - lift.bias.view(1, 2, 1, 1, 1)))
    assert torch.allclose(lift(x), lift(x).detach())  # with autograd: built afresh, same values
