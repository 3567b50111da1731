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


# --- batched, torch-native FBP (DetectorFilter) ---------------------------------


def _sinograms(ray_trafo, count, seed=0):
    """A phantom's sinogram and ``count - 1`` random ones, as a (count, 1, ...) tensor."""
    space = ray_trafo.domain
    items = [ray_trafo(odl.core.phantom.shepp_logan(space, modified=True)).asarray()]
    items += [random_element(ray_trafo.range, seed=seed + k).asarray() for k in range(1, count)]
    return torch.stack([torch.as_tensor(np.asarray(item)) for item in items])[:, None]


def _odl_per_item(op, batch):
    return np.stack([op(op.domain.element(item.numpy())).asarray() for item in batch.reshape(-1, *op.domain.shape)])


@pytest.mark.parametrize("n", [64, 128])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("filter_type", ["Hann", "Ram-Lak"])
@pytest.mark.parametrize("frequency_scaling", [1.0, 0.4])
@pytest.mark.parametrize("padding", [True, False])
def test_batched_fbp_equals_odl_fbp_op(n, dtype, filter_type, frequency_scaling, padding):
    ray_trafo = ct.ray_transform(_space(n, dtype), 30)
    ours = ct.fbp(ray_trafo, filter_type, frequency_scaling, padding=padding)
    assert isinstance(ours.right, ct.DetectorFilter)
    reference = tomo.fbp_op(ray_trafo, padding=padding, filter_type=filter_type, frequency_scaling=frequency_scaling)
    batch = _sinograms(ray_trafo, 2)
    expected = _odl_per_item(reference, batch)
    layer = OperatorModule(ours)
    assert layer.batched
    out = layer(batch)
    assert out.dtype == batch.dtype
    assert _relative(out.reshape(expected.shape).numpy(), expected) < 1e-5
    # the ODL call of the same operator
    assert _relative(_odl_per_item(ours, batch), expected) < 1e-5


@pytest.mark.parametrize("impl", ["numpy", "pytorch"])
def test_fbp_operator_module_batch_matches_per_item(impl):
    space = _space(128, "float32", impl)
    ray_trafo = ct.ray_transform(space, 30)
    layer = OperatorModule(ct.fbp(ray_trafo))
    assert layer.batched
    batch = _sinograms(ray_trafo, 4).to(torch.float32)
    assert batch.shape == (4, 1, 30, 183)
    out = layer(batch)
    assert out.shape == (4, 1, 128, 128) and out.dtype == torch.float32
    reference = ct.fbp(ray_trafo, batched=False)
    assert not isinstance(reference.right, ct.DetectorFilter)
    if impl == "numpy":
        assert not OperatorModule(reference).batched  # ODL's NumPy filter: once per item
    for b in range(4):
        expected = reference(reference.domain.element(batch[b, 0])).asarray()
        expected = expected.cpu().numpy() if isinstance(expected, torch.Tensor) else expected
        assert _relative(out[b, 0].numpy(), expected) < 1e-5


def test_fbp_gradcheck():
    ray_trafo = ct.ray_transform(_space(16, "float64"), 6)
    layer = OperatorModule(ct.fbp(ray_trafo, "Hann", 0.8))
    assert layer.batched
    y = torch.rand(2, 1, *ray_trafo.range.shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (y,))
    assert torch.autograd.gradgradcheck(layer, (y,))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("impl", ["numpy", "pytorch"])
@pytest.mark.parametrize("padding", [True, False])
def test_detector_filter_dot_test(dtype, impl, padding):
    ray_trafo = ct.ray_transform(_space(32, dtype, impl), 12)
    filt = ct.DetectorFilter.from_operator(tomo.fbp_filter_op(ray_trafo, padding=padding, filter_type="Hann"))
    assert filt.domain == filt.range == ray_trafo.range
    assert dot_test(filt, rtol=1e-5) < 1e-5
    assert filt.adjoint.adjoint is filt
    np.testing.assert_array_equal(filt.adjoint.matrix, filt.matrix.T)
    # not symmetric: padding and cropping make the filter a Toeplitz, not circulant, matrix,
    # and the adjoint is the transpose all the same
    assert dot_test(filt.adjoint, rtol=1e-5) < 1e-5


def test_detector_filter_keeps_device_and_dtype():
    space = _space(16, "float64")
    filt = ct.DetectorFilter(ct.ray_transform(space, 5).range, np.eye(25) * 2)
    for dtype in (torch.float32, torch.float64):
        y = torch.ones(3, 1, 5, 25, dtype=dtype)
        out = filt.torch_call(y)
        assert out.dtype == dtype and out.device == y.device
        torch.testing.assert_close(out, 2 * y)
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 5, 25\)"):
        filt.torch_call(torch.ones(3, 5, 24))


def test_fan_beam_batched_fbp_equals_odl_fbp_op():
    # ODL's 2D fan-beam FBP uses the same row-wise filter as parallel beam
    ray_trafo = ct.ray_transform(_space(64), 30, "fan")
    ours = ct.fbp(ray_trafo, "Hann", 0.8)
    assert OperatorModule(ours).batched
    batch = _sinograms(ray_trafo, 2)
    expected = _odl_per_item(tomo.fbp_op(ray_trafo, filter_type="Hann", frequency_scaling=0.8), batch)
    assert _relative(OperatorModule(ours)(batch).reshape(expected.shape).numpy(), expected) < 1e-5


def test_batched_fbp_impossible_raises():
    ray_trafo = ct.ray_transform(_space(32), 10, impl="astra_cpu")
    with pytest.raises(ValueError, match="batched=True is impossible.*sparse backend"):
        ct.fbp(ray_trafo, batched=True)
    # None falls back to ODL's fbp_op, called once per item
    assert not isinstance(ct.fbp(ray_trafo).right, ct.DetectorFilter)
    with pytest.raises(TypeError, match="batched must be"):
        ct.fbp(ct.ray_transform(_space(16)), batched="yes")


def test_detector_filter_from_operator_rejects_other_operators():
    ray_trafo = ct.ray_transform(_space(32, "float64"), 10)
    ramp = tomo.fbp_filter_op(ray_trafo, filter_type="Ram-Lak")
    sino = ray_trafo.range
    # a weight per angle: not the same filter for every row
    angle_weights = sino.element(np.linspace(0.5, 1.5, 10)[:, None] * np.ones(sino.shape))
    with pytest.raises(ValueError, match="same linear filter to every angle row"):
        ct.DetectorFilter.from_operator(odl.MultiplyOperator(angle_weights) * ramp)
    # the same filter on every row, but rows mixed (each row plus the next one)
    class MixRows(odl.Operator):
        def __init__(self):
            super().__init__(sino, sino, linear=True)

        def _call(self, x):
            arr = x.asarray()
            return arr + np.roll(arr, 1, axis=0)

    with pytest.raises(ValueError, match="same linear filter to every angle row"):
        ct.DetectorFilter.from_operator(ramp * MixRows())
    with pytest.raises(ValueError, match="must be linear"):
        ct.DetectorFilter.from_operator(odl.PowerOperator(sino, 2))
    with pytest.raises(ValueError, match="must have shape"):
        ct.DetectorFilter(sino, np.eye(3))
