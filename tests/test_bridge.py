"""The ODL <-> torch bridge: gradients, adjoints, weighting, solvers, prox."""

import numpy as np
import odl
import pytest
import torch

from odl_learned.bridge import OperatorModule, TorchFunctional, TorchNativeOperator, TorchOperator
from odl_learned.bridge import operator_module
from odl_learned.bridge.weighting import space_weight
from odl_learned.operators import ct
from odl_learned.testing import dot_test, random_element


def _space(n=8, dtype="float64", impl="numpy"):
    # Weighted: cell volume (2 / n)^2 != 1, so every weighting mistake shows.
    return odl.uniform_discr([-1, -1], [1, 1], (n, n), dtype=dtype, impl=impl)


class PointwiseExp(odl.Operator):
    """x -> exp(x) on a NumPy space, with its derivative (a multiplication)."""

    def __init__(self, space):
        super().__init__(space, space, linear=False)

    def _call(self, x):
        return self.range.element(np.exp(x.asarray()))

    def derivative(self, x):
        return odl.MultiplyOperator(self.range.element(np.exp(x.asarray())), domain=self.domain)


class Cube(TorchNativeOperator):
    """A torch-native nonlinear operator: x -> x^3 + x."""

    def torch_call(self, x):
        return x**3 + x


class SmallNet(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.tanh(self.conv1(x)))


