"""Plain torch networks: shapes, gradients, and the mathematics they are built from."""

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from odl_learned.nets import (
    LISTA,
    ConvBlock,
    DirectMap,
    DnCNN,
    LearnedGradientDescent,
    LearnedPrimalDual,
    LearnedProximalGradient,
    RBFActivation,
    ResidualConvBlock,
    UNet,
    VariationalNetwork,
    count_parameters,
    ista,
    lipschitz_constant,
    soft_threshold,
)

IMAGE = (6, 7)  # deliberately not square and not powers of 2
DATA = (5, 9)


def _matrix_operator(shape_in, shape_out, seed=0, dtype=torch.float64):
    """A random linear operator x -> M x on batches (B, 1, *shape_in) -> (B, 1, *shape_out)."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(math.prod(shape_out), math.prod(shape_in), generator=g, dtype=dtype)
    M = M / torch.linalg.matrix_norm(M, ord=2)  # normalised, as Adler & Oktem do

    def forward(x):
        return (x.flatten(1) @ M.T).reshape(x.shape[0], 1, *shape_out)

    def adjoint(y):
        return (y.flatten(1) @ M).reshape(y.shape[0], 1, *shape_in)

    return M, forward, adjoint


class Counted:
    """Wraps a callable and counts its calls; records the inputs."""

    def __init__(self, fn):
        self.fn = fn
        self.inputs = []

    def __call__(self, x):
        self.inputs.append(x.detach().clone())
        return self.fn(x)

    @property
    def calls(self):
        return len(self.inputs)


def _assert_gradients_reach_every_parameter(net, output):
    net.zero_grad()
    loss = output.abs().pow(2).sum() if output.is_complex() else output.pow(2).sum()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient at {name}"


def _zero_(module):
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()


# ---------------------------------------------------------------------------- U-Net, DnCNN


@pytest.mark.parametrize("size", [(16, 16), (17, 23), (9, 31), (1, 5)])
def test_unet_shapes_odd_sizes(size):
    torch.manual_seed(0)
    net = UNet(channels=(4, 8, 16), skip_channels=(2, 3))
    x = torch.randn(2, 1, *size)
    assert net(x).shape == (2, 1, *size)
    net.eval()
    assert net(x).shape == (2, 1, *size)


def test_unet_non_residual_channels_and_full_skips():
    torch.manual_seed(0)
    net = UNet(in_channels=2, out_channels=3, channels=(4, 8, 16, 16), skip_channels=(4, 8, 16), residual=False)
    assert net(torch.randn(2, 2, 19, 13)).shape == (2, 3, 19, 13)
    no_skips = UNet(channels=(4, 8), skip_channels=0)
    assert no_skips(torch.randn(2, 1, 5, 5)).shape == (2, 1, 5, 5)


def test_unet_residual_with_zero_last_layer_is_identity():
    torch.manual_seed(0)
    net = UNet(channels=(4, 8, 16))
    _zero_(net.outc)
    x = torch.randn(2, 1, 13, 21)
    assert torch.equal(net(x), x)


def test_unet_gradients_and_bad_input():
    torch.manual_seed(0)
    net = UNet(channels=(4, 8, 16))
    _assert_gradients_reach_every_parameter(net, net(torch.randn(2, 1, 15, 17)))
    with pytest.raises(ValueError, match="expected"):
        net(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="residual"):
        UNet(in_channels=1, out_channels=2)
    with pytest.raises(ValueError, match="skip_channels"):
        UNet(channels=(4, 8, 16), skip_channels=(1,))


def test_dncnn_residual_identity_shapes_gradients():
    torch.manual_seed(0)
    net = DnCNN(depth=5, features=8)
    x = torch.randn(2, 1, 11, 9)
    assert net(x).shape == x.shape
    _assert_gradients_reach_every_parameter(net, net(x))
    _zero_(net.last_layer)
    assert torch.equal(net(x), x)
    # paper size: 17 layers, 64 features: 1*9*64+64 + 15*(64*9*64 + 2*64) + 64*9*1+1
    assert count_parameters(DnCNN()) == 640 + 15 * (36864 + 128) + 577
    noise = DnCNN(channels=3, depth=3, features=4, residual=False)
    assert noise(torch.randn(2, 3, 5, 6)).shape == (2, 3, 5, 6)


# ---------------------------------------------------------------------------- learned primal-dual


def _adler_count(num_iter, num_primal, num_dual, hidden=32, kernel=3):
    """Parameters of Adler & Oktem's LPD from its layer sizes."""

    def conv(cin, cout):
        return cin * cout * kernel * kernel + cout

    def block(cin, cout):  # conv -> PReLU(hidden) -> conv -> PReLU(hidden) -> conv
        return conv(cin, hidden) + hidden + conv(hidden, hidden) + hidden + conv(hidden, cout)

    dual = block(num_dual + 2, num_dual)  # [h, A f^(2), y]
    primal = block(num_primal + 1, num_primal)  # [f, A^* h^(1)]
    return num_iter * (dual + primal)


