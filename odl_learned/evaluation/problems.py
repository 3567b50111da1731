"""The reference problems of the benchmarks, built reproducibly from seeds.

CT (the dival ellipses problem): a 128 x 128 image on ``[-64, 64]^2``,
parallel beam with 30 angles, ray transform divided by its norm, white
Gaussian noise of 5% of the mean absolute data, and no inverse crime: the
data are projected from the ground truth upscaled bilinearly to 400 x 400
with the same angles and detector, for every phantom.

MRI: single- or multi-coil Cartesian undersampling of real brain slices (or
phantoms), complex Gaussian noise relative to the mean absolute k-space data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import odl

from odl_learned._checks import check_choice, check_positive
from odl_learned.operators import ct, mri, noise

__all__ = ("InverseProblem", "ct_problem", "measure_ct", "mri_problem", "CT_PHANTOMS", "MRI_PHANTOMS", "SPLIT_SEEDS")

CT_PHANTOMS = ("ellipses", "shepp-logan", "real")
MRI_PHANTOMS = ("brain", "shepp-logan")

#: Seeds of the data splits: training, validation (parameter tuning) and test images never coincide.
SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}


@dataclass(frozen=True)
class InverseProblem:
    """A forward operator with test pairs ``(y, x_true)`` and its settings.

    Attributes
    ----------
    task : str
        ``'ct'`` or ``'mri'``.
    op : odl.Operator
        The forward operator used for reconstruction (for CT normalised:
        ``A / ||A||``).
    pairs : list of tuple
        ``(y, x_true)`` with ``y`` in ``op.range`` and ``x_true`` in ``op.domain``
        (for MRI, whose ``op.domain`` is complex, ``x_true`` is the magnitude
        image in ``op.domain.real_space``).
    setting : dict
        Everything that defines the problem, for the JSON report.
    extras : dict
        Objects the methods need besides ``op`` (for CT the unnormalised ray
        transform and the norm, for MRI nothing).

    Examples
    --------
    Usually built by :func:`ct_problem` or :func:`mri_problem`; by hand:

    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    >>> op = odl.ScalingOperator(space, 2.0)
    >>> x_true = space.one()
    >>> problem = InverseProblem("ct", op, [(op(x_true), x_true)], {"phantom": "ones"})
    >>> problem.reco_space == space, len(problem.pairs), problem.extras
    (True, 1, {})
    """

    task: str
    op: odl.Operator
    pairs: list
    setting: dict
    extras: dict = field(default_factory=dict)

    @property
    def reco_space(self) -> odl.LinearSpace:
        """The image space."""
        return self.op.domain


def _ct_images(phantom: str, space, num_images: int, seed: int):
    from odl_learned import data

    if phantom == "ellipses":
        return [data.random_ellipses(space, seed, index=index) for index in range(num_images)]
    if phantom == "shepp-logan":
        return [data.shepp_logan(space)] * num_images
    slices = data.real_ct_slices(space.shape)
    if num_images > len(slices):
        raise ValueError(f"only {len(slices)} real CT slices are available, asked for {num_images}")
    return [space.element(arr) for arr in slices[:num_images]]


def measure_ct(x_true, extras: dict, *, noise_level: float, seed: int):
    """Return the data of ``x_true`` as the CT reference problem measures them.

    As dival does, and for every phantom alike: the image is upscaled
    bilinearly to the fine grid, projected there with the same geometry
    (so there is no inverse crime), divided by the norm of the coarse ray
    transform, and Gaussian noise of ``noise_level`` times the mean of
    ``|y|`` is added with ``seed``.

    Parameters
    ----------
    x_true : odl element
        Image in the problem's image space.
    extras : dict
        ``problem.extras`` of :func:`ct_problem` (``ray_trafo``,
        ``ray_trafo_fine``, ``norm``).
    noise_level : float
        Relative noise level (0: no noise).
    seed : int
        Seed of the noise.

    Examples
    --------
    >>> problem = ct_problem(num_images=1, size=32, fine_size=64, noise_level=0.0)
    >>> y, x_true = problem.pairs[0]
    >>> y_again = measure_ct(x_true, problem.extras, noise_level=0.0, seed=0)
    >>> bool((y_again - y).norm() == 0)
    True
    """
    from odl_learned.data import upsample

    ray_trafo_fine = extras["ray_trafo_fine"]
    x_fine = upsample(x_true, ray_trafo_fine.domain)
    clean = extras["ray_trafo"].range.element(ray_trafo_fine(x_fine).asarray() / extras["norm"])
    return noise.gaussian_noise(clean, noise_level, seed=seed) if noise_level else clean


def ct_problem(
    *,
    phantom: str = "ellipses",
    num_images: int = 10,
    size: int = 128,
    num_angles: int = 30,
    noise_level: float = 0.05,
    fine_size: int = 400,
    seed: int = SPLIT_SEEDS["test"],
    geometry: str = "parallel",
) -> InverseProblem:
    """Return the CT reference problem (dival ellipses by default).

    Parameters
    ----------
    phantom : {'ellipses', 'shepp-logan', 'real'}, optional
        Test images.
    num_images : int, optional
        Number of test pairs.
    size : int, optional
        Image size (``size x size`` on ``[-64, 64]^2``).
    num_angles : int, optional
        Number of parallel-beam angles over ``[0, pi)``.
    noise_level : float, optional
        Noise standard deviation relative to the mean of ``|y|``.
    fine_size : int, optional
        Size of the grid the data are projected from.
    seed : int, optional
        Seed of the images and the noise.
    geometry : {'parallel', 'fan'}, optional
        Beam geometry (:func:`odl_learned.operators.ct.make_geometry`);
        the reference problem is parallel beam.

    Examples
    --------
    >>> problem = ct_problem(num_images=1, size=32, fine_size=64)
    >>> y, x_true = problem.pairs[0]
    >>> y in problem.op.range, x_true in problem.op.domain
    (True, True)
    """
    phantom = check_choice("phantom", phantom, CT_PHANTOMS)
    check_positive("num_images", num_images, integer=True)
    check_positive("size", size, integer=True)
    check_positive("num_angles", num_angles, integer=True)
    if not noise_level >= 0:
        raise ValueError(f"noise_level must be >= 0, got {noise_level}")
    from odl_learned.data import fine_space

    space = odl.uniform_discr([-64, -64], [64, 64], (size, size), dtype="float32")
    fine = fine_space(space, (fine_size, fine_size))
    beam = ct.make_geometry(space, num_angles, geometry)
    ray_trafo = ct.ray_transform(space, geometry=beam)
    ray_trafo_fine = ct.ray_transform(fine, geometry=beam)
    # a fixed start makes the power method, and so the normalisation, reproducible
    norm = float(ray_trafo.norm(estimate=True, xstart=space.one()))
    op = ray_trafo / norm
    extras = {"ray_trafo": ray_trafo, "ray_trafo_fine": ray_trafo_fine, "norm": norm}
    pairs = [
        (measure_ct(x_true, extras, noise_level=noise_level, seed=seed * 100_003 + index), x_true)
        for index, x_true in enumerate(_ct_images(phantom, space, num_images, seed))
    ]
    setting = {
        "phantom": phantom, "num_images": num_images, "size": size, "num_angles": num_angles,
        "geometry": geometry, "noise": f"gaussian, std {noise_level} x mean|y|",
        "data_grid": f"{fine_size}x{fine_size} (no inverse crime)", "operator": "ray transform / its norm",
        "seed": seed,
    }
    return InverseProblem("ct", op, pairs, setting, extras)


def _mri_images(phantom: str, shape, num_images: int, split: str):
    from odl_learned import data

    if phantom == "shepp-logan":
        space = odl.uniform_discr([-1, -1], [1, 1], shape)
        return np.stack([data.shepp_logan(space).asarray()] * num_images)
    slices = data.brain_slices(shape, split=split)
    if num_images > len(slices):
        raise ValueError(f"only {len(slices)} {split} brain slices are available, asked for {num_images}")
    # spread the chosen slices over the whole test range
    picks = np.linspace(0, len(slices) - 1, num_images).round().astype(int)
    return slices[picks]


def mri_problem(
    *,
    phantom: str = "brain",
    num_images: int = 10,
    size: int = 128,
    acceleration: float = 4,
    pattern: str = "random",
    num_coils: int = 1,
    noise_level: float = 0.02,
    center_fraction: float = 0.08,
    seed: int = SPLIT_SEEDS["test"],
    split: str = "test",
) -> InverseProblem:
    """Return the MRI reference problem: Cartesian undersampling of real brain slices.

    Parameters
    ----------
    phantom : {'brain', 'shepp-logan'}, optional
        Test images (held-out slices of the shipped brain volume by default).
    num_images : int, optional
        Number of test pairs.
    size : int, optional
        Image size.
    acceleration : float, optional
        Undersampling factor.
    pattern : {'random', 'equispaced', 'radial'}, optional
        Sampling pattern (see :func:`odl_learned.operators.mri.cartesian_mask`).
    num_coils : int, optional
        1 for single coil, else synthetic coil maps.
    noise_level : float, optional
        Complex noise standard deviation relative to the mean of ``|y|`` on
        the sampled k-space locations.
    center_fraction : float, optional
        Fully sampled centre of k-space.
    seed : int, optional
        Seed of the mask, the coils and the noise.
    split : {'test', 'validation'}, optional
        Which held-out brain slices to use (disjoint slice ranges).

    Examples
    --------
    >>> problem = mri_problem(phantom="shepp-logan", num_images=1, size=32)
    >>> y, x_true = problem.pairs[0]
    >>> y in problem.op.range, x_true in problem.op.domain.real_space
    (True, True)
    """
    phantom = check_choice("phantom", phantom, MRI_PHANTOMS)
    split = check_choice("split", split, ("test", "validation"))
    check_positive("num_images", num_images, integer=True)
    check_positive("num_coils", num_coils, integer=True)
    if not noise_level >= 0:
        raise ValueError(f"noise_level must be >= 0, got {noise_level}")
    shape = (size, size)
    # complex images (as MRI measures them); the ground truth is the magnitude
    space = odl.uniform_discr([-1, -1], [1, 1], shape, dtype="complex64")
    mask = mri.cartesian_mask(shape, acceleration, center_fraction=center_fraction, pattern=pattern, seed=seed)
    coil_maps = None if num_coils == 1 else mri.coil_sensitivities(shape, num_coils, seed=seed)
    op = mri.subsampled_fourier(space, mask, coil_maps)
    pairs = []
    for index, image in enumerate(_mri_images(phantom, shape, num_images, "val" if split == "validation" else "test")):
        x_true = space.real_space.element(np.abs(image))
        clean = op(space.element(np.asarray(image, dtype=np.complex64)))
        y = _mri_noise(op, clean, noise_level, seed * 100_003 + index)
        pairs.append((y, x_true))
    setting = {
        "phantom": phantom, "num_images": num_images, "size": size, "acceleration": acceleration,
        "pattern": pattern, "center_fraction": center_fraction, "num_coils": num_coils,
        "sampled_fraction": float(np.mean(mask)),
        "noise": f"complex gaussian, std {noise_level} x mean|y| on sampled k-space", "seed": seed,
        "split": split,
    }
    return InverseProblem("mri", op, pairs, setting)


def _mri_noise(op, clean, noise_level: float, seed: int) -> Any:
    if not noise_level:
        return clean
    import torch

    data = clean.data
    sampled = op.mask.expand_as(data)
    sigma = noise_level * float(data.abs()[sampled].mean())
    noisy = noise.complex_gaussian_noise(data, sigma=sigma, seed=seed)
    return op.range.element(torch.where(sampled, noisy, torch.zeros_like(noisy)))
