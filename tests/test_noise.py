"""Statistical checks of the seeded noise models."""

from __future__ import annotations

import numpy as np
import odl
import pytest
import torch

from odl_learned.operators.noise import complex_gaussian_noise, gaussian_noise, poisson_noise

N = 200_000


def data(kind: str, dtype=np.float64, n: int = N):
    """Positive noise-free data of the given kind: numpy, torch, odl-numpy or odl-pytorch."""
    values = np.random.default_rng(123).uniform(0.5, 3.0, n).astype(dtype)
    if kind == "numpy":
        return values
    if kind == "torch":
        return torch.from_numpy(values)
    impl = "pytorch" if kind == "odl-pytorch" else "numpy"
    space = odl.uniform_discr(0, 1, n, impl=impl, dtype=str(np.dtype(dtype)))
    return space.element(torch.from_numpy(values) if impl == "pytorch" else values)


def as_numpy(y) -> np.ndarray:
    y = y.data if hasattr(y, "space") else y
    return y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)


KINDS = ["numpy", "torch", "odl-numpy", "odl-pytorch"]


# --- Gaussian -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_gaussian_std_is_relative_to_mean_abs(kind):
    y = data(kind)
    noisy = gaussian_noise(y, 0.05, seed=1)
    assert type(noisy) is type(y)
    if hasattr(y, "space"):
        assert noisy.space == y.space
    noise = as_numpy(noisy) - as_numpy(y)
    expected_std = 0.05 * np.abs(as_numpy(y)).mean()
    assert noise.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(noise.mean()) < 0.02 * expected_std
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.01  # white


@pytest.mark.parametrize("kind", KINDS)
def test_gaussian_is_seeded(kind):
    y = data(kind, n=1000)
    first = as_numpy(gaussian_noise(y, 0.1, seed=5))
    np.testing.assert_array_equal(first, as_numpy(gaussian_noise(y, 0.1, seed=5)))
    assert not np.allclose(first, as_numpy(gaussian_noise(y, 0.1, seed=6)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_keeps_dtype_and_zero_level(dtype):
    y = data("numpy", dtype, n=100)
    assert gaussian_noise(y, 0.1).dtype == dtype
    assert gaussian_noise(torch.from_numpy(y), 0.1).dtype == torch.from_numpy(y).dtype
    np.testing.assert_array_equal(gaussian_noise(y, 0.0), y)


def test_gaussian_batch_levels_per_item():
    y = torch.stack([torch.ones(N), 10 * torch.ones(N)]).unsqueeze(1)  # (B, 1, N)
    noise = gaussian_noise(y, 0.1, seed=2, batch_ndim=1) - y
    stds = noise.std(dim=(1, 2))
    torch.testing.assert_close(stds, torch.tensor([0.1, 1.0]), rtol=0.02, atol=0)
    whole = (gaussian_noise(y, 0.1, seed=2) - y).std(dim=(1, 2))  # level from the whole batch
    torch.testing.assert_close(whole, torch.tensor([0.55, 0.55]), rtol=0.02, atol=0)


def test_gaussian_keeps_autograd():
    y = torch.ones(4, 3, requires_grad=True)
    gaussian_noise(y, 0.1).sum().backward()
    torch.testing.assert_close(y.grad, torch.ones(4, 3))


# --- complex Gaussian -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["numpy", "torch", "odl-pytorch"])
def test_complex_gaussian_convention(kind):
    y = data(kind, np.complex128)
    noise = as_numpy(complex_gaussian_noise(y, sigma=0.3, seed=4)) - as_numpy(y)
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(0.09, rel=0.02)  # E|n|^2 = sigma^2
    assert noise.real.std() == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    assert noise.imag.std() == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    assert abs(np.corrcoef(noise.real, noise.imag)[0, 1]) < 0.01  # independent parts


def test_complex_gaussian_relative_level_and_seed():
    y = data("numpy", np.complex64) * np.complex64(np.exp(1j))
    noisy = complex_gaussian_noise(y, 0.05, seed=8)
    assert noisy.dtype == np.complex64
    sigma = np.sqrt(np.mean(np.abs(noisy - y) ** 2))
    assert sigma == pytest.approx(0.05 * np.abs(y).mean(), rel=0.02)
    np.testing.assert_array_equal(noisy, complex_gaussian_noise(y, 0.05, seed=8))
    assert not np.allclose(noisy, complex_gaussian_noise(y, 0.05, seed=9))


# --- Poisson --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_poisson_approaches_data_with_more_photons(kind):
    y = data(kind, n=20_000)
    errors = [
        np.abs(as_numpy(poisson_noise(y, photons, seed=0)) - as_numpy(y)).mean() for photons in (1e2, 1e4, 1e6)
    ]
    assert errors[0] > 5 * errors[1] > 25 * errors[2]  # error ~ 1 / sqrt(photons)
    assert errors[2] < 0.02
    assert type(poisson_noise(y, 1e3)) is type(y)


def test_poisson_statistics_and_clipping():
    y = np.full(N, 0.5)
    noisy = poisson_noise(y, 1e3, seed=3)
    counts = 1e3 * np.exp(-noisy)
    assert counts.mean() == pytest.approx(1e3 * np.exp(-0.5), rel=1e-3)
    assert counts.var() == pytest.approx(counts.mean(), rel=0.02)  # Poisson: variance = mean
    np.testing.assert_array_equal(noisy, poisson_noise(y, 1e3, seed=3))
    assert not np.array_equal(noisy, poisson_noise(y, 1e3, seed=4))
    clipped = poisson_noise(np.full(100, 30.0), photons=50)  # zero counts are clipped to one count
    assert clipped.max() == pytest.approx(np.log(50))


def test_poisson_attenuation_scale():
    y = torch.full((N,), 0.25, dtype=torch.float32)
    noisy = poisson_noise(y, 1e6, seed=1, mu=2.0)
    assert noisy.dtype == torch.float32
    assert float(noisy.mean()) == pytest.approx(0.25, rel=1e-3)


# --- errors ---------------------------------------------------------------------------------


def test_noise_input_errors():
    y = np.ones(4)
    with pytest.raises(ValueError, match="relative_level must be a non-negative finite number, got -0.1"):
        gaussian_noise(y, -0.1)
    with pytest.raises(ValueError, match="y contains NaN or Inf values"):
        gaussian_noise(np.array([1.0, np.inf]), 0.1)
    with pytest.raises(ValueError, match="y contains NaN or Inf values"):
        poisson_noise(torch.tensor([np.nan]), 100)
    with pytest.raises(ValueError, match="photons must be a positive number, got 0"):
        poisson_noise(y, 0)
    with pytest.raises(ValueError, match="mu must be a positive number"):
        poisson_noise(y, 10, mu=-1.0)
    with pytest.raises(TypeError, match="gaussian_noise needs real data"):
        gaussian_noise(y + 1j, 0.1)
    with pytest.raises(TypeError, match="complex_gaussian_noise needs complex data"):
        complex_gaussian_noise(y, 0.1)
    with pytest.raises(ValueError, match="give exactly one of relative_level and sigma"):
        complex_gaussian_noise(y + 1j, 0.1, sigma=0.1)
    with pytest.raises(ValueError, match="sigma must be a non-negative finite number"):
        complex_gaussian_noise(y + 1j, sigma=-1.0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        gaussian_noise(y, 0.1, seed=-1)
    with pytest.raises(ValueError, match="batch_ndim must be 0 for an ODL element"):
        gaussian_noise(odl.rn(4).one(), 0.1, batch_ndim=1)