def test_lpd_parameter_count_is_adlers():
    _, A, A_adj = _matrix_operator(IMAGE, DATA)
    net = LearnedPrimalDual(A, A_adj, image_shape=IMAGE)
    assert count_parameters(net) == _adler_count(10, 5, 5) == 253220
    small = LearnedPrimalDual(A, A_adj, num_iter=3, num_primal=2, num_dual=4, hidden=8, image_shape=IMAGE)
    assert count_parameters(small) == _adler_count(3, 2, 4, hidden=8)
    prelus = [m for m in net.modules() if isinstance(m, nn.PReLU)]
    assert len(prelus) == 40 and all(p.weight.shape == (32,) and (p.weight == 0).all() for p in prelus)


def test_lpd_matches_adlers_iteration_and_counts_calls():
    torch.manual_seed(0)
    _, A, A_adj = _matrix_operator(IMAGE, DATA)
    A, A_adj = Counted(A), Counted(A_adj)
    net = LearnedPrimalDual(A, A_adj, num_iter=3, hidden=8, image_shape=IMAGE).double()
    y = torch.randn(2, 1, *DATA, dtype=torch.float64)
    out = net(y)
    assert out.shape == (2, 1, *IMAGE)
    assert net.calls_per_reconstruction == {"forward": 3, "adjoint": 3}
    assert (A.calls, A_adj.calls) == (3, 3)
    assert torch.equal(A.inputs[0], torch.zeros(2, 1, *IMAGE, dtype=torch.float64))  # zero initialisation

    # the published scheme, written out
    f = torch.zeros(2, 5, *IMAGE, dtype=torch.float64)
    h = torch.zeros(2, 5, *DATA, dtype=torch.float64)
    for k in range(3):
        h = h + net.dual_blocks[k](torch.cat([h, A.fn(f[:, 1:2]), y], 1))
        f = f + net.primal_blocks[k](torch.cat([f, A_adj.fn(h[:, 0:1])], 1))
    torch.testing.assert_close(out, f[:, 0:1])


def test_lpd_zero_init_with_zero_last_layers_gives_zero_or_init():
    torch.manual_seed(0)
    _, A, A_adj = _matrix_operator(IMAGE, DATA)
    y = torch.randn(2, 1, *DATA, dtype=torch.float64)
    net = LearnedPrimalDual(A, A_adj, num_iter=2, hidden=8).double()  # image shape found from A_adj
    for block in [*net.dual_blocks, *net.primal_blocks]:
        _zero_(block.last_layer)
    assert torch.equal(net(y), torch.zeros(2, 1, *IMAGE, dtype=torch.float64))
    assert net.image_shape == IMAGE
    net.init = A_adj  # every primal channel starts at A^* y and is never updated
    torch.testing.assert_close(net(y), A_adj(y))


def test_lpd_gradients_and_bad_input():
    torch.manual_seed(0)
    _, A, A_adj = _matrix_operator(IMAGE, DATA, dtype=torch.float32)
    net = LearnedPrimalDual(A, A_adj, num_iter=2, hidden=8, image_shape=IMAGE)
    y = torch.randn(2, 1, *DATA)
    _assert_gradients_reach_every_parameter(net, net(y))
    with pytest.raises(ValueError, match="expected"):
        net(torch.zeros(2, 2, *DATA))
    with pytest.raises(TypeError):
        LearnedPrimalDual(None, A_adj)


