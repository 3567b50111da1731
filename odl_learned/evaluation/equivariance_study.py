r"""The "equivariance by design" study: equivariant against ordinary learned proximal gradient for CT.

Celledoni et al. (2021) compare, for CT with a rotation-equivariant
acquisition, a learned proximal gradient method whose proximal networks are
rotation-equivariant with ordinary ones of the same parameter count, trained
on few to many images, and test them on upright and on rotated images. This
module repeats that comparison; ``odl-learned benchmark equivariance`` runs it.

Problem
-------
* Images: the dival random ellipses (:func:`~odl_learned.data.random_ellipses`)
  on ``size x size`` cells of :math:`[-64, 64]^2` (128, or 64 with
  ``--quick``), float32; training images from the training seed, test images
  from the test seed (:data:`~odl_learned.data.pairs.SPLIT_SEEDS`).
* Geometry: parallel beam, ``num_angles`` angles evenly spaced over the
  **full turn** (default 60: the cell midpoints :math:`(k + 1/2) \cdot 6°`
  are exactly the 30 directions of the dival half-turn reference problem, each
  measured from both sides), detector as ODL's ``parallel_beam_geometry``.
  ``num_angles`` must be divisible by 4, so that an image quarter turn is a
  cyclic shift of the sinogram by ``num_angles / 4`` rows
  (:func:`~odl_learned.operators.groups.sinogram_rotation`).
* Data: projected from the bilinear upscaling to a ``fine_size`` grid (400 for
  128, 200 for 64: no inverse crime), divided by the norm of the
  ``size x size`` operator, plus Gaussian noise of 5% of mean :math:`|y|`,
  as in :func:`~odl_learned.data.pairs.ct_ellipse_pairs` but with this
  geometry (:class:`StudyProblem`).

Why the operator is symmetrised
-------------------------------
ASTRA's projection matrix is *not* exactly C4-equivariant: its kernel works in
float32 with angle-dependent rounding of the ray positions, and the rows of
angle :math:`\theta + \pi/2` differ from the quarter-turned rows of
:math:`\theta` by up to :math:`10^{-4}` relative (Frobenius norm per angle
block), which makes :math:`\|A R x - S A x\| / \|A x\|` about
:math:`10^{-5}` at 128 x 128. :class:`C4SymmetricMatrixImpl` therefore
computes ASTRA's matrix for the first quarter of the angles only and obtains
the other three quarters by rotating those rows exactly (a permutation of the
columns). The result differs from ASTRA's full matrix by about
:math:`10^{-5}` relative (float32 level of ASTRA itself) and is
equivariant to float32 rounding of the matrix product
(:math:`\approx 2 \cdot 10^{-7}`). FBP (a filter on each detector row, then
the back-projection :math:`A^*`) and :math:`A^*` inherit the exactness.

Methods
-------
All three are :class:`~odl_learned.nets.unrolled.LearnedProximalGradient`
networks with 8 iterations started from FBP (Hann filter, frequency scaling
0.4, the benchmark's choice for ellipses), learned step sizes and one
residual proximal network per iteration:

* ``'equivariant'``: :class:`~odl_learned.nets.equivariant.EquivariantConvBlock`
  (group C4, 3 layers, ``hidden`` regular fields, ``residual=True``);
* ``'ordinary'``: ``x + CNN(x)`` with the CNN from
  :func:`~odl_learned.nets.equivariant.matched_cnn` (the same parameter
  count within 2%);
* ``'augmented'``: the ordinary network trained with random quarter turns of
  the training pairs (:class:`QuarterTurnAugmentation`).

Every method and training-set size ``N`` is trained from the same initial
weights (seed fixed) for the same number of steps with
:class:`~odl_learned.training.Trainer`; the sets of ``N`` images are nested.

Test sets
---------
* ``'upright'``: the test images as they are.
* ``'rotated'``: the same images, each rotated by a random angle (uniform in
  :math:`[0, 2\pi)`, seeded) with bilinear interpolation
  (:class:`~odl_learned.operators.groups.Rotation`) **before** measuring: the
  rotated images are new ground truths, whose data are simulated afresh
  (upscaling, projection, noise). This is the paper's test. The ellipses fill
  the whole square, corners included, so the rotation is done on a canvas
  that holds the rotated square (the same ellipses rendered there), then
  cropped and scaled to ``[0, 1]`` like the upright images: no cut-off
  corners; for angle 0 the image is exactly the upright one. Interpolation
  smooths the rotated images slightly (a small shift of distribution that
  all methods share).
* ``'rotated90'``: the same images turned by a random number (1 to 3) of quarter
  turns, with the data turned exactly (sinogram shift, same noise). On this
  set an exactly equivariant reconstructor scores as on ``'upright'``.

Reported per method and ``N``: PSNR and SSIM (means over the test images, data
range of each ground truth) on each test set, the equivariance error
:func:`~odl_learned.metrics.equivariance_error` over the three non-trivial
quarter turns of :class:`~odl_learned.operators.groups.CyclicGroup` (4) on the
first test data, the median test-time seconds per image (one image per call),
the seconds per image of one batched call, the parameter count and the
training time. FBP is reported as a baseline.

Cost
----
Measured on 2 CPU cores (batch 4, 60 angles): a training step takes about
0.29 s (equivariant) and 0.13 s (ordinary, augmented) at 128 x 128, 0.07 s and
0.03 s at 64 x 64. The default study (4 sizes, 2000 steps) therefore trains
for about :math:`4 \cdot 2000 \cdot 0.55` s, 75 minutes, plus a few minutes of
data generation and testing; ``--quick`` takes about a minute. Training runs
are not checkpointed: an interrupted study starts again.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import odl
import scipy.sparse
import torch
from odl.applications import tomo
from odl.core.set.space import LinearSpaceElement
from torch import nn
from torch.utils.data import Dataset

from odl_learned._checks import check_positive
from odl_learned.bridge.compile import batched_torch_function
from odl_learned.operators.sparse_projector import SparseMatrixImpl

__all__ = (
    "STUDY_METHODS",
    "TEST_SETS",
    "StudySetting",
    "C4SymmetricMatrixImpl",
    "quarter_turn_ray_transform",
    "StudyProblem",
    "rotate_pair",
    "QuarterTurnAugmentation",
    "build_network",
    "evaluate_network",
    "run_study",
    "study_table",
    "save_study_figure",
)

#: The compared reconstructors.
STUDY_METHODS = ("equivariant", "ordinary", "augmented")
#: The test sets, in report order.
TEST_SETS = ("upright", "rotated", "rotated90")

_EXTENT = 64.0
_FBP_FILTER = ("Hann", 0.4)  # the benchmark's FBP for the ellipses
_ROTATION_SEED_KEY = 7  # keys of the seeded draws of test rotations
_TURN_SEED_KEY = 9


# --- setting ---------------------------------------------------------------------------------


def _int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class StudySetting:
    """Everything that defines one run of the study (immutable, validated).

    Parameters
    ----------
    size : int
        Image size (``size x size`` cells of ``[-64, 64]^2``); even, >= 16.
    num_angles : int
        Angles over the full turn; divisible by 4.
    noise_level : float
        Noise standard deviation relative to mean ``|y|``.
    fine_size : int or None
        Grid the data are projected from; default ``400 * size / 128``
        (rounded), at least ``size``.
    sizes : tuple of int
        Training-set sizes ``N`` (nested sets of the first ``N`` images).
    steps : int
        Optimiser steps per training run (the same for every method and ``N``).
    batch_size, learning_rate : int, float
        Of the Adam optimiser (cosine schedule).
    num_iter, hidden, num_layers : int
        Iterations of the learned proximal gradient method; regular fields
        and convolutions of each equivariant proximal network (the ordinary
        one is matched to its parameter count).
    num_test : int
        Test images (each test set).
    num_equivariance : int
        Test data on which the equivariance error is averaged.
    methods : tuple of str
        Some of :data:`STUDY_METHODS`.
    seed : int
        Seeds the initial weights, the sample order and the augmentation.
    device : str or None
        Torch device for training and testing (default: CUDA if available).

    Examples
    --------
    >>> setting = StudySetting.quick()
    >>> setting.size, setting.sizes, setting.fine_size
    (64, (10, 50), 200)
    >>> StudySetting(num_angles=30)
    Traceback (most recent call last):
    ...
    ValueError: num_angles must be divisible by 4 (a quarter turn is num_angles / 4 angle steps), got 30
    """

    size: int = 128
    num_angles: int = 60
    noise_level: float = 0.05
    fine_size: int | None = None
    sizes: tuple[int, ...] = (10, 50, 200, 1000)
    steps: int = 2000
    batch_size: int = 4
    learning_rate: float = 1e-3
    num_iter: int = 8
    hidden: int = 8
    num_layers: int = 3
    num_test: int = 50
    num_equivariance: int = 3
    methods: tuple[str, ...] = STUDY_METHODS
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        size = _int("size", self.size, 16)
        if size % 2:
            raise ValueError(f"size must be even, got {size}")
        num_angles = _int("num_angles", self.num_angles, 4)
        if num_angles % 4:
            raise ValueError(
                f"num_angles must be divisible by 4 (a quarter turn is num_angles / 4 angle steps), got {num_angles}")
        if isinstance(self.noise_level, bool) or not isinstance(self.noise_level, (int, float, np.floating)):
            raise TypeError(f"noise_level must be a number, got {self.noise_level!r}")
        if not (math.isfinite(self.noise_level) and self.noise_level >= 0):
            raise ValueError(f"noise_level must be >= 0, got {self.noise_level!r}")
        fine = round(400 * size / 128) if self.fine_size is None else _int("fine_size", self.fine_size)
        if fine < size:
            raise ValueError(f"fine_size must be at least size={size} (the data grid is finer), got {fine}")
        sizes = tuple(_int("training-set size", n) for n in self.sizes)
        if not sizes or len(set(sizes)) != len(sizes):
            raise ValueError(f"sizes must be distinct positive integers, got {self.sizes!r}")
        methods = tuple(self.methods)
        unknown = [m for m in methods if m not in STUDY_METHODS]
        if unknown or not methods or len(set(methods)) != len(methods):
            raise ValueError(f"methods must be distinct names among {', '.join(STUDY_METHODS)}, got {self.methods!r}")
        for name in ("steps", "batch_size", "num_iter", "hidden", "num_test", "num_equivariance"):
            set_(name, _int(name, getattr(self, name)))
        set_("num_layers", _int("num_layers", self.num_layers, 2))
        set_("seed", _int("seed", self.seed, 0))
        set_("learning_rate", float(check_positive("learning_rate", self.learning_rate)))
        if self.num_equivariance > self.num_test:
            raise ValueError(f"num_equivariance ({self.num_equivariance}) must be at most num_test ({self.num_test})")
        set_("size", size)
        set_("num_angles", num_angles)
        set_("noise_level", float(self.noise_level))
        set_("fine_size", fine)
        set_("sizes", tuple(sorted(sizes)))
        set_("methods", methods)

    @classmethod
    def quick(cls, **changes: Any) -> StudySetting:
        """The ``--quick`` setting: 64 x 64, ``N`` in 10 and 50, 200 steps, 8 test images (~1 minute, 2 cores).

        Parameters
        ----------
        **changes
            Fields that differ from the quick defaults.

        Examples
        --------
        >>> StudySetting.quick(steps=5).steps
        5
        """
        quick = {"size": 64, "sizes": (10, 50), "steps": 200, "num_test": 8}
        quick.update(changes)
        return cls(**quick)

    def to_dict(self) -> dict[str, Any]:
        """Return the setting as a JSON-able dict.

        Examples
        --------
        >>> StudySetting.quick().to_dict()["sizes"]
        [10, 50]
        """
        data = dataclasses.asdict(self)
        data["sizes"] = list(self.sizes)
        data["methods"] = list(self.methods)
        return data


# --- the exactly equivariant operator ---------------------------------------------------------


def _quarter_geometry(geometry: tomo.Parallel2dGeometry) -> tomo.Parallel2dGeometry:
    """The geometry of the first quarter of the angles of a full-turn parallel geometry."""
    if not isinstance(geometry, tomo.Parallel2dGeometry):
        raise ValueError(f"C4SymmetricMatrixImpl needs a 2D parallel beam geometry, got {type(geometry).__name__}")
    apart = geometry.motion_partition
    num_angles = int(apart.shape[0])
    full_turn = np.isclose(float(apart.min_pt[0]), 0.0) and np.isclose(float(apart.max_pt[0]), 2 * np.pi)
    if not (apart.is_uniform and full_turn and num_angles % 4 == 0):
        raise ValueError(
            "C4SymmetricMatrixImpl needs angles evenly spaced over [0, 2 pi) (make_geometry(..., full_turn=True)) "
            f"with a number of angles divisible by 4, got {num_angles} angles over "
            f"[{float(apart.min_pt[0]):.6g}, {float(apart.max_pt[0]):.6g}]")
    det = geometry.det_partition
    if not (det.is_uniform and np.allclose(det.min_pt, -det.max_pt)):
        raise ValueError("C4SymmetricMatrixImpl needs a uniform detector symmetric about 0")
    if not np.allclose(geometry.translation, 0):
        raise ValueError("C4SymmetricMatrixImpl needs the rotation centre at the origin")
    angles = odl.uniform_partition(0, np.pi / 2, num_angles // 4)
    return tomo.Parallel2dGeometry(angles, det)


def _tile_quarter_turns(quarter: scipy.sparse.csr_matrix, n: int) -> scipy.sparse.csr_matrix:
    """Stack ``quarter`` and its rows' images under 1, 2, 3 quarter turns of the ``n x n`` grid.

    Row block ``q`` is block 0 with each row, read as an ``n x n`` weight
    image ``W``, replaced by ``rot90(W, q)``: then ``A rot90(x) = roll(A x,
    num_angles / 4)`` along the angle axis, exactly.
    """
    coo = quarter.tocoo()
    i, j = np.divmod(coo.col.astype(np.int64), n)
    rows, cols = [coo.row.astype(np.int64)], [coo.col.astype(np.int64)]
    for q in range(1, 4):
        i, j = n - 1 - j, i  # numpy.rot90: the entry at (i, j) moves to (n - 1 - j, i)
        rows.append(coo.row + q * quarter.shape[0])
        cols.append(i * n + j)
    matrix = scipy.sparse.csr_matrix(
        (np.tile(coo.data, 4), (np.concatenate(rows), np.concatenate(cols))),
        shape=(4 * quarter.shape[0], quarter.shape[1]))
    matrix.sort_indices()
    return matrix


class C4SymmetricMatrixImpl(SparseMatrixImpl):
    r"""Ray transform backend: ASTRA's matrix for a quarter of the angles, turned exactly for the rest.

    For a parallel beam with ``num_angles`` (divisible by 4) angles evenly
    spaced over :math:`[0, 2\pi)`, the rows of angle :math:`\theta + \pi/2`
    are those of :math:`\theta` with every row, read as an image of weights,
    turned by ``numpy.rot90`` (see the module notes for why ASTRA's own rows
    are not). So, with :math:`R` = ``Rotation90(space, 1)`` and :math:`S` the
    cyclic shift by ``num_angles / 4`` angles,
    :math:`A R = S A` up to float rounding of the matrix product, for
    :math:`A`, and :math:`A^* S = R A^*` for the back-projection. Used through
    :func:`quarter_turn_ray_transform`; everything else is
    :class:`~odl_learned.operators.sparse_projector.SparseMatrixImpl`.

    Parameters
    ----------
    geometry : odl.applications.tomo.Parallel2dGeometry
        Full-turn parallel geometry, detector symmetric about 0, rotation
        centre at the origin.
    vol_space, proj_space : odl.DiscretizedSpace
        Square image space centred at the origin, and the sinogram space.

    Examples
    --------
    >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    >>> from odl_learned.operators import ct
    >>> geometry = ct.make_geometry(space, 8, full_turn=True)
    >>> ray_trafo = tomo.RayTransform(space, geometry, impl=C4SymmetricMatrixImpl)
    >>> x = torch.rand(16, 16, generator=torch.Generator().manual_seed(0))
    >>> impl = ray_trafo.get_impl()
    >>> turned = impl.project(torch.rot90(x, 1, dims=(0, 1)))
    >>> shifted = torch.roll(impl.project(x), 2, dims=0)
    >>> float((turned - shifted).abs().max() / shifted.abs().max()) < 1e-6
    True
    """

    def __init__(self, geometry: tomo.Parallel2dGeometry, vol_space: odl.DiscretizedSpace,
                 proj_space: odl.DiscretizedSpace) -> None:
        quarter = _quarter_geometry(geometry)
        if vol_space.ndim != 2 or vol_space.shape[0] != vol_space.shape[1]:
            raise ValueError(f"C4SymmetricMatrixImpl needs a square 2D image space, got shape {vol_space.shape}")
        if not (np.allclose(vol_space.min_pt, -vol_space.max_pt)
                and np.allclose(vol_space.cell_sides[0], vol_space.cell_sides[1])):
            raise ValueError("C4SymmetricMatrixImpl needs square cells and an image domain centred at the origin")
        super().__init__(quarter, vol_space, proj_space)
        self.geometry = geometry
        self._matrix = _tile_quarter_turns(self._matrix, vol_space.shape[0])
        self._matrix_t = self._matrix.T.tocsr()
        self._cache.clear()


def quarter_turn_ray_transform(space: odl.DiscretizedSpace, num_angles: int = 60, *,
                               geometry: tomo.Parallel2dGeometry | None = None) -> tomo.RayTransform:
    """Return the full-turn parallel-beam ray transform that commutes exactly with quarter turns.

    An ``odl.applications.tomo.RayTransform`` with the
    :class:`C4SymmetricMatrixImpl` backend, so FBP, ``adjoint``, ``norm``,
    :func:`~odl_learned.operators.groups.sinogram_rotation` and
    :func:`~odl_learned.bridge.compile.batched_torch_function` work as for
    :func:`odl_learned.operators.ct.ray_transform`.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        Square 2D image space centred at the origin.
    num_angles : int, optional
        Angles over the full turn, divisible by 4 (ignored with ``geometry``).
    geometry : odl.applications.tomo.Parallel2dGeometry, optional
        A full-turn parallel geometry to use instead, e.g. that of a coarser
        grid (data projected from a fine grid with the coarse detector).

    Examples
    --------
    >>> from odl_learned.operators import groups
    >>> space = odl.uniform_discr([-16, -16], [16, 16], (32, 32), dtype="float32")
    >>> ray_trafo = quarter_turn_ray_transform(space, 16)
    >>> x = groups.smooth_test_image(space)
    >>> S = groups.sinogram_rotation(ray_trafo, 4)
    >>> groups.equivariance_check(ray_trafo, groups.Rotation90(space, 1), S, x) < 1e-6
    True
    """
    from odl_learned.operators import ct

    if geometry is None:
        geometry = ct.make_geometry(space, _int("num_angles", num_angles, 4), full_turn=True)
    _quarter_geometry(geometry)  # checked now: ODL builds the backend only when it is first used
    return tomo.RayTransform(space, geometry, impl=C4SymmetricMatrixImpl)


# --- data ------------------------------------------------------------------------------------


class _StudyForward:
    """``x -> A_fine(U x) / ||A||`` on batches ``(B, n, n)``: the measurement without inverse crime."""

    def __init__(self, problem: StudyProblem) -> None:
        self.problem = problem

    @property
    def op(self) -> odl.Operator:
        return self.problem.op

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.problem.measure(x)


class _Images:
    """``index -> random_ellipses(space, seed, index)``, or that phantom rotated by ``angles[index]``.

    The rotation is interpolated (bilinear :class:`~odl_learned.operators.groups.Rotation`)
    on a canvas large enough to hold the rotated square: the ellipses are
    rendered there (the same function of the plane, the unit square of their
    parameters scaled to the canvas), rotated, cropped to the image domain and
    scaled to ``[0, 1]`` as :func:`~odl_learned.data.random_ellipses` does; so
    the corners of the rotated image hold ellipses too (no cut-off wedges), and
    for angle 0 the image is :func:`~odl_learned.data.random_ellipses`'.
    """

    def __init__(self, space: odl.DiscretizedSpace, seed: int, angles: Sequence[float] | None = None) -> None:
        self.space, self.seed, self.angles = space, seed, angles

    def __call__(self, index: int) -> np.ndarray:
        from odl_learned.data import random_ellipses

        if self.angles is None:
            return np.asarray(random_ellipses(self.space, self.seed, index=index).asarray(), dtype=np.float32)
        return self._rotated(index, float(self.angles[index]))

    def _rotated(self, index: int, angle: float) -> np.ndarray:
        from odl.core.phantom import ellipsoid_phantom

        from odl_learned.data.phantoms import ellipse_parameters
        from odl_learned.operators.groups import Rotation

        n = self.space.shape[0]
        pad = math.ceil(n * (math.sqrt(2) - 1) / 2) + 1  # the rotated square's corners, plus a bilinear neighbour
        half = float(self.space.cell_sides[0]) * (n + 2 * pad) / 2
        canvas = odl.uniform_discr([-half, -half], [half, half], (n + 2 * pad, n + 2 * pad))
        params = ellipse_parameters(None, np.random.default_rng([self.seed, index]))
        # ellipsoid_phantom's unit square spans the outermost cell centres: the same physical ellipses
        params[:, 1:5] *= (n - 1) / (n + 2 * pad - 1)
        raw = ellipsoid_phantom(canvas, params)
        image = Rotation(canvas, angle)(raw).asarray()[pad:pad + n, pad:pad + n]
        image = image - image.min()
        peak = image.max()
        return np.asarray(image / peak if peak > 0 else image, dtype=np.float32)


class StudyProblem:
    """The study's CT problem: operators, measurement and data sets (see the module notes).

    Parameters
    ----------
    setting : StudySetting
        Uses ``size``, ``num_angles``, ``fine_size`` and ``noise_level``.

    Attributes
    ----------
    space : odl.DiscretizedSpace
        Image space, ``size x size`` cells of ``[-64, 64]^2``, float32.
    ray_trafo : odl.applications.tomo.RayTransform
        :func:`quarter_turn_ray_transform` on ``space``.
    norm : float
        Its norm (power method from the constant image).
    op : odl.Operator
        ``ray_trafo / norm``: the operator the networks use.
    fbp_op : odl.Operator
        FBP for ``op`` (Hann, frequency scaling 0.4): ``fbp(ray_trafo) * norm``.

    Examples
    --------
    >>> problem = StudyProblem(StudySetting(size=16, num_angles=8, fine_size=32))
    >>> problem.op.range.shape, round(problem.op.norm(estimate=True), 2)
    ((8, 25), 1.0)
    """

    def __init__(self, setting: StudySetting) -> None:
        from odl_learned.data.phantoms import fine_space
        from odl_learned.operators import ct

        self.setting = setting
        n = setting.size
        self.space = odl.uniform_discr([-_EXTENT, -_EXTENT], [_EXTENT, _EXTENT], (n, n), dtype="float32")
        self.fine_space = fine_space(self.space, (setting.fine_size, setting.fine_size))
        self.ray_trafo = quarter_turn_ray_transform(self.space, setting.num_angles)
        fine_trafo = quarter_turn_ray_transform(self.fine_space, geometry=self.ray_trafo.geometry)
        self.fine_project = batched_torch_function(fine_trafo)
        # a fixed start makes the power method, and so the normalisation, reproducible
        self.norm = float(self.ray_trafo.norm(estimate=True, xstart=self.space.one()))
        self.op = self.ray_trafo / self.norm
        self.fbp_op = ct.fbp(self.ray_trafo, *_FBP_FILTER) * self.norm

    def measure(self, x: torch.Tensor) -> torch.Tensor:
        """Return the noise-free data of images ``x``: projections of their fine-grid upscaling over ``norm``.

        Parameters
        ----------
        x : torch.Tensor
            Images ``(..., size, size)`` (on the CPU).

        Returns
        -------
        y : torch.Tensor
            float32 data ``(..., num_angles, detector)``.

        Examples
        --------
        >>> problem = StudyProblem(StudySetting(size=16, num_angles=8, fine_size=32))
        >>> x = torch.ones(2, 1, 16, 16)
        >>> y = problem.measure(x)
        >>> tuple(y.shape)
        (2, 1, 8, 25)
        >>> coarse = torch.from_numpy(problem.op(x[0, 0].numpy()).asarray())  # the same up to discretisation
        >>> float((y[0, 0] - coarse).norm() / coarse.norm()) < 0.05
        True
        """
        from odl_learned.data.phantoms import upsample

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of images (..., n, n), got {type(x).__name__}")
        fine = upsample(x.detach().cpu().numpy(), self.fine_space)
        fine = torch.from_numpy(np.ascontiguousarray(fine, dtype=np.float32))
        return self.fine_project(fine) / self.norm

    def description(self) -> dict[str, Any]:
        """The problem as a JSON-able dict (for the report).

        Examples
        --------
        >>> StudyProblem(StudySetting(size=16, num_angles=8, fine_size=32)).description()["geometry"]
        'parallel beam, 8 angles evenly spaced over the full turn [0, 2 pi)'
        """
        s = self.setting
        return {
            "size": s.size, "extent": [-_EXTENT, _EXTENT], "num_angles": s.num_angles,
            "geometry": f"parallel beam, {s.num_angles} angles evenly spaced over the full turn [0, 2 pi)",
            "angle_step_degrees": 360.0 / s.num_angles,
            "detector_pixels": int(self.op.range.shape[1]),
            "operator": "ray transform / its norm; ASTRA's matrix for the first quarter of the angles, "
                        "the other quarters turned exactly (C4SymmetricMatrixImpl)",
            "operator_norm": self.norm,
            "fine_size": s.fine_size,
            "data_grid": f"{s.fine_size}x{s.fine_size} bilinear upscaling (no inverse crime)",
            "noise": f"gaussian, std {s.noise_level} x mean|y|", "noise_level": s.noise_level,
            "phantom": "dival random ellipses (train seed 0, test seed 2)",
            "fbp": {"filter": _FBP_FILTER[0], "frequency_scaling": _FBP_FILTER[1]},
        }

    def pairs(self, seed: int, num_images: int, *, angles: Sequence[float] | None = None):
        """Return the pairs of images ``0 .. num_images - 1`` of the ellipses with ``seed``.

        Parameters
        ----------
        seed : int
            Seed of the images and of the noise (see
            :class:`~odl_learned.data.pairs.PairDataset`).
        num_images : int
        angles : sequence of float, optional
            Rotate image ``i`` by ``angles[i]`` radians (bilinear) before
            measuring it.

        Returns
        -------
        pairs : odl_learned.data.pairs.PairDataset
            Items ``(y, x)`` of shapes ``(1, num_angles, detector)`` and
            ``(1, size, size)``; ``pairs.op`` is :attr:`op`.

        Examples
        --------
        >>> problem = StudyProblem(StudySetting(size=16, num_angles=8, fine_size=32))
        >>> y, x = problem.pairs(0, 2)[1]
        >>> tuple(y.shape), tuple(x.shape)
        ((1, 8, 25), (1, 16, 16))
        """
        from odl_learned.data.pairs import GaussianNoise, PairDataset

        if angles is not None and len(angles) < num_images:
            raise ValueError(f"angles holds {len(angles)} values for {num_images} images")
        setting = {"name": "equivariance_study", **self.description(), "seed": seed,
                   "rotated": angles is not None}
        return PairDataset(_Images(self.space, seed, None if angles is None else list(map(float, angles))),
                           _StudyForward(self), num_images=num_images, noise=GaussianNoise(self.setting.noise_level),
                           seed=seed, op=self.op, setting=setting, progress=False)


def rotate_pair(y: torch.Tensor, x: torch.Tensor, op: odl.Operator, turns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn images by ``turns`` quarter turns and their data by the matching action.

    ``x -> Rotation90(op.domain, turns) x`` and ``y -> S y`` with ``S =
    data_rotation(op, turns * pi / 2)`` (for CT a cyclic shift of the
    sinogram's angles), so that ``op(R x) = S op(x)`` keeps the pair
    consistent; the noise is turned with the data.

    Parameters
    ----------
    y, x : torch.Tensor
        Data ``(..., *op.range.shape)`` and images ``(..., *op.domain.shape)``.
    op : odl.Operator
        The forward operator (a ray transform, possibly scaled, whose angles
        cover one period evenly, or an MRI operator
        :func:`~odl_learned.metrics.data_rotation` accepts).
    turns : int
        Quarter turns (any integer, taken modulo 4).

    Returns
    -------
    y_turned, x_turned : torch.Tensor

    Examples
    --------
    >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    >>> ray_trafo = quarter_turn_ray_transform(space, 8)
    >>> x = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(1))
    >>> y = torch.from_numpy(ray_trafo(x[0].numpy()).asarray())[None]
    >>> y_turned, x_turned = rotate_pair(y, x, ray_trafo, 1)
    >>> projected = torch.from_numpy(ray_trafo(x_turned[0].numpy()).asarray())
    >>> float((projected - y_turned[0]).abs().max() / y.abs().max()) < 1e-6
    True
    """
    from odl_learned.metrics import data_rotation
    from odl_learned.operators.groups import Rotation90

    turns = _int("turns", turns, -(2**62)) % 4
    if turns == 0:
        return y, x
    data_action = data_rotation(op, turns * np.pi / 2)
    image_action = Rotation90(op.domain, turns)
    return data_action.torch_call(y), image_action.torch_call(x)