class ConvexNet(torch.nn.Module):
    """R(x) = sum softplus(conv(x)) + 0.1 |x|^2: smooth and strictly convex."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.softplus(self.conv(x)).flatten(1).sum(1) + 0.1 * x.pow(2).flatten(1).sum(1)


# --- OperatorModule: gradcheck for the three kinds of operator ---------------


def test_gradcheck_linear_ray_transform_batched():
    layer = OperatorModule(ct.ray_transform(_space(), 5))
    assert layer.batched
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_gradcheck_linear_ray_transform_astra_per_item():
    space = _space(dtype="float32")
    layer = OperatorModule(ct.ray_transform(space, 5, impl="astra_cpu"))
    assert not layer.batched
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    # ASTRA computes in float32: finite differences need a matching eps.
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-2, atol=1e-3, rtol=1e-3)


def test_gradcheck_torch_native_operator():
    space = _space(impl="pytorch")
    layer = OperatorModule(Cube(space, space))
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_gradcheck_nonlinear_odl_operator_exp_then_ray_transform():
    space = _space()
    op = ct.ray_transform(space, 5) * PointwiseExp(space)
    layer = OperatorModule(op)
    assert not layer.batched  # PointwiseExp is a NumPy operator: per-item path
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_gradcheck_odl_operator_on_pytorch_space_via_vmap():
    space = _space(impl="pytorch")
    layer = OperatorModule(odl.Gradient(space))
    assert layer.batched
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert layer(x).shape == (2, 1, 2, 8, 8)
    assert torch.autograd.gradcheck(layer, (x,))


def test_gradcheck_functional_per_item():
    space = _space()
    functional = odl.functionals.L2NormSquared(space)
    layer = OperatorModule(functional)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert layer(x).shape == (2, 1)
    assert torch.autograd.gradcheck(layer, (x,))


# --- pytorch spaces: no numpy, no loop, device and dtype kept ----------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pytorch_path_never_calls_odl_per_item(monkeypatch, dtype):
    def fail(*args, **kwargs):
        raise AssertionError("per-item path used")

    monkeypatch.setattr(operator_module._PerItemFunction, "apply", fail)
    space = _space(impl="pytorch")
    ray_trafo = ct.ray_transform(space, 5)
    op = ray_trafo.adjoint * (2.0 * ray_trafo) + Cube(space, space)
    layer = OperatorModule(op)
    x = torch.rand(4, 1, 8, 8, dtype=dtype)
    out = layer(x)
    assert out.dtype == dtype and out.device == x.device and out.shape == x.shape


def test_composition_equals_odl_evaluation():
    space = _space()
    ray_trafo = ct.ray_transform(space, 5)
    op = (ray_trafo.adjoint * ray_trafo) / 3.0 - odl.IdentityOperator(space)
    layer = OperatorModule(op)
    assert layer.batched
    x = random_element(space, seed=1)
    out = layer(torch.from_numpy(x.asarray())[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, op(x).asarray(), rtol=1e-10, atol=1e-12)


# --- weighting: ODL adjoint vs torch's Euclidean transpose -----------------------


def test_backward_is_euclidean_transpose_and_adjoint_is_weighted():
    space = _space()
    ray_trafo = ct.ray_transform(space, 5)
    w_x, w_y = space_weight(ray_trafo.domain), space_weight(ray_trafo.range)
    assert w_x != 1.0 and w_x != w_y
    for layer in (OperatorModule(ray_trafo), OperatorModule(ray_trafo.adjoint * ray_trafo.adjoint.adjoint)):
        x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
        g = torch.rand_like(layer(x))
        (layer(x) * g).sum().backward()
        # Euclidean convention: <A x, g>_2 = <x, A^T g>_2 with A^T = torch's backward.
        lhs = float((layer(x) * g).sum().detach())
        rhs = float((x * x.grad).sum().detach())
        assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    # ODL convention: A^T = W_X A^* W_Y^{-1}.
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    g = torch.rand(1, 1, *ray_trafo.range.shape, dtype=torch.float64)
    (OperatorModule(ray_trafo)(x) * g).sum().backward()
    adjoint = ray_trafo.adjoint(ray_trafo.range.element(g[0, 0].numpy())).asarray()
    np.testing.assert_allclose(x.grad[0, 0].numpy(), w_x * adjoint / w_y, rtol=1e-10)


def test_per_item_backward_uses_weighted_adjoint_correctly():
    space = _space(dtype="float32")
    astra = OperatorModule(ct.ray_transform(space, 5, impl="astra_cpu"))
    sparse = OperatorModule(ct.ray_transform(space, 5))
    x1 = torch.rand(2, 1, 8, 8, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    g = torch.rand(2, 1, 5, sparse.op.range.shape[1])
    (astra(x1) * g).sum().backward()
    (sparse(x2) * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)


# --- TorchOperator ----------------------------------------------------------------


def test_torch_operator_derivative_dot_test_weighted_spaces():
    space = _space()
    op = TorchOperator(SmallNet().double(), space, space)
    deriv = op.derivative(random_element(space, seed=4))
    assert dot_test(deriv, rtol=1e-10) < 1e-10


def test_torch_operator_derivative_matches_finite_differences():
    space = _space()
    op = TorchOperator(SmallNet().double(), space, space)
    x, h = random_element(space, seed=5), random_element(space, seed=6)
    eps = 1e-6
    fd = (op(x + eps * h) - op(x - eps * h)) / (2 * eps)
    assert (op.derivative(x)(h) - fd).norm() < 1e-6 * fd.norm()


def test_linear_torch_operator_adjoint_and_composition_with_ray_transform():
    space = _space()
    blur = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    torch.nn.init.uniform_(blur.weight)
    op = TorchOperator(blur, space, space, linear=True)
    dot_test(op, rtol=1e-10)
    composed = ct.ray_transform(space, 5) * op
    dot_test(composed, rtol=1e-6)
    assert OperatorModule(composed).batched


def test_torch_operator_in_odl_solver_landweber():
    space = _space()
    blur = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
    with torch.no_grad():
        blur.weight.copy_(torch.tensor([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]]))
    op = TorchOperator(blur, space, space, linear=True)
    x_true = odl.core.phantom.shepp_logan(space, modified=True)
    y = op(x_true)
    x = space.zero()
    # float(): ODL 1.0's power_method_opnorm returns a NumPy scalar, which
    # ODL's lincomb rejects (so landweber's default omega fails too).
    odl.solvers.landweber(op, x, y, niter=200, omega=1.0 / float(op.norm(estimate=True)) ** 2)
    assert (op(x) - y).norm() < 0.05 * y.norm()


def test_nonlinear_torch_operator_in_odl_gradient_descent():
    space = _space()
    op = TorchOperator(SmallNet(seed=2).double(), space, space)
    y = op(random_element(space, seed=7))
    objective = odl.functionals.L2NormSquared(space).translated(y) * op
    x = space.zero()
    start = objective(x)
    odl.solvers.steepest_descent(objective, x, line_search=odl.solvers.BacktrackingLineSearch(objective), maxiter=30)
    assert objective(x) < 0.1 * start


# --- TorchFunctional -------------------------------------------------------------


def test_torch_functional_gradient_matches_finite_differences():
    space = _space()
    functional = TorchFunctional(ConvexNet().double(), space)
    x, h = random_element(space, seed=8), random_element(space, seed=9)
    eps = 1e-6
    fd = (functional(x + eps * h) - functional(x - eps * h)) / (2 * eps)
    # the ODL gradient is the Riesz representer in the weighted inner product
    assert abs(functional.gradient(x).inner(h) - fd) < 1e-6 * abs(fd)


@pytest.mark.parametrize("sigma", [0.1, 1.0, 10.0])
def test_torch_functional_prox_optimality(sigma):
    space = _space()
    functional = TorchFunctional(ConvexNet().double(), space)
    x = random_element(space, seed=10)
    p = functional.proximal(sigma)(x)
    # x - p in sigma * dR(p); R smooth, so dR(p) = {grad R(p)}
    residual = (x - p) - sigma * functional.gradient(p)
    assert residual.norm() < 1e-6 * (x - p).norm()


def test_torch_functional_in_odl_proximal_solver():
    space = _space()
    functional = TorchFunctional(ConvexNet().double(), space, prox_iter=50)
    ray_trafo = ct.ray_transform(space, 8)
    y = ray_trafo(odl.core.phantom.shepp_logan(space, modified=True))
    data_fit = odl.functionals.L2NormSquared(ray_trafo.range).translated(y) * ray_trafo
    x = space.zero()
    objective = data_fit + functional
    start = objective(x)
    step = 0.5 / (2 * ray_trafo.norm(estimate=True) ** 2)
    odl.solvers.proximal_gradient(x, f=functional, g=data_fit, niter=10, gamma=step)
    assert objective(x) < start


def test_learned_proximal_is_used():
    space = _space()
    functional = TorchFunctional(ConvexNet().double(), space, proximal=lambda sigma: odl.ScalingOperator(space, 0.5))
    x = random_element(space, seed=11)
    assert (functional.proximal(1.0)(x) - 0.5 * x).norm() == 0


# --- bad input ------------------------------------------------------------------------


def test_bad_input_errors():
    space = _space()
    layer = OperatorModule(ct.ray_transform(space, 5))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 8, 8\)"):
        layer(torch.zeros(2, 1, 8, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch axes"):
        layer(torch.zeros(8, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer(np.zeros((1, 1, 8, 8)))
    with pytest.raises(TypeError, match="odl.Operator"):
        OperatorModule(torch.nn.Identity())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        TorchOperator(lambda x: x, space, space)
    with pytest.raises(TypeError, match="must be an element of"):
        TorchOperator(SmallNet().double(), space, space).derivative(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        TorchFunctional(ConvexNet().double(), space).proximal(-1.0)


@pytest.mark.parametrize("impl", ["numpy", "pytorch"])
def test_tensor_to_element_round_trip_and_bfloat16(impl):
    """Tensors become elements of the space's dtype, including dtypes NumPy lacks (bfloat16)."""
    from odl_learned.bridge.convert import element_to_tensor, tensor_to_element

    space = _space(4, "float32", impl)
    t = torch.arange(16.0).reshape(4, 4)
    x = tensor_to_element(t.to(torch.bfloat16), space)  # small integers are exact in bfloat16
    assert x in space and torch.equal(element_to_tensor(x).cpu(), t)