# ---------------------------------------------------------------------------- learned gradient descent


def test_lgd_with_gradient_picking_block_is_gradient_descent():
    M, A, A_adj = _matrix_operator(IMAGE, DATA)
    A, A_adj = Counted(A), Counted(A_adj)
    net = LearnedGradientDescent(A, A_adj, num_iter=4, num_memory=2, num_layers=1, kernel_size=1, init=A_adj.fn)
    net = net.double()
    tau = 0.7
    with torch.no_grad():
        for block in net.blocks:  # a single 1x1 conv: update = -tau * gradient, memory = 0
            _zero_(block)
            block.last_layer.weight[0, 1] = -tau
    y = torch.randn(2, 1, *DATA, dtype=torch.float64)
    x = (y.flatten(1) @ M).clone()
    for _ in range(4):
        x = x - tau * ((x @ M.T - y.flatten(1)) @ M)
    torch.testing.assert_close(net(y), x.reshape(2, 1, *IMAGE))
    assert (A.calls, A_adj.calls) == (4, 4) == tuple(net.calls_per_reconstruction.values())


def test_lgd_shapes_gradients_regulariser_input():
    torch.manual_seed(0)
    _, A, A_adj = _matrix_operator(IMAGE, DATA, dtype=torch.float32)
    reg_grad = Counted(lambda x: x)  # gradient of 0.5 ||x||^2
    net = LearnedGradientDescent(A, A_adj, num_iter=3, hidden=8, regulariser_gradient=reg_grad)
    assert net.blocks[0].layers[0].in_channels == 2 + 1 + 5
    out = net(torch.randn(2, 1, *DATA))
    assert out.shape == (2, 1, *IMAGE) and reg_grad.calls == 3
    _assert_gradients_reach_every_parameter(net, out)


# ---------------------------------------------------------------------------- learned proximal gradient


class SoftThreshold(nn.Module):
    def __init__(self, theta):
        super().__init__()
        self.theta = theta

    def forward(self, x):
        return soft_threshold(x, self.theta)


def test_lpg_with_soft_threshold_prox_is_ista():
    shape_in, m = (4, 5), 12
    M, A, A_adj = _matrix_operator(shape_in, (m,), seed=3)
    M = M * 2.0  # ||M|| = 2, so step 1/L = 1/4
    A = lambda x: (x.flatten(1) @ M.T).reshape(x.shape[0], 1, m)  # noqa: E731
    A_adj = lambda y: (y.flatten(1) @ M).reshape(y.shape[0], 1, *shape_in)  # noqa: E731
    lam, step = 0.05, 1.0 / lipschitz_constant(M)
    net = LearnedProximalGradient(
        A, A_adj, prox=SoftThreshold(lam * step), num_iter=6, step_size=step, init=lambda y: y.new_zeros(2, 1, 4, 5)
    )
    y = torch.randn(2, 1, m, dtype=torch.float64)
    z = ista(M, y[:, 0], lam, 6)
    torch.testing.assert_close(net(y).flatten(1), z, rtol=1e-6, atol=1e-6)


def test_lpg_identity_prox_default_start_counts_and_sharing():
    M, A, A_adj = _matrix_operator(IMAGE, DATA)
    A, A_adj = Counted(A), Counted(A_adj)
    net = LearnedProximalGradient(A, A_adj, prox=lambda k: nn.Identity(), num_iter=3, step_size=0.5)
    y = torch.randn(2, 1, *DATA, dtype=torch.float64)
    x = y.flatten(1) @ M  # x0 = A^* y
    for _ in range(3):
        x = x - 0.5 * ((x @ M.T - y.flatten(1)) @ M)
    torch.testing.assert_close(net(y), x.reshape(2, 1, *IMAGE))
    assert net.calls_per_reconstruction == {"forward": 3, "adjoint": 4} == {"forward": A.calls, "adjoint": A_adj.calls}
    # one shared proximal network counts once; a list gives one per iteration
    shared = LearnedProximalGradient(A, A_adj, prox=ResidualConvBlock(hidden=4), num_iter=5, learn_step_size=False)
    assert count_parameters(shared) == count_parameters(ResidualConvBlock(hidden=4))
    per_iteration = LearnedProximalGradient(A, A_adj, prox=[ResidualConvBlock(hidden=4) for _ in range(5)], num_iter=5)
    assert count_parameters(per_iteration) == 5 * count_parameters(ResidualConvBlock(hidden=4)) + 5
    with pytest.raises(ValueError, match="num_iter"):
        LearnedProximalGradient(A, A_adj, prox=[nn.Identity()], num_iter=2)