class QuarterTurnAugmentation(Dataset):
    """A dataset of ``(y, x)`` pairs, each turned by a seeded random number of quarter turns.

    Item ``j`` is pair ``j mod N`` of ``pairs`` (``N = len(pairs)``) turned by
    ``turns(j)`` quarter turns with :func:`rotate_pair` (images turned, data
    shifted to match, noise included). The copies ``b, b + N, b + 2N, b + 3N``
    of pair ``b`` take the four turns in a random order drawn from
    ``numpy.random.default_rng([seed, b])``, so the augmented set holds every
    training image in every orientation once (for ``copies=4``), and item
    ``j`` depends on ``j`` only (reproducible, resumable training).

    Parameters
    ----------
    pairs : map-style dataset
        Items ``(y, x)``: tensors ``(1, *op.range.shape)``, ``(1, *op.domain.shape)``.
    op : odl.Operator
        The forward operator (see :func:`rotate_pair`).
    seed : int, optional
        Seed of the random orders.
    copies : int, optional
        Length of the augmented set in units of ``N``.

    Examples
    --------
    >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    >>> ray_trafo = quarter_turn_ray_transform(space, 8)
    >>> xs = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ys = torch.stack([torch.from_numpy(ray_trafo(x[0].numpy()).asarray())[None] for x in xs])
    >>> augmented = QuarterTurnAugmentation(torch.utils.data.TensorDataset(ys, xs), ray_trafo, seed=1)
    >>> len(augmented), sorted(augmented.turns(j) for j in (0, 3, 6, 9))
    (12, [0, 1, 2, 3])
    >>> y, x = augmented[4]
    >>> projected = torch.from_numpy(ray_trafo(x[0].numpy()).asarray())
    >>> float((projected - y[0]).abs().max() / y.abs().max()) < 1e-6
    True
    """

    def __init__(self, pairs: Dataset, op: odl.Operator, *, seed: int = 0, copies: int = 4) -> None:
        if not (hasattr(pairs, "__len__") and hasattr(pairs, "__getitem__")) or len(pairs) == 0:
            raise TypeError(f"pairs must be a non-empty map-style dataset, got {type(pairs).__name__}")
        if not isinstance(op, odl.Operator):
            raise TypeError(f"op must be an odl.Operator, got {type(op).__name__}")
        self.pairs, self.op = pairs, op
        self.seed = _int("seed", seed, 0)
        self.copies = _int("copies", copies)
        rotate_pair(torch.zeros(op.range.shape), torch.zeros(op.domain.shape), op, 1)  # fails early if op cannot turn

    def __len__(self) -> int:
        return len(self.pairs) * self.copies

    def turns(self, index: int) -> int:
        """The quarter turns applied to item ``index``.

        Examples
        --------
        >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
        >>> pairs = torch.utils.data.TensorDataset(torch.zeros(2, 1, 8, 25), torch.zeros(2, 1, 16, 16))
        >>> augmented = QuarterTurnAugmentation(pairs, quarter_turn_ray_transform(space, 8))
        >>> augmented.turns(1) == augmented.turns(1), 0 <= augmented.turns(5) < 4
        (True, True)
        """
        index = _int("index", index, 0)
        if index >= len(self):
            raise IndexError(f"index {index} is out of range for {len(self)} items")
        base, copy = index % len(self.pairs), index // len(self.pairs)
        order = np.random.default_rng([self.seed, base]).permutation(4)
        return int(order[copy % 4])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, torch.Tensor):
            index = int(index)
        k = self.turns(index)
        y, x = self.pairs[index % len(self.pairs)]
        return rotate_pair(y, x, self.op, k)


