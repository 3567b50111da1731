"""Mathematical checks of the MRI operators: masks, coil maps, adjoints, batches."""

from __future__ import annotations

import numpy as np
import odl
import pytest
import torch

from odl_learned.operators import mri
from odl_learned.testing import dot_test, random_element

SHAPE = (8, 6)


def image_space(dtype: str = "complex128", impl: str = "pytorch", shape=SHAPE) -> odl.DiscretizedSpace:
    return odl.uniform_discr([-1, -1], [1, 1], shape, impl=impl, dtype=dtype)


def operator(dtype="complex128", impl="pytorch", num_coils=None, mask=None, shape=SHAPE):
    if mask is None:
        mask = mri.cartesian_mask(shape, acceleration=2, center_fraction=0.2, seed=1)
    maps = None if num_coils is None else mri.coil_sensitivities(shape, num_coils, dtype="complex128")
    return mri.subsampled_fourier(image_space(dtype, impl, shape), mask, maps)


def full_mask(shape=SHAPE) -> np.ndarray:
    return np.ones(shape, dtype=bool)


def to_array(x) -> np.ndarray:
    data = x.data
    return data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)


# --- masks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["random", "equispaced"])
@pytest.mark.parametrize(("shape", "acceleration"), [((64, 64), 4), ((40, 96), 6), ((33, 47), 2.5)])
def test_line_mask_fraction_and_centre(pattern, shape, acceleration):
    mask = mri.cartesian_mask(shape, acceleration, center_fraction=0.08, pattern=pattern, seed=3)
    width = shape[1]
    assert mask.shape == shape and mask.dtype == bool
    assert (mask == mask[0]).all()  # full lines along the read-out axis
    assert mask[0].sum() == round(width / acceleration)
    assert abs(mask.mean() - 1 / acceleration) <= 0.5 / width
    num_centre = round(0.08 * width)
    start = (width - num_centre + 1) // 2
    assert mask[:, start : start + num_centre].all()
    assert mask[:, width // 2].all()  # DC of the centred k-space


@pytest.mark.parametrize(("shape", "acceleration"), [((64, 64), 4), ((48, 40), 3)])
def test_radial_mask_fraction_and_centre(shape, acceleration):
    mask = mri.cartesian_mask(shape, acceleration, pattern="radial")
    assert abs(mask.mean() - 1 / acceleration) < 0.02
    centre_row, centre_col = shape[0] // 2, shape[1] // 2
    assert mask[centre_row - 1 : centre_row + 2, centre_col - 1 : centre_col + 2].all()
    assert mask[centre_row].all() and not (mask == mask[0]).all()  # a horizontal spoke, not a line mask


@pytest.mark.parametrize("pattern", mri.MASK_PATTERNS)
def test_mask_is_reproducible(pattern):
    first = mri.cartesian_mask((32, 32), 4, pattern=pattern, seed=7)
    assert np.array_equal(first, mri.cartesian_mask((32, 32), 4, pattern=pattern, seed=7))


@pytest.mark.parametrize("pattern", ["random", "equispaced"])
def test_mask_seeds_differ(pattern):
    masks = {mri.cartesian_mask((16, 64), 8, pattern=pattern, seed=s).tobytes() for s in range(5)}
    assert len(masks) > 1


def test_random_mask_has_variable_density():
    masks = np.array([mri.cartesian_mask((1, 128), 8, 0.04, seed=s)[0] for s in range(200)])
    distance = np.abs(np.arange(128) - 64)
    inner = masks[:, (distance > 3) & (distance < 20)].mean()
    outer = masks[:, distance > 44].mean()
    assert inner > 2 * outer


@pytest.mark.parametrize("acceleration", [1, 0.5, 64, 100])
def test_mask_impossible_acceleration(acceleration):
    with pytest.raises(ValueError, match=r"impossible acceleration factor .* 1 < acceleration < 64"):
        mri.cartesian_mask((8, 64), acceleration)


@pytest.mark.parametrize("center_fraction", [0.3, 0.0])
def test_mask_bad_center_fraction(center_fraction):
    with pytest.raises(ValueError, match="center_fraction"):
        mri.cartesian_mask((8, 64), 4, center_fraction=center_fraction)


def test_mask_unknown_pattern():
    expected = "unknown pattern 'spiral'; expected one of 'random', 'equispaced', 'radial'"
    with pytest.raises(ValueError, match=expected):
        mri.cartesian_mask((8, 64), 4, pattern="spiral")


# --- coil maps ------------------------------------------------------------------------------


@pytest.mark.parametrize("num_coils", [1, 4])
def test_coil_maps_are_normalised_and_smooth(num_coils):
    maps = mri.coil_sensitivities((32, 24), num_coils, dtype="complex128")
    assert maps.shape == (num_coils, 32, 24) and maps.dtype == np.complex128
    np.testing.assert_allclose((np.abs(maps) ** 2).sum(axis=0), 1, rtol=1e-12)
    assert np.abs(np.diff(maps, axis=-1)).max() < 0.25  # smooth: small neighbour differences
    assert np.array_equal(maps, mri.coil_sensitivities((32, 24), num_coils, dtype="complex128"))


def test_coil_maps_errors():
    with pytest.raises(ValueError, match="num_coils must be a positive integer"):
        mri.coil_sensitivities((8, 8), 0)
    with pytest.raises(ValueError, match="unknown dtype 'float32'"):
        mri.coil_sensitivities((8, 8), 2, dtype="float32")


# --- the operator ---------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["numpy", "pytorch"])
@pytest.mark.parametrize("num_coils", [None, 3])
@pytest.mark.parametrize(
    ("dtype", "rtol"), [("float32", 1e-5), ("complex64", 1e-5), ("float64", 1e-12), ("complex128", 1e-12)]
)
def test_dot_test(impl, num_coils, dtype, rtol):
    op = operator(dtype, impl, num_coils)
    assert dot_test(op, rtol=rtol) <= rtol


def test_range_convention():
    op = operator("float32", "numpy", num_coils=3)
    assert op.range.shape == (3, *SHAPE) and op.range.impl == "pytorch"
    assert op.range.dtype == torch.complex64
    assert op.range.weighting.const == op.domain.weighting.const  # an isometry on full sampling
    y = op(random_element(op.domain, seed=0)).data
    assert (y[:, ~op.mask] == 0).all()  # zero-filled: unsampled entries vanish


def test_centred_kspace_convention():
    op = operator(mask=full_mask((4, 6)), shape=(4, 6))
    one = op(op.domain.one()).data
    assert torch.allclose(one[2, 3], torch.tensor(np.sqrt(24), dtype=one.dtype))  # DC at (H//2, W//2)
    assert torch.allclose(one.abs().sum(), torch.tensor(np.sqrt(24), dtype=torch.float64))


@pytest.mark.parametrize(
    ("dtype", "num_coils"), [("complex128", None), ("float64", None), ("complex128", 4), ("float64", 2)]
)
def test_full_sampling_is_isometry(dtype, num_coils):
    op = operator(dtype, num_coils=num_coils, mask=full_mask())
    x = random_element(op.domain, seed=2)
    np.testing.assert_allclose(to_array(op.adjoint(op(x))), to_array(x), atol=1e-12)
    assert abs(op(x).norm() - x.norm()) < 1e-12


def test_subsampled_normal_operator_is_mask_projection():
    op = operator(num_coils=None)
    y = random_element(op.range, seed=4)
    np.testing.assert_allclose(to_array(op(op.adjoint(y))), to_array(y) * op.mask.numpy(), atol=1e-12)


@pytest.mark.parametrize(("dtype", "num_coils"), [("float32", None), ("complex64", 3), ("float64", 2)])
def test_batch_equals_per_item_call(dtype, num_coils):
    op = operator(dtype, num_coils=num_coils)
    items = [random_element(op.domain, seed=s) for s in range(3)]
    batch = torch.stack([x.data for x in items]).unsqueeze(1)  # (B, 1, H, W)
    out = op.torch_call(batch)
    coil_shape = () if num_coils is None else (num_coils,)
    assert out.shape == (3, 1, *coil_shape, *SHAPE) and out.dtype == op.range.dtype
    for k, x in enumerate(items):
        torch.testing.assert_close(out[k, 0], op(x).data)
    back = op.adjoint.torch_call(out)
    assert back.shape == batch.shape and back.dtype == batch.dtype
    for k in range(3):
        torch.testing.assert_close(back[k, 0], op.adjoint(op.range.element(out[k, 0])).data)


@pytest.mark.parametrize("num_coils", [None, 2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradcheck(num_coils, dtype):
    shape = (4, 4)
    op = operator(num_coils=num_coils, mask=mri.cartesian_mask(shape, 2, 0.25), shape=shape)
    x = torch.randn(2, *shape, dtype=dtype, requires_grad=True)
    assert torch.autograd.gradcheck(op.torch_call, (x,))
    y = torch.randn(2, *op.range.shape, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(op.adjoint.torch_call, (y,))


def test_cg_normal_reduces_residual():
    shape = (16, 16)
    op = operator(num_coils=4, mask=mri.cartesian_mask(shape, 3, 0.125, seed=2), shape=shape)
    y = op(random_element(op.domain, seed=5))
    x = op.domain.zero()
    initial = (op(x) - y).norm()
    odl.solvers.conjugate_gradient_normal(op, x, y, niter=5)
    assert (op(x) - y).norm() < 0.1 * initial


def test_operator_input_errors():
    space = image_space()
    with pytest.raises(ValueError, match=r"mask has shape \(8, 8\); expected the image shape \(8, 6\)"):
        mri.subsampled_fourier(space, np.ones((8, 8)))
    with pytest.raises(ValueError, match="mask must be boolean or hold only the values 0 and 1"):
        mri.subsampled_fourier(space, np.full(SHAPE, 0.5))
    with pytest.raises(ValueError, match=r"coil_maps has shape \(2, 8, 8\); expected \(\.\.\., 8, 6\)"):
        mri.subsampled_fourier(space, full_mask(), np.ones((2, 8, 8), dtype=complex))
    with pytest.raises(ValueError, match="domain must be 2D"):
        mri.subsampled_fourier(odl.uniform_discr(0, 1, 8), np.ones(8))
    with pytest.raises(ValueError, match=r"x has shape .*; expected \(\.\.\., 8, 6\)"):
        mri.subsampled_fourier(space, full_mask()).torch_call(torch.ones(8, 8))


# --- direct reconstructions -----------------------------------------------------------------


@pytest.mark.parametrize("num_coils", [None, 3])
def test_zero_filled_recovers_x_on_full_sampling(num_coils):
    op = operator(num_coils=num_coils, mask=full_mask())
    x = random_element(op.domain, seed=6)
    image = mri.zero_filled(op, op(x), magnitude=False)
    assert image.space == op.domain
    np.testing.assert_allclose(to_array(image), to_array(x), atol=1e-12)
    magnitude = mri.zero_filled(op, op(x))
    assert magnitude.space == op.domain.real_space
    np.testing.assert_allclose(to_array(magnitude), np.abs(to_array(x)), atol=1e-12)


def test_zero_filled_real_domain_and_batches():
    op = operator("float64", "numpy", num_coils=2, mask=full_mask())
    x = random_element(op.domain, seed=7)
    np.testing.assert_allclose(to_array(mri.zero_filled(op, op(x), magnitude=False)), to_array(x), atol=1e-12)
    batch = torch.stack([op(x).data, 2 * op(x).data])  # (2, C, H, W)
    images = mri.zero_filled(op, batch, magnitude=False)
    assert isinstance(images, torch.Tensor) and images.shape == (2, *SHAPE) and not images.is_complex()
    torch.testing.assert_close(images[1], 2 * torch.from_numpy(to_array(x)))


@pytest.mark.parametrize("num_coils", [None, 4])
def test_sum_of_squares_is_magnitude_on_full_sampling(num_coils):
    op = operator(num_coils=num_coils, mask=full_mask())
    x = random_element(op.domain, seed=8)
    image = mri.sum_of_squares(op, op(x))
    assert image.space == op.domain.real_space
    np.testing.assert_allclose(to_array(image), np.abs(to_array(x)), atol=1e-12)
    batch = op.torch_call(torch.stack([x.data, x.data]))
    torch.testing.assert_close(mri.sum_of_squares(op, batch)[1], image.data)


def test_reconstruction_input_errors():
    op = operator()
    with pytest.raises(TypeError, match="op must be a SubsampledFourier operator"):
        mri.zero_filled(odl.IdentityOperator(op.domain), op.range.zero())
    with pytest.raises(TypeError, match="y must be an element of"):
        mri.sum_of_squares(op, np.zeros(SHAPE))
    with pytest.raises(ValueError, match=r"y has shape \(3, 3\)"):
        mri.zero_filled(op, torch.zeros(3, 3, dtype=torch.complex128))