def test_lpg_default_prox_gradients():
    torch.manual_seed(0)
    _, A, A_adj = _matrix_operator(IMAGE, DATA, dtype=torch.float32)
    net = LearnedProximalGradient(A, A_adj, num_iter=3, hidden=8)
    out = net(torch.randn(2, 1, *DATA))
    assert out.shape == (2, 1, *IMAGE)
    _assert_gradients_reach_every_parameter(net, out)


# ---------------------------------------------------------------------------- variational network


def _complex_operator(image=(5, 6), coils=2, seed=0):
    """A random complex matrix: (B, H, W) complex -> (B, coils, H, W) complex."""
    g = torch.Generator().manual_seed(seed)
    n = math.prod(image)
    M = torch.randn(coils * n, n, generator=g, dtype=torch.complex128)
    M = M / torch.linalg.matrix_norm(M, ord=2)

    def forward(x):
        return (x.reshape(x.shape[0], -1) @ M.T).reshape(x.shape[0], coils, *image)

    def adjoint(y):
        return (y.reshape(y.shape[0], -1) @ M.conj()).reshape(y.shape[0], *image)

    return M, forward, adjoint


def test_varnet_with_zero_filters_is_gradient_descent_on_data_term():
    M, A, A_adj = _complex_operator()
    vn = VariationalNetwork(A, A_adj, num_stages=3, num_filters=4, kernel_size=3, num_rbf=7)
    weights = [0.5, 1.0, 1.5]
    with torch.no_grad():
        vn.filters.zero_()
        vn.data_weights.copy_(torch.tensor(weights))
    g = torch.Generator().manual_seed(1)
    y = torch.randn(2, 2, 5, 6, dtype=torch.complex128, generator=g)
    yv = y.reshape(2, -1)
    x = yv @ M.conj()  # zero filling: A^H y
    for lam in weights:
        x = x - lam * ((x @ M.T - yv) @ M.conj())
    out = vn(y)
    assert out.shape == (2, 1, 5, 6) and out.dtype == torch.complex128
    torch.testing.assert_close(out, x.reshape(2, 1, 5, 6))
    torch.testing.assert_close(vn.magnitude(y), x.reshape(2, 1, 5, 6).abs())


def test_varnet_regulariser_term_is_gradient_of_potential():
    torch.manual_seed(0)
    _, A, A_adj = _complex_operator()
    vn = VariationalNetwork(A, A_adj, num_stages=2, num_filters=3, kernel_size=3, num_rbf=9, rbf_range=2.0).double()
    with torch.no_grad():
        for act in vn.activations:
            act.weight.normal_()  # a non-trivial phi
    k = vn.stage_filters(1)
    torch.testing.assert_close(k.mean(dim=(-2, -1)), torch.zeros(3, 2, dtype=k.dtype))  # zero mean
    torch.testing.assert_close(k.flatten(1).norm(dim=1), torch.ones(3, dtype=k.dtype))  # unit norm
    xr = torch.randn(2, 5, 6, 2, dtype=torch.float64, requires_grad=True)  # (real, imag)
    x = torch.view_as_complex(xr)
    (grad,) = torch.autograd.grad(vn.regulariser(x, 1).sum(), xr)
    torch.testing.assert_close(torch.view_as_real(vn.regulariser_gradient(x, 1)), grad)