# --- networks --------------------------------------------------------------------------------


class _ResidualCNN(nn.Module):
    """``x -> x + CNN(x)``: the ordinary counterpart of ``EquivariantConvBlock(residual=True)``."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.cnn = cnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cnn(x)


def build_network(method: str, op: odl.Operator, *, init: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  hidden: int = 8, num_layers: int = 3, num_iter: int = 8) -> nn.Module:
    """Return the learned proximal gradient network of ``method`` for ``op``.

    Parameters
    ----------
    method : {'equivariant', 'ordinary', 'augmented'}
        ``'equivariant'``: each proximal is an
        :class:`~odl_learned.nets.equivariant.EquivariantConvBlock` (C4,
        residual); ``'ordinary'`` and ``'augmented'`` (the same network,
        trained differently): ``x + CNN(x)`` with a CNN of matched parameter
        count (:func:`~odl_learned.nets.equivariant.matched_cnn`).
    op : odl.Operator
        The (normalised) forward operator; it and its adjoint enter as batched
        torch functions.
    init : callable, optional
        ``y -> x0`` on batches (e.g. FBP); default :math:`A^* y`.
    hidden, num_layers : int, optional
        Of each equivariant proximal network.
    num_iter : int, optional
        Unrolled iterations.

    Returns
    -------
    network : odl_learned.nets.unrolled.LearnedProximalGradient

    Examples
    --------
    >>> space = odl.uniform_discr([-8, -8], [8, 8], (16, 16), dtype="float32")
    >>> op = quarter_turn_ray_transform(space, 8)
    >>> from odl_learned.nets import count_parameters
    >>> eq, cnn = build_network("equivariant", op, num_iter=2), build_network("ordinary", op, num_iter=2)
    >>> count_parameters(eq), count_parameters(cnn)
    (5396, 5316)
    >>> eq(torch.zeros(3, 1, 8, 25)).shape
    torch.Size([3, 1, 16, 16])
    """
    from odl_learned.nets.equivariant import EquivariantConvBlock, matched_cnn
    from odl_learned.nets.unrolled import LearnedProximalGradient

    if method not in STUDY_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(STUDY_METHODS)}")
    forward, adjoint = batched_torch_function(op), batched_torch_function(op.adjoint)
    if forward is None or adjoint is None:
        raise ValueError(f"{op!r} has no batched torch form; use quarter_turn_ray_transform")

    def equivariant_prox(k: int) -> nn.Module:
        return EquivariantConvBlock(1, 1, hidden=hidden, num_layers=num_layers, group="C4", residual=True)

    def ordinary_prox(k: int) -> nn.Module:
        return _ResidualCNN(matched_cnn(equivariant_prox(k)))

    prox = equivariant_prox if method == "equivariant" else ordinary_prox
    return LearnedProximalGradient(forward, adjoint, prox=prox, num_iter=num_iter, init=init)


# --- evaluation ------------------------------------------------------------------------------


def _quality(images: torch.Tensor, truths: torch.Tensor) -> dict[str, float]:
    from odl_learned.metrics import psnr, ssim

    return {"psnr": float(np.mean(psnr(images, truths, batch=True))),
            "ssim": float(np.mean(ssim(images, truths, batch=True)))}


def _reconstruct(network: Callable[[torch.Tensor], torch.Tensor], ys: torch.Tensor, device: torch.device,
                 batch_size: int = 16) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([network(ys[i:i + batch_size].to(device)).cpu() for i in range(0, len(ys), batch_size)])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_networks(networks: Mapping[Hashable, Callable[[torch.Tensor], torch.Tensor]], ys: torch.Tensor, *,
                  rounds: int = 5, num_single: int = 8,
                  device: str | torch.device = "cpu") -> dict[Hashable, dict[str, float]]:
    """Seconds per image of several networks, timed side by side.

    In each of ``rounds`` rounds every network in turn reconstructs the first
    ``num_single`` data one at a time and then the whole batch ``ys`` in one
    call, so all networks see the same machine load (timing them one after
    the other, each right after its training, does not). Two warm-up calls per
    network and batch shape come first.

    Parameters
    ----------
    networks : mapping
        Names (any keys) to callables on batches ``(B, 1, *data_shape)``.
    ys : torch.Tensor
        Test data ``(B, 1, *data_shape)``.
    rounds, num_single : int, optional
    device : str or torch.device, optional

    Returns
    -------
    times : dict
        ``{name: {"seconds_per_image": median of the one-image calls,
        "seconds_per_image_batched": median batch call / B}}``.

    Examples
    --------
    >>> nets = {"double": lambda y: 2 * y, "square": lambda y: y * y}
    >>> times = time_networks(nets, torch.ones(4, 1, 3, 5), rounds=2, num_single=2)
    >>> sorted(times["double"])
    ['seconds_per_image', 'seconds_per_image_batched']
    """
    device = torch.device(device)
    check_positive("rounds", rounds, integer=True)
    check_positive("num_single", num_single, integer=True)
    batch = ys.to(device)
    items = [batch[i:i + 1] for i in range(min(num_single, len(batch)))]
    single: dict[Hashable, list[float]] = {name: [] for name in networks}
    batched: dict[Hashable, list[float]] = {name: [] for name in networks}

    def timed(network, data) -> float:
        _sync(device)
        start = time.perf_counter()
        network(data)
        _sync(device)
        return time.perf_counter() - start

    with torch.no_grad():
        for network in networks.values():  # matrices cached on the device, kernels for both batch shapes
            for _ in range(2):
                network(batch)
                network(items[0])
        for _ in range(rounds):
            for name, network in networks.items():
                single[name] += [timed(network, item) for item in items]
                batched[name].append(timed(network, batch) / len(batch))
    return {name: {"seconds_per_image": float(np.median(single[name])),
                   "seconds_per_image_batched": float(np.median(batched[name]))} for name in networks}


def evaluate_network(network: Callable[[torch.Tensor], torch.Tensor], op: odl.Operator,
                     test_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]], *,
                     num_equivariance: int = 3, device: str | torch.device = "cpu",
                     timing: bool = True) -> dict[str, Any]:
    """Evaluate a reconstruction network on test sets: quality, equivariance error and time.

    Parameters
    ----------
    network : callable
        Batches ``(B, 1, *op.range.shape) -> (B, 1, *op.domain.shape)`` (an
        ``nn.Module`` is put in evaluation mode).
    op : odl.Operator
        The forward operator (for the equivariance error).
    test_sets : mapping
        Name to ``(ys, xs)`` batches; the first is used for the equivariance
        error and the timing.
    num_equivariance : int, optional
        Test data for the equivariance error (CyclicGroup(4), all three
        non-trivial elements).
    device : str or torch.device, optional
    timing : bool, optional
        Also time the network alone (:func:`time_networks`); :func:`run_study`
        times its networks side by side instead.

    Returns
    -------
    result : dict
        ``{name: {'psnr', 'ssim'}}`` per test set, ``'equivariance_error'``,
        and with ``timing``: ``'seconds_per_image'`` (median of one-image
        calls) and ``'seconds_per_image_batched'`` (a call on the whole first
        set, divided by its size).

    Examples
    --------
    >>> problem = StudyProblem(StudySetting(size=16, num_angles=8, fine_size=32))
    >>> ys, xs = problem.pairs(2, 2).arrays()
    >>> fbp = batched_torch_function(problem.fbp_op)
    >>> result = evaluate_network(fbp, problem.op, {"upright": (torch.from_numpy(ys), torch.from_numpy(xs))})
    >>> sorted(result), result["equivariance_error"] < 1e-5
    (['equivariance_error', 'seconds_per_image', 'seconds_per_image_batched', 'upright'], True)
    """
    from odl_learned.metrics import equivariance_error
    from odl_learned.operators.groups import CyclicGroup

    if not test_sets:
        raise ValueError("test_sets must name at least one (ys, xs) pair of batches")
    device = torch.device(device)
    if isinstance(network, nn.Module):
        network.eval()
    result: dict[str, Any] = {}
    for name, (ys, xs) in test_sets.items():
        result[name] = _quality(_reconstruct(network, ys, device), xs)
    ys = next(iter(test_sets.values()))[0]

    def reconstructor(y: LinearSpaceElement) -> LinearSpaceElement:
        data = torch.as_tensor(np.asarray(y.asarray()), dtype=torch.float32)[None, None].to(device)
        with torch.no_grad():
            return op.domain.element(network(data)[0, 0].cpu().numpy())

    data = [op.range.element(ys[i, 0].numpy()) for i in range(min(num_equivariance, len(ys)))]
    result["equivariance_error"] = equivariance_error(reconstructor, CyclicGroup(4), data, op=op)
    if timing:
        result.update(time_networks({"network": network}, ys, device=device)["network"])
    return result


# --- the study -------------------------------------------------------------------------------


def _tensors(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = pairs.arrays()
    return torch.from_numpy(np.ascontiguousarray(ys)), torch.from_numpy(np.ascontiguousarray(xs))


def _test_sets(problem: StudyProblem, setting: StudySetting) -> tuple[dict[str, Any], dict[str, Any]]:
    from odl_learned.data.pairs import SPLIT_SEEDS
    from odl_learned.training import derive_seed

    seed = SPLIT_SEEDS["test"]
    n = setting.num_test
    upright = _tensors(problem.pairs(seed, n))
    angles = np.random.default_rng(derive_seed(seed, _ROTATION_SEED_KEY)).uniform(0, 2 * np.pi, n)
    rotated = _tensors(problem.pairs(seed, n, angles=angles))
    turns = np.random.default_rng(derive_seed(seed, _TURN_SEED_KEY)).integers(1, 4, n)
    turned = [rotate_pair(upright[0][i], upright[1][i], problem.op, int(k)) for i, k in enumerate(turns)]
    rotated90 = (torch.stack([t[0] for t in turned]), torch.stack([t[1] for t in turned]))
    description = {
        "seed": seed, "num_images": n,
        "upright": "the test images as they are",
        "rotated": "each test image rotated by a random angle, uniform in [0, 360) degrees, with bilinear "
                   "interpolation BEFORE measuring (on a canvas holding the rotated square, so the corners hold "
                   "ellipses too; then cropped and scaled to [0, 1]): new ground truths, data simulated afresh "
                   "(upscaling, projection, noise)",
        "rotated90": "each test image turned by 1 to 3 quarter turns (random), its noisy data shifted to "
                     "match (exact; the same noise)",
        "rotation_degrees": [round(float(np.degrees(a)), 3) for a in angles],
        "quarter_turns": [int(k) for k in turns],
    }
    return {"upright": upright, "rotated": rotated, "rotated90": rotated90}, description


def _describe_prox(prox: nn.Module) -> str:
    if isinstance(prox, _ResidualCNN):
        hidden = prox.cnn.layers[0].out_channels
        return f"x + ConvBlock(hidden={hidden}, {len(prox.cnn.layers) // 2 + 1} layers, 3x3, PReLU), matched_cnn"
    return (f"EquivariantConvBlock(group={prox.group.name}, hidden={prox.hidden}, {prox.num_layers} layers, "
            f"{prox.kernel_size}x{prox.kernel_size}, residual={prox.residual})")


def _count(network: nn.Module) -> int:
    from odl_learned.nets import count_parameters

    return int(count_parameters(network))


def run_study(setting: StudySetting, *, progress: bool = False,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train every method on every training-set size and evaluate it; return the report.

    Parameters
    ----------
    setting : StudySetting
    progress : bool, optional
        Show the trainer's progress bars.
    log : callable, optional
        ``log(line)`` for one line per training run; default: print to stderr.

    Returns
    -------
    report : dict
        ``{"task": "equivariance", "setting": {...}, "results": {method: {N:
        {"upright": {"psnr", "ssim"}, "rotated": {...}, "rotated90": {...},
        "equivariance_error", "seconds_per_image", "seconds_per_image_batched",
        "params", "train_seconds", "seconds_per_step", "final_loss"}}},
        "baselines": {"fbp": {...}}}``, with ``N`` as strings (JSON keys).

    Examples
    --------
    >>> setting = StudySetting(size=16, num_angles=8, fine_size=32, sizes=(2,), steps=2, batch_size=2,
    ...                        num_iter=2, hidden=2, num_test=2, num_equivariance=1, methods=("equivariant",),
    ...                        device="cpu")
    >>> report = run_study(setting, log=lambda line: None)
    >>> report["results"]["equivariant"]["2"]["equivariance_error"] < 1e-4
    True
    """
    from odl_learned.data.pairs import SPLIT_SEEDS
    from odl_learned.training import TrainConfig, Trainer

    if not isinstance(setting, StudySetting):
        raise TypeError(f"setting must be a StudySetting, got {type(setting).__name__}")
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    device = torch.device(setting.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    start_all = time.perf_counter()
    problem = StudyProblem(setting)
    log(f"equivariance study: {setting.size}x{setting.size}, {setting.num_angles} angles (full turn), "
        f"N in {list(setting.sizes)}, {setting.steps} steps, device {device}")
    train_ys, train_xs = _tensors(problem.pairs(SPLIT_SEEDS["train"], max(setting.sizes)))
    test_sets, test_description = _test_sets(problem, setting)
    fbp = batched_torch_function(problem.fbp_op)
    baselines = {"fbp": evaluate_network(fbp, problem.op, test_sets, num_equivariance=setting.num_equivariance,
                                         device=device)}
    config = TrainConfig(num_steps=setting.steps, batch_size=setting.batch_size,
                         learning_rate=setting.learning_rate, seed=setting.seed)
    results: dict[str, dict[str, Any]] = {method: {} for method in setting.methods}
    architecture: dict[str, Any] = {}
    trained: dict[tuple[str, int], nn.Module] = {}
    for n in setting.sizes:
        train = torch.utils.data.TensorDataset(train_ys[:n], train_xs[:n])
        for method in setting.methods:
            torch.manual_seed(setting.seed)  # the same initial weights for every N (and ordinary = augmented)
            network = build_network(method, problem.op, init=fbp, hidden=setting.hidden,
                                    num_layers=setting.num_layers, num_iter=setting.num_iter)
            architecture[method] = {"network": "LearnedProximalGradient", "num_iter": setting.num_iter,
                                    "init": f"FBP ({_FBP_FILTER[0]}, frequency scaling {_FBP_FILTER[1]})",
                                    "prox": _describe_prox(network.prox[0]), "params": _count(network),
                                    "prox_params": _count(network.prox[0])}
            dataset = QuarterTurnAugmentation(train, problem.op, seed=setting.seed) if method == "augmented" else train
            trainer = Trainer(network, dataset, config, device=device, progress=progress)
            start = time.perf_counter()
            history = trainer.fit()
            seconds = time.perf_counter() - start
            entry = evaluate_network(network, problem.op, test_sets, num_equivariance=setting.num_equivariance,
                                     device=device, timing=False)
            trained[method, n] = network
            entry.update(params=_count(network), train_seconds=seconds, seconds_per_step=seconds / setting.steps,
                         final_loss=float(np.mean(history["loss"][-max(1, setting.steps // 10):])))
            results[method][str(n)] = entry
            log(f"  {method:<11s} N={n:<5d} {seconds:7.1f} s training, PSNR upright "
                f"{entry['upright']['psnr']:.2f} / rotated {entry['rotated']['psnr']:.2f} dB, "
                f"equivariance error {entry['equivariance_error']:.1e}")
    upright_ys = next(iter(test_sets.values()))[0]
    for (method, n), times in time_networks(trained, upright_ys, device=device).items():
        results[method][str(n)].update(times)
    report_setting = {
        **setting.to_dict(), "device": str(device), "problem": problem.description(), "test_sets": test_description,
        "training": {**config.to_dict(), "train_seed": SPLIT_SEEDS["train"], "nested_subsets": True,
                     "initial_weights": f"torch.manual_seed({setting.seed}) before building each network",
                     "augmentation": "augmented: QuarterTurnAugmentation (each image in all four orientations, "
                                     "random order per image, data shifted to match)"},
        "networks": architecture, "equivariance_error": "metrics.equivariance_error, CyclicGroup(4), "
        f"the first {setting.num_equivariance} upright test data",
        "test_time": "every trained network timed side by side after all training (time_networks): median of "
                     "one-image calls, and of whole-batch calls divided by the batch size",
        "torch_threads": torch.get_num_threads(), "wall_seconds": time.perf_counter() - start_all,
    }
    return {"task": "equivariance", "setting": report_setting, "results": results, "baselines": baselines}


# --- reports ---------------------------------------------------------------------------------


def study_table(report: Mapping[str, Any]) -> str:
    """Format a study report as a Markdown table (one row per method and ``N``, FBP first).

    Examples
    --------
    >>> entry = {"upright": {"psnr": 30.0, "ssim": 0.9}, "rotated": {"psnr": 29.0, "ssim": 0.88},
    ...          "equivariance_error": 1e-7, "seconds_per_image": 0.01, "params": 100}
    >>> print(study_table({"results": {"equivariant": {"10": entry}}}))
    | method | N | params | upright PSNR / SSIM | rotated PSNR / SSIM | equiv. error | s / image |
    |---|---|---|---|---|---|---|
    | equivariant | 10 | 100 | 30.00 / 0.900 | 29.00 / 0.880 | 1.0e-07 | 0.0100 |
    """
    sets = [name for name in TEST_SETS
            if any(name in entry for runs in report["results"].values() for entry in runs.values())]
    header = ["method", "N", "params", *(f"{name} PSNR / SSIM" for name in sets), "equiv. error", "s / image"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(method: str, n: str, params: str, entry: Mapping[str, Any]) -> str:
        cells = [method, n, params, *(f"{entry[s]['psnr']:.2f} / {entry[s]['ssim']:.3f}" for s in sets),
                 f"{entry['equivariance_error']:.1e}", f"{entry['seconds_per_image']:.4f}"]
        return "| " + " | ".join(cells) + " |"

    for name, entry in report.get("baselines", {}).items():
        lines.append(row(name, "-", "0", entry))
    for method, runs in report["results"].items():
        for n, entry in runs.items():
            lines.append(row(method, n, str(entry["params"]), entry))
    return "\n".join(lines)


def save_study_figure(path: str, report: Mapping[str, Any]) -> str:
    """Plot PSNR against the training-set size ``N`` (log scale), one panel per test set, one line per method.

    FBP, where reported, is a dashed horizontal line.

    Parameters
    ----------
    path : str
        Output file (PNG, PDF, ...); its folder is created.
    report : mapping
        As returned by :func:`run_study`.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import os, tempfile
    >>> entry = {"upright": {"psnr": 30.0, "ssim": 0.9}, "rotated": {"psnr": 29.0, "ssim": 0.88}}
    >>> report = {"results": {"equivariant": {"10": entry, "50": entry}}}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     os.path.getsize(save_study_figure(os.path.join(d, "f.png"), report)) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sets = [name for name in TEST_SETS
            if any(name in entry for runs in report["results"].values() for entry in runs.values())]
    titles = {"upright": "upright test images", "rotated": "rotated (random angles)",
              "rotated90": "rotated (quarter turns)"}
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], sets):
        for method, runs in report["results"].items():
            ns = sorted(runs, key=int)
            ax.plot([int(n) for n in ns], [runs[n][name]["psnr"] for n in ns], marker="o", label=method)
        for base, entry in report.get("baselines", {}).items():
            if name in entry:
                ax.axhline(entry[name]["psnr"], color="grey", linestyle="--", label=base)
        ax.set_xscale("log")
        sizes = sorted({int(n) for runs in report["results"].values() for n in runs})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training images N")
        ax.set_title(titles.get(name, name), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Equivariance by design: learned proximal gradient, CT", fontsize=10)
    from odl_learned.evaluation.figures import save_figure

    return save_figure(fig, path)
