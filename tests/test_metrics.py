"""Tests of odl_learned.metrics: PSNR, SSIM and the data discrepancy."""

from __future__ import annotations

import numpy as np
import odl
import pytest
import torch
from skimage.metrics import structural_similarity

from odl_learned.data import random_ellipses_batch
from odl_learned.metrics import data_discrepancy, psnr, ssim


@pytest.fixture(scope="module")
def images():
    space = odl.uniform_discr([-64, -64], [64, 64], (32, 32))
    return random_ellipses_batch(space, 3, seed=0).astype(np.float64)


# --- PSNR -----------------------------------------------------------------------------------------

def test_psnr_of_identical_images_is_inf(images):
    assert psnr(images[0], images[0]) == np.inf
    assert np.all(psnr(images, images) == np.inf)


def test_psnr_known_value_by_hand():
    x_true = np.array([[0.0, 0.5], [1.0, 0.25]])  # data range 1
    x = x_true + np.array([[0.1, -0.3], [0.0, 0.0]])
    # MSE = (0.01 + 0.09) / 4 = 0.025; PSNR = 10 log10(1 / 0.025) = 16.0206 dB
    assert psnr(x, x_true) == pytest.approx(10 * np.log10(40.0), abs=1e-12)
    assert psnr(x, x_true) == pytest.approx(16.0206, abs=1e-4)
    # default data range is max - min of the ground truth, not its maximum
    assert psnr(x + 5, x_true + 5) == pytest.approx(16.0206, abs=1e-4)
    # explicit range 2: + 20 log10(2) = + 6.0206 dB
    assert psnr(x, x_true, data_range=2.0) == pytest.approx(16.0206 + 6.0206, abs=1e-4)


def test_psnr_accepts_elements_arrays_tensors(images):
    space = odl.uniform_discr([-64, -64], [64, 64], (32, 32))
    noisy = images[0] + 0.05 * np.random.default_rng(1).standard_normal((32, 32))
    reference = psnr(noisy, images[0])
    assert isinstance(reference, float)
    assert psnr(space.element(noisy), space.element(images[0])) == pytest.approx(reference)
    assert psnr(torch.from_numpy(noisy), torch.from_numpy(images[0])) == pytest.approx(reference)
    assert psnr(space.element(noisy), torch.from_numpy(images[0])) == pytest.approx(reference)
    torch_space = odl.uniform_discr([-64, -64], [64, 64], (32, 32), impl="pytorch")
    assert psnr(torch_space.element(noisy), images[0]) == pytest.approx(reference)
    grad = torch.from_numpy(noisy).requires_grad_(True)
    assert psnr(grad, images[0]) == pytest.approx(reference)


def test_psnr_batched_is_per_image(images):
    rng = np.random.default_rng(2)
    noisy = images + 0.05 * rng.standard_normal(images.shape)
    values = psnr(noisy, images)
    assert isinstance(values, np.ndarray) and values.shape == (3,)
    expected = [psnr(n, t) for n, t in zip(noisy, images)]
    np.testing.assert_allclose(values, expected)
    # (B, C, H, W) tensors, as the networks use
    values4 = psnr(torch.from_numpy(noisy)[:, None], torch.from_numpy(images)[:, None])
    np.testing.assert_allclose(values4, expected)
    # batch=False: one 3D volume with a single data range
    volume = psnr(noisy, images, batch=False)
    assert isinstance(volume, float) and volume != pytest.approx(float(np.mean(expected)))
    # per-image data ranges
    np.testing.assert_allclose(psnr(noisy, images, data_range=[1.0, 1.0, 2.0])[2],
                               expected[2] + 20 * np.log10(2), atol=1e-9)