def test_rbf_potential_is_antiderivative():
    torch.manual_seed(0)
    phi = RBFActivation(2, num_rbf=5, rbf_range=1.5)
    with torch.no_grad():
        phi.weight.normal_()
    z = torch.linspace(-2, 2, 11).reshape(1, 1, 11).repeat(1, 2, 1).double().requires_grad_()
    phi.double()
    (dz,) = torch.autograd.grad(phi.potential(z).sum(), z)
    torch.testing.assert_close(dz, phi(z))
    torch.testing.assert_close(phi.potential(torch.zeros(1, 2, 1).double()), torch.zeros(1, 2, 1).double())


@pytest.mark.parametrize("chunk", [1, 3, 31])
def test_rbf_activation_matches_the_gaussian_sum_with_exact_gradients(monkeypatch, chunk):
    from odl_learned.nets import varnet

    monkeypatch.setattr(varnet._RBFSum, "chunk", {"cpu": chunk})
    torch.manual_seed(0)
    phi = RBFActivation(3, num_rbf=7, rbf_range=1.5).double()
    with torch.no_grad():
        phi.weight.normal_()
    z = (2 * torch.randn(2, 3, 4, 5, dtype=torch.float64)).requires_grad_()
    gauss = torch.exp(-((z.unsqueeze(-1) - phi.centres) ** 2) / (2 * phi.sigma**2))
    torch.testing.assert_close(phi(z), (phi.weight.reshape(1, 3, 1, 1, 7) * gauss).sum(-1))
    assert torch.autograd.gradcheck(phi, (z,))
    assert torch.autograd.gradgradcheck(phi, (z,))
    weight = phi.weight.detach().clone().requires_grad_()
    apply = lambda w: varnet._RBFSum.apply(z.detach(), w, phi.centres, phi.sigma)  # noqa: E731
    assert torch.autograd.gradcheck(apply, (weight,))
    with pytest.raises(ValueError, match="expected"):
        phi(torch.zeros(2, 4, 3))


def test_rbf_activation_compiled_kernels_match_the_eager_loop(monkeypatch):
    from odl_learned.nets import varnet

    torch.manual_seed(0)
    phi = RBFActivation(3, num_rbf=7, rbf_range=1.5)
    with torch.no_grad():
        phi.weight.normal_()
    z = (2 * torch.randn(2, 3, 8, 9)).requires_grad_()
    results = {}
    for fused in (False, True):
        monkeypatch.setattr(varnet._RBFSum, "fused", fused)
        out = phi(z)
        grads = torch.autograd.grad((out * torch.cos(z.detach())).sum(), (z, phi.weight))
        results[fused] = (out, *grads)
    assert varnet._RBFSum.fused is True  # compiled, not fallen back to the eager loop
    for eager, compiled in zip(results[False], results[True]):
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(varnet._RBFSum, "fused", None)  # auto: small maps stay eager
    assert not varnet._RBFSum._use_fused(z) and varnet._RBFSum._use_fused(torch.empty(2**21))


def test_varnet_layouts_gradients_and_bad_input():
    torch.manual_seed(0)
    F2 = lambda x: torch.fft.fft2(x, norm="ortho")  # noqa: E731  (B, 1, H, W) -> (B, 1, H, W)
    mask = (torch.rand(9, 10) < 0.4).to(torch.complex64)
    A = Counted(lambda x: mask * F2(x))
    A_adj = Counted(lambda y: torch.fft.ifft2(mask * y, norm="ortho"))
    vn = VariationalNetwork(A, A_adj, num_stages=2, num_filters=4, kernel_size=5, num_rbf=7)
    y = mask * torch.randn(2, 1, 9, 10, dtype=torch.complex64)
    out = vn(y)
    assert out.shape == (2, 1, 9, 10) and out.dtype == torch.complex64
    assert vn.calls_per_reconstruction == {"forward": 2, "adjoint": 3} == {"forward": A.calls, "adjoint": A_adj.calls}
    _assert_gradients_reach_every_parameter(vn, out)
    assert vn.magnitude(y).dtype == torch.float32
    with pytest.raises(TypeError, match="complex"):
        vn(y.real)
    paper = VariationalNetwork(A, A_adj)  # 10 stages, 24 filters 11x11 on 2 channels, 31 RBFs, lambda
    assert count_parameters(paper) == 10 * (24 * 2 * 11 * 11 + 24 * 31 + 1)


