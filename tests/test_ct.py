"""CT operators: agreement with ASTRA, adjointness, inversion, FBP, bad input."""

import numpy as np
import odl
import pytest
import torch
from odl.applications import tomo

from odl_learned.bridge import OperatorModule
from odl_learned.operators import ct
from odl_learned.operators.sparse_projector import SparseMatrixImpl
from odl_learned.testing import dot_test, random_element


def _space(n=64, dtype="float32", impl="numpy"):
    return odl.uniform_discr([-n / 2, -n / 2], [n / 2, n / 2], (n, n), dtype=dtype, impl=impl)


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_default_backend_is_sparse_ray_transform():
    ray_trafo = ct.ray_transform(_space(128), num_angles=30)
    assert isinstance(ray_trafo, tomo.RayTransform)
    assert isinstance(ray_trafo.get_impl(), SparseMatrixImpl)
    assert ray_trafo.range.shape == (30, 183)


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_agrees_with_astra_cpu(geometry, dtype):
    # ODL 1.0's astra_cpu backend accepts float32 data only, so the float64
    # operator is compared with the float32 ASTRA reference.
    space = _space(128, dtype)
    ours = ct.ray_transform(space, 30, geometry)
    astra = ct.ray_transform(_space(128, "float32"), 30, geometry, impl="astra_cpu")
    x = odl.core.phantom.shepp_logan(space, modified=True)
    x32 = astra.domain.element(x.asarray().astype("float32"))
    assert _relative(ours(x).asarray(), astra(x32).asarray()) < 1e-5
    y = random_element(ours.range, seed=3)
    y32 = astra.range.element(y.asarray().astype("float32"))
    assert _relative(ours.adjoint(y).asarray(), astra.adjoint(y32).asarray()) < 1e-5


@pytest.mark.parametrize("geometry", ["parallel", "fan"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("impl", ["numpy", "pytorch"])
def test_dot_test(geometry, dtype, impl):
    ray_trafo = ct.ray_transform(_space(32, dtype, impl), 12, geometry)
    assert dot_test(ray_trafo, rtol=1e-4) < 1e-4


def test_dot_test_full_turn_and_astra_cpu():
    space = _space(32)
    dot_test(ct.ray_transform(space, 12, full_turn=True), rtol=1e-4)
    dot_test(ct.ray_transform(space, 12, impl="astra_cpu"), rtol=1e-4)


def test_pytorch_space_keeps_tensors():
    space = _space(32, "float64", "pytorch")
    ray_trafo = ct.ray_transform(space, 10)
    y = ray_trafo(space.one())
    assert isinstance(y.data, torch.Tensor) and y.data.dtype == torch.float64


def test_inversion_round_trip_reduces_residual():
    space = _space(32, "float64")
    ray_trafo = ct.ray_transform(space, 40)
    x_true = odl.core.phantom.shepp_logan(space, modified=True)
    y = ray_trafo(x_true)
    x = space.zero()
    residuals = [(ray_trafo(x) - y).norm()]
    for _ in range(3):
        odl.solvers.conjugate_gradient_normal(ray_trafo, x, y, niter=5)
        residuals.append((ray_trafo(x) - y).norm())
    assert all(b < a for a, b in zip(residuals, residuals[1:]))
    assert residuals[-1] < 0.05 * residuals[0]


def test_batched_projection_equals_per_item():
    space = _space(32)
    ray_trafo = ct.ray_transform(space, 10)
    batch = torch.rand(3, 2, 32, 32)
    out = ray_trafo.get_impl().project(batch)
    for b in range(3):
        for c in range(2):
            expected = ray_trafo(space.element(batch[b, c].numpy())).asarray()
            np.testing.assert_allclose(out[b, c].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_full_turn_rotation_is_cyclic_angle_shift():
    space = _space(32, "float64")
    ray_trafo = ct.ray_transform(space, 16, full_turn=True)
    x = random_element(space, seed=0)
    rotated = space.element(np.rot90(x.asarray()))
    y, y_rot = ray_trafo(x).asarray(), ray_trafo(rotated).asarray()
    # Exact in the continuum; ASTRA's linear-interpolation projector is
    # symmetric under 90-degree rotations only to about 1e-5.
    shifts = [_relative(np.roll(y, k, axis=0), y_rot) for k in range(16)]
    assert min(shifts) < 1e-4
    assert int(np.argmin(shifts)) in (4, 12)


def test_fbp_matches_odl_with_astra_and_reconstructs():
    space = _space(128)
    x = odl.core.phantom.shepp_logan(space, modified=True)
    ours = ct.ray_transform(space, 60)
    reco = ct.fbp(ours, "Hann")(ours(x))
    astra = ct.ray_transform(space, 60, impl="astra_cpu")
    reference = tomo.fbp_op(astra, filter_type="Hann")(astra(x))
    assert _relative(reco.asarray(), reference.asarray()) < 1e-4
    assert _relative(reco.asarray(), x.asarray()) < 0.4  # noise-free, 60 angles: edges and streaks remain


def test_gradcheck_through_operator_module():
    space = _space(8, "float64")
    layer = OperatorModule(ct.ray_transform(space, 5))
    assert layer.batched
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    assert torch.autograd.gradgradcheck(layer, (x,))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"geometry": "cone"}, ValueError, "unknown geometry 'cone'; expected one of 'parallel', 'fan'"),
        ({"impl": "skimage2"}, ValueError, "unknown impl"),
        ({"num_angles": 0}, ValueError, "num_angles must be a positive integer"),
        ({"num_angles": 2.5}, TypeError, "num_angles must be a positive integer"),
        ({"full_turn": True, "geometry": "fan"}, ValueError, "full_turn applies"),
    ],
)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ct.ray_transform(_space(16), **kwargs)


def test_bad_spaces_and_backends():
    with pytest.raises(TypeError, match="real floating dtype"):
        ct.ray_transform(odl.uniform_discr([0, 0], [1, 1], (8, 8), dtype="complex64"))
    with pytest.raises(TypeError, match="odl.DiscretizedSpace"):
        ct.ray_transform(np.zeros((8, 8)))
    if not tomo.ASTRA_CUDA_AVAILABLE:
        with pytest.raises(ValueError, match="astra_cuda"):
            ct.ray_transform(_space(16), impl="astra_cuda")
    with pytest.raises(ValueError, match="frequency_scaling must be in"):
        ct.fbp(ct.ray_transform(_space(16)), frequency_scaling=2.0)
    with pytest.raises(ValueError, match="unknown filter_type"):
        ct.fbp(ct.ray_transform(_space(16)), filter_type="gauss")
    ray_trafo = ct.ray_transform(_space(16))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 16, 16\)"):
        ray_trafo.get_impl().project(torch.zeros(2, 1, 16, 15))


def test_projection_matrix_cache_round_trip(tmp_path, monkeypatch):
    from odl_learned.operators import sparse_projector

    space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    geometry = ct.make_geometry(space, 6)
    fresh = sparse_projector.projection_matrix(geometry, space, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("projection_*.npz"))) == 1

    def no_astra(*args):
        raise AssertionError("ASTRA called although the matrix is cached")

    monkeypatch.setattr(sparse_projector, "_astra_matrix", no_astra)
    monkeypatch.setenv(sparse_projector.CACHE_ENV, str(tmp_path))
    cached = sparse_projector.projection_matrix(geometry, space)
    assert (fresh != cached).nnz == 0
    # another geometry is another file, never a stale hit
    with pytest.raises(AssertionError, match="ASTRA called"):
        sparse_projector.projection_matrix(ct.make_geometry(space, 7), space)