def test_psnr_errors(images):
    with pytest.raises(ValueError, match=r"\(32, 32\).*\(32, 31\)"):
        psnr(images[0], images[0][:, :31])
    bad = images[0].copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        psnr(bad, images[0])
    with pytest.raises(ValueError, match="NaN"):
        psnr(images[0], bad)
    with pytest.raises(ValueError, match="constant"):
        psnr(images[0], np.ones((32, 32)))
    with pytest.raises(ValueError, match="data_range"):
        psnr(images[0], images[0], data_range=0.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(images, images, data_range=[1.0, 2.0])
    with pytest.raises(TypeError, match="complex"):
        psnr(images[0] + 1j, images[0])


# --- SSIM -----------------------------------------------------------------------------------------

def test_ssim_of_identical_images_is_one(images):
    assert ssim(images[0], images[0]) == pytest.approx(1.0)
    np.testing.assert_allclose(ssim(images, images), 1.0)


def test_ssim_decreases_with_noise(images):
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(images[0].shape)
    values = [ssim(images[0] + s * noise, images[0]) for s in (0.0, 0.01, 0.05, 0.2, 0.5)]
    assert values[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.5


def test_ssim_matches_skimage_with_ground_truth_range(images):
    rng = np.random.default_rng(4)
    x_true = 3.0 * images[1] - 1.0  # range 3, not [0, 1]
    x = x_true + 0.2 * rng.standard_normal(x_true.shape)
    expected = structural_similarity(x, x_true, data_range=x_true.max() - x_true.min())
    assert ssim(x, x_true) == pytest.approx(expected, abs=1e-12)
    assert ssim(x, x_true, data_range=1.0) == pytest.approx(
        structural_similarity(x, x_true, data_range=1.0), abs=1e-12)
    assert ssim(x, x_true) != pytest.approx(ssim(x, x_true, data_range=1.0))


def test_ssim_batched(images):
    rng = np.random.default_rng(5)
    noisy = images + 0.1 * rng.standard_normal(images.shape)
    expected = [ssim(n, t) for n, t in zip(noisy, images)]
    np.testing.assert_allclose(ssim(noisy, images), expected)
    np.testing.assert_allclose(ssim(torch.from_numpy(noisy)[:, None], torch.from_numpy(images)[:, None]),
                               expected)


def test_ssim_errors(images):
    with pytest.raises(ValueError, match="shape"):
        ssim(images[0], images[1][:-1])
    with pytest.raises(ValueError, match="too small"):
        ssim(np.eye(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        ssim(np.full((8, 8), np.nan), np.eye(8))


# --- data discrepancy ------------------------------------------------------------------------------

def test_data_discrepancy_equals_manual_norm():
    space = odl.uniform_discr([0, 0], [2, 2], (4, 4))
    op = odl.Gradient(space)
    rng = np.random.default_rng(6)
    x = space.element(rng.standard_normal((4, 4)))
    y_arr = rng.standard_normal((2, 4, 4))
    residual = op(x).asarray() - y_arr
    manual = np.sqrt(np.sum(residual**2) * space.cell_volume)  # L2 norm with cell volume 0.25
    assert data_discrepancy(op, x, op.range.element(y_arr)) == pytest.approx(manual)
    assert data_discrepancy(op, x.asarray(), y_arr) == pytest.approx(manual)
    as_tensors = (torch.from_numpy(x.asarray()), torch.from_numpy(y_arr))
    assert data_discrepancy(op, *as_tensors) == pytest.approx(manual)
    assert data_discrepancy(op, x, op(x)) == 0.0


def test_data_discrepancy_batched():
    space = odl.uniform_discr(0, 1, 5)
    op = odl.ScalingOperator(space, 3.0)
    xs = np.arange(10.0).reshape(2, 5)
    ys = np.zeros((2, 5))
    values = data_discrepancy(op, xs, ys)
    assert values.shape == (2,)
    np.testing.assert_allclose(values, [np.sqrt(np.sum((3 * x) ** 2) * 0.2) for x in xs])
    values4 = data_discrepancy(op, xs.reshape(2, 1, 5), ys.reshape(2, 1, 5))
    assert values4.shape == (2, 1)


def test_data_discrepancy_errors():
    space = odl.uniform_discr(0, 1, 5)
    other = odl.uniform_discr(0, 2, 5)
    op = odl.IdentityOperator(space)
    with pytest.raises(TypeError, match="element of"):
        data_discrepancy(op, other.one(), space.one())
    with pytest.raises(ValueError, match=r"\(\.\.\., 5\)"):
        data_discrepancy(op, np.ones(4), space.one())
    with pytest.raises(ValueError, match="batch shape"):
        data_discrepancy(op, np.ones((2, 5)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        data_discrepancy(op, np.full(5, np.nan), space.one())
    grad = odl.Gradient(odl.uniform_discr([0, 0], [1, 1], (3, 3)))
    with pytest.raises(ValueError, match="NaN"):  # product-space data
        data_discrepancy(grad, grad.domain.one(), grad.range.element(np.full((2, 3, 3), np.nan)))
    with pytest.raises(TypeError, match="odl.Operator"):
        data_discrepancy(lambda v: v, space.one(), space.one())