# ---------------------------------------------------------------------------- direct map


def test_direct_map_shapes_count_and_limits():
    torch.manual_seed(0)
    net = DirectMap((5, 7), (6, 9), hidden=(20, 30), conv_channels=4, in_channels=2)
    y = torch.randn(2, 2, 5, 7)
    out = net(y)
    assert out.shape == (2, 1, 6, 9)
    expected = (70 * 20 + 20) + (20 * 30 + 30) + (30 * 54 + 54) + (25 * 4 + 4) + (25 * 16 + 4) + (49 * 4 + 1)
    assert count_parameters(net) == expected == DirectMap.num_parameters((5, 7), (6, 9), (20, 30), 4, 2)
    _assert_gradients_reach_every_parameter(net, out)
    _zero_(net.refine[-1])
    torch.testing.assert_close(net(y), net.dense(y.flatten(1)).reshape(2, 1, 6, 9))
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(2, 1, 5, 7))
    with pytest.raises(ValueError, match="max_parameters"):
        DirectMap((30, 183), (128, 128))  # AUTOMAP layout at 128x128: 3.6e8 parameters
    ratio = DirectMap.num_parameters((32, 32), (32, 32), conv_channels=1) / DirectMap.num_parameters((16, 16), (16, 16), conv_channels=1)
    assert 15.9 < ratio <= 16  # size^4


# ---------------------------------------------------------------------------- LISTA


@pytest.mark.parametrize("tied", [True, False])
def test_lista_initialised_from_ista_is_ista(tied):
    g = torch.Generator().manual_seed(0)
    D = torch.randn(10, 25, generator=g, dtype=torch.float64)
    y = torch.randn(3, 10, generator=g, dtype=torch.float64)
    net = LISTA(D, num_layers=16, lam=0.2, tied=tied)
    z = ista(D, y, lam=0.2, num_iter=16)
    torch.testing.assert_close(net(y), z, rtol=1e-12, atol=1e-12)
    assert (z == 0).any() and (z != 0).any()  # the thresholds act
    torch.testing.assert_close(net(y[0]), z[0], rtol=1e-12, atol=1e-12)  # unbatched
    n, m = 25, 10
    assert count_parameters(net) == (1 if tied else 16) * (n * m + n * n + n)
    _assert_gradients_reach_every_parameter(net, net(y))


def test_ista_decreases_objective_and_bad_input():
    g = torch.Generator().manual_seed(1)
    D = torch.randn(8, 12, generator=g, dtype=torch.float64)
    y = torch.randn(8, generator=g, dtype=torch.float64)

    def objective(z):
        return 0.5 * (D @ z - y).pow(2).sum() + 0.1 * z.abs().sum()

    values = [objective(ista(D, y, 0.1, k)) for k in (1, 5, 50, 500)]
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="expected"):
        ista(D, torch.zeros(3), 0.1, 2)
    with pytest.raises(ValueError):
        LISTA(D, lam=-1.0)


# ---------------------------------------------------------------------------- misc


def test_count_parameters_and_conv_block():
    conv = nn.Conv2d(2, 3, 3)
    shared = nn.Sequential(conv, nn.ReLU(), conv)
    assert count_parameters(shared) == 2 * 3 * 9 + 3
    frozen = nn.Linear(4, 5)
    frozen.bias.requires_grad_(False)
    assert count_parameters(frozen) == 20 and count_parameters(frozen, trainable_only=False) == 25
    with pytest.raises(TypeError):
        count_parameters(torch.zeros(3))
    assert ConvBlock(3, 2, hidden=4, num_layers=1)(torch.zeros(2, 3, 5, 5)).shape == (2, 2, 5, 5)
    with pytest.raises(ValueError, match="odd"):
        ConvBlock(1, 1, kernel_size=4)


def test_nets_do_not_import_odl():
    code = "import sys, odl_learned.nets; assert 'odl' not in sys.modules, 'odl imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
