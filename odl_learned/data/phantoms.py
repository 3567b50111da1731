"""Synthetic CT phantoms: random ellipses (the dival benchmark) and Shepp-Logan.

The random ellipses follow the definition in ``shared/ANCHORS.md`` (dival's
``EllipsesDataset`` as used for the benchmark table there): each image is the
sum of 50 ellipses rendered by :func:`odl.core.phantom.ellipsoid_phantom` with

- value ``v = U(-0.5, 0.5) * Exp(scale=0.4)``,
- half-axes ``0.2 * Exp(scale=1)`` each (not clipped),
- centre ``U(-1, 1)^2`` in the phantom's unit square,
- rotation ``U(0, 2 pi)``,

then shifted and scaled to ``[0, 1]`` by ``(x - min) / (max - min)``.

dival's history holds a second version of the generator
(``variant="zero_background"`` here): a Poisson(40) number of ellipses (at most
70), values ``U(-0.4, 1)``, centres ``U(-0.9, 0.9)^2``, and only the non-zero
(foreground) pixels shifted, so the background stays 0 before the division by
the maximum. Which of the two produced a published number depends on the dival
version used; the ANCHORS definition is the default.

To avoid the inverse crime, dival does not render the phantom on a finer grid:
it upscales the 128 x 128 ground truth bilinearly to 400 x 400
(``skimage.transform.resize(x, (400, 400), order=1)``) and projects that.
:func:`random_ellipses_pair` and :func:`upsample` do exactly this.

Two conventions of ODL's ``ellipsoid_phantom`` matter here: the unit square
``[-1, 1]^2`` is spanned by the outermost *cell centres* of the space (not by
its boundary), and the 2D rotation angle turns the ellipse about its centre.
Arrays are in ODL's axis order (axis 0 is the first coordinate ``x``).
"""

from __future__ import annotations

from typing import Union

import numpy as np
import odl
from odl.core.phantom import ellipsoid_phantom
from odl.core.phantom import shepp_logan as _odl_shepp_logan
from skimage.transform import resize

from odl_learned._checks import check_choice, check_finite, check_positive
from odl_learned.bridge.convert import element_to_tensor

__all__ = (
    "ELLIPSE_VARIANTS",
    "ellipse_parameters",
    "ellipses_image",
    "fine_space",
    "random_ellipses",
    "random_ellipses_batch",
    "random_ellipses_pair",
    "shepp_logan",
    "upsample",
)

#: Names accepted by the ``variant`` arguments of this module.
ELLIPSE_VARIANTS = ("anchors", "zero_background")

RandomSource = Union[np.random.Generator, np.random.RandomState, int, None]


def _as_rng(rng: RandomSource) -> np.random.Generator | np.random.RandomState:
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    return np.random.default_rng(rng)


def _element_array(x: odl.LinearSpace.Element) -> np.ndarray:
    """Return the data of an ODL element as a NumPy array on the CPU."""
    return element_to_tensor(x).detach().cpu().numpy()


def _check_2d_space(space: odl.LinearSpace) -> None:
    if not isinstance(space, odl.DiscretizedSpace) or space.ndim != 2:
        raise TypeError(f"space must be a 2D `odl.uniform_discr` space, got {space!r}")


def ellipse_parameters(num_ellipses: int | None = None, rng: RandomSource = None, *,
                       variant: str = "anchors") -> np.ndarray:
    """Draw random ellipse parameters from dival's distribution.

    Parameters
    ----------
    num_ellipses : int, optional
        ``"anchors"``: the number of ellipses (default 50).
        ``"zero_background"``: the mean of the Poisson-distributed number of
        ellipses (default 40); ``ceil(1.75 * num_ellipses)`` rows are drawn
        (70 for the default, as in dival) and the values of the rows past the
        Poisson draw are set to 0.
    rng : numpy.random.Generator or numpy.random.RandomState or int, optional
        Source of randomness, or a seed for ``numpy.random.default_rng``. The
        draws are made in dival's order, so a ``RandomState(42)`` called
        repeatedly reproduces the parameters of dival's training images.
    variant : {"anchors", "zero_background"}, optional
        Which definition to sample (see the module docstring).

    Returns
    -------
    params : numpy.ndarray, shape (k, 6)
        Rows ``(value, half_axis_1, half_axis_2, centre_x, centre_y,
        rotation)`` in the convention of
        :func:`odl.core.phantom.ellipsoid_phantom`.

    Notes
    -----
    Moments of the ``"anchors"`` distribution, which the tests check:
    :math:`E[v] = 0`, :math:`\\operatorname{Var}[v] = E[U^2] E[X^2] =
    \\tfrac{1}{12} \\cdot 2 \\cdot 0.4^2`, :math:`E[a] = 0.2`,
    :math:`E[c] = 0`, :math:`\\operatorname{Var}[c] = 1/3`,
    :math:`E[\\theta] = \\pi`.

    Examples
    --------
    >>> params = ellipse_parameters(rng=0)
    >>> params.shape
    (50, 6)
    >>> bool(np.all(params[:, 1:3] > 0)) and bool(np.all(np.abs(params[:, 3:5]) <= 1))
    True
    """
    variant = check_choice("variant", variant, ELLIPSE_VARIANTS)
    default = 50 if variant == "anchors" else 40
    num = default if num_ellipses is None else check_positive("num_ellipses", num_ellipses, integer=True)
    rng = _as_rng(rng)
    if variant == "anchors":
        return _anchors_parameters(int(num), rng)
    return _zero_background_parameters(int(num), rng)


def _anchors_parameters(num: int, rng) -> np.ndarray:
    value = rng.uniform(-0.5, 0.5, (num,)) * rng.exponential(0.4, (num,))
    axis_1 = 0.2 * rng.exponential(1.0, (num,))
    axis_2 = 0.2 * rng.exponential(1.0, (num,))
    centre_x = rng.uniform(-1.0, 1.0, (num,))
    centre_y = rng.uniform(-1.0, 1.0, (num,))
    rotation = rng.uniform(0.0, 2 * np.pi, (num,))
    return np.stack((value, axis_1, axis_2, centre_x, centre_y, rotation), axis=1)


def _zero_background_parameters(mean: int, rng) -> np.ndarray:
    rows = int(np.ceil(1.75 * mean))
    value = rng.uniform(-0.4, 1.0, (rows,))
    axis_1 = 0.2 * rng.exponential(1.0, (rows,))
    axis_2 = 0.2 * rng.exponential(1.0, (rows,))
    centre_x = rng.uniform(-0.9, 0.9, (rows,))
    centre_y = rng.uniform(-0.9, 0.9, (rows,))
    rotation = rng.uniform(0.0, 2 * np.pi, (rows,))
    value[min(int(rng.poisson(mean)), rows):] = 0.0
    return np.stack((value, axis_1, axis_2, centre_x, centre_y, rotation), axis=1)


def _normalize(arr: np.ndarray, variant: str) -> np.ndarray:
    """Scale an ellipse image to ``[0, 1]`` the way ``variant`` does.

    A constant image (no ellipse hits a pixel) has no range and becomes 0.
    """
    arr = np.asarray(arr, dtype=np.float64).copy()
    if variant == "anchors":
        arr -= arr.min()
    else:
        foreground = arr != 0
        arr[foreground] -= arr.min()
    peak = arr.max()
    return arr / peak if peak > 0 else np.zeros_like(arr)


def ellipses_image(space: odl.DiscretizedSpace, params: np.ndarray, *,
                   variant: str = "anchors") -> odl.DiscretizedSpaceElement:
    """Render ellipse parameters on ``space`` and scale the result to ``[0, 1]``.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        2D space to render on.
    params : array-like, shape (k, 6)
        Rows as returned by :func:`ellipse_parameters`.
    variant : {"anchors", "zero_background"}, optional
        ``"anchors"``: ``(x - min) / (max - min)``; ``"zero_background"``:
        only non-zero pixels are shifted by ``-min``, then all are divided by
        the maximum. An image that no ellipse touches is returned as zeros.

    Returns
    -------
    x : ``space`` element
        Values in ``[0, 1]``.

    Examples
    --------
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (5, 5))
    >>> x = ellipses_image(space, [[2.0, 0.6, 0.6, 0.0, 0.0, 0.0]])
    >>> x.asarray().tolist()[2]
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    _check_2d_space(space)
    variant = check_choice("variant", variant, ELLIPSE_VARIANTS)
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != 6:
        raise ValueError(f"params has shape {params.shape}; expected (k, 6)")
    check_finite("params", params)
    raw = _element_array(ellipsoid_phantom(space, params))
    return space.element(_normalize(raw, variant))


def random_ellipses(space: odl.DiscretizedSpace, seed: int = 0, *, index: int = 0,
                    num_ellipses: int | None = None,
                    variant: str = "anchors") -> odl.DiscretizedSpaceElement:
    """Return one random-ellipses phantom on ``space``, values in ``[0, 1]``.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        2D space, e.g. ``odl.uniform_discr([-64, -64], [64, 64], (128, 128))``.
    seed : int, optional
        Seed of the data set.
    index : int, optional
        Index of the image in the data set: the parameters are drawn from
        ``numpy.random.default_rng([seed, index])``, so image ``i`` does not
        depend on how many images are drawn before it.
    num_ellipses : int, optional
        See :func:`ellipse_parameters`.
    variant : {"anchors", "zero_background"}, optional
        See the module docstring.

    Returns
    -------
    x : ``space`` element

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (32, 32))
    >>> x = random_ellipses(space, seed=1)
    >>> float(x.asarray().min()), float(x.asarray().max())
    (0.0, 1.0)
    >>> bool((random_ellipses(space, seed=1).asarray() == x.asarray()).all())
    True
    """
    _check_2d_space(space)
    rng = np.random.default_rng([_nonneg("seed", seed), _nonneg("index", index)])
    params = ellipse_parameters(num_ellipses, rng, variant=variant)
    return ellipses_image(space, params, variant=variant)


def _nonneg(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def random_ellipses_batch(space: odl.DiscretizedSpace, n: int, seed: int = 0, *, start: int = 0,
                          num_ellipses: int | None = None,
                          variant: str = "anchors") -> np.ndarray:
    """Return ``n`` random-ellipses phantoms as an array ``(n, *space.shape)``.

    Image ``k`` of the result equals ``random_ellipses(space, seed,
    index=start + k)``, so subsets and continuations are stable: a training
    set of 100 images starts with the same 10 images as one of 10.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        2D space to render on.
    n : int
        Number of images.
    seed : int, optional
        Seed of the data set (use different seeds for train / validation /
        test).
    start : int, optional
        Index of the first image.
    num_ellipses, variant
        See :func:`random_ellipses`.

    Returns
    -------
    images : numpy.ndarray, shape (n, *space.shape)
        In the dtype of ``space``.

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (16, 16), dtype="float32")
    >>> batch = random_ellipses_batch(space, 3, seed=5)
    >>> batch.shape, batch.dtype
    ((3, 16, 16), dtype('float32'))
    >>> bool((random_ellipses_batch(space, 1, seed=5, start=2)[0] == batch[2]).all())
    True
    """
    _check_2d_space(space)
    check_positive("n", n, integer=True)
    start = _nonneg("start", start)
    images = [
        _element_array(random_ellipses(space, seed, index=start + k,
                                       num_ellipses=num_ellipses, variant=variant))
        for k in range(n)
    ]
    return np.stack(images)


def fine_space(space: odl.DiscretizedSpace,
               fine_shape: tuple[int, int] = (400, 400)) -> odl.DiscretizedSpace:
    """Return a space with the extent, dtype and backend of ``space`` and ``fine_shape`` cells.

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (128, 128), dtype="float32")
    >>> fine = fine_space(space)
    >>> fine.shape, fine.dtype_identifier, fine.min_pt.tolist()
    ((400, 400), 'float32', [-64.0, -64.0])
    """
    _check_2d_space(space)
    fine_shape = tuple(fine_shape)
    if len(fine_shape) != space.ndim:
        raise ValueError(f"fine_shape {fine_shape} must have {space.ndim} entries")
    for n in fine_shape:
        check_positive("fine_shape entries", n, integer=True)
    kwargs = {"dtype": space.dtype_identifier, "impl": space.impl}
    if space.impl == "pytorch":
        kwargs["device"] = space.device
    return odl.uniform_discr(space.min_pt, space.max_pt, fine_shape, **kwargs)


def upsample(x, fine: odl.DiscretizedSpace):
    """Upscale ``x`` bilinearly onto the finer space ``fine`` (same extent).

    Bilinear interpolation between cell centres, as
    ``skimage.transform.resize(x, fine.shape, order=1, anti_aliasing=False)``
    (dival's choice): a function that is linear in the coordinates is
    reproduced exactly at every fine cell centre that lies inside the hull of
    the coarse cell centres; in the outer half cell the values are mirrored
    about the outermost coarse centre.

    Parameters
    ----------
    x : odl.DiscretizedSpaceElement or numpy.ndarray
        An element of a 2D space with the extent of ``fine``, or an array
        ``(..., h, w)`` whose last two axes are taken to span that extent (a
        batch is upsampled image by image).
    fine : odl.DiscretizedSpace
        Target space; each of its dimensions is at least that of ``x``.

    Returns
    -------
    x_fine : ``fine`` element, or numpy.ndarray ``(..., *fine.shape)`` for array input

    Raises
    ------
    ValueError
        If the extents differ or ``fine`` is coarser than ``x`` in some axis.

    Examples
    --------
    >>> coarse = odl.uniform_discr([0, 0], [4, 4], (2, 2))
    >>> fine = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> x = coarse.element([[0.0, 1.0], [2.0, 3.0]])
    >>> upsample(x, fine).asarray()[1:3, 1:3].tolist()
    [[0.75, 1.25], [1.75, 2.25]]
    """
    _check_2d_space(fine)
    if isinstance(x, odl.DiscretizedSpaceElement):
        _check_same_extent(x.space, fine)
        return fine.element(_resize_last2(_element_array(x), fine.shape))
    arr = np.asarray(x)
    return _resize_last2(arr, fine.shape).astype(np.result_type(arr.dtype, np.float32), copy=False)


def _check_same_extent(space: odl.LinearSpace, fine: odl.DiscretizedSpace) -> None:
    _check_2d_space(space)
    same = np.allclose(space.min_pt, fine.min_pt) and np.allclose(space.max_pt, fine.max_pt)
    if not same:
        raise ValueError(
            f"x lives on [{space.min_pt}, {space.max_pt}] but fine space on "
            f"[{fine.min_pt}, {fine.max_pt}]; upsampling needs the same extent"
        )


def _resize_last2(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if arr.ndim < 2:
        raise ValueError(f"x has shape {arr.shape}; expected (..., h, w)")
    check_finite("x", arr)
    if arr.shape[-2] > shape[0] or arr.shape[-1] > shape[1]:
        raise ValueError(f"cannot upsample shape {arr.shape[-2:]} to the smaller shape {tuple(shape)}")
    flat = arr.reshape((-1,) + arr.shape[-2:])
    out = [resize(img, shape, order=1, mode="reflect", anti_aliasing=False, preserve_range=True)
           for img in flat.astype(np.float64)]
    return np.stack(out).reshape(arr.shape[:-2] + tuple(shape))


def random_ellipses_pair(space: odl.DiscretizedSpace, fine_shape: tuple[int, int] = (400, 400),
                         seed: int = 0, *, index: int = 0, num_ellipses: int | None = None,
                         variant: str = "anchors"):
    """Return a random-ellipses ground truth and its bilinear upscaling.

    The pair for simulating CT data without the inverse crime, as dival does:
    reconstruct on ``space``, compare with ``x_true``, but compute the data
    from ``x_fine`` with a ray transform on the fine space (same geometry
    angles and detector).

    Parameters
    ----------
    space : odl.DiscretizedSpace
        Reconstruction space.
    fine_shape : tuple of int, optional
        Shape of the fine space (same extent as ``space``).
    seed, index, num_ellipses, variant
        See :func:`random_ellipses`.

    Returns
    -------
    x_true : ``space`` element
        The ground truth, values in ``[0, 1]``.
    x_fine : element of ``fine_space(space, fine_shape)``
        ``upsample(x_true, fine)``.

    Examples
    --------
    >>> space = odl.uniform_discr([-64, -64], [64, 64], (32, 32))
    >>> x_true, x_fine = random_ellipses_pair(space, fine_shape=(100, 100))
    >>> x_fine.space.shape, bool(np.allclose(x_fine.space.max_pt, space.max_pt))
    ((100, 100), True)
    """
    x_true = random_ellipses(space, seed, index=index, num_ellipses=num_ellipses, variant=variant)
    return x_true, upsample(x_true, fine_space(space, fine_shape))


def shepp_logan(space: odl.DiscretizedSpace, modified: bool = True) -> odl.DiscretizedSpaceElement:
    """Return the Shepp-Logan phantom on ``space`` scaled to ``[0, 1]``.

    A thin wrapper of :func:`odl.core.phantom.shepp_logan` followed by
    ``(x - min) / (max - min)``. The modified phantom (Toft's contrast) lies
    in ``[0, 1]`` already, up to rounding; the original one (values up to 2,
    low contrast inside the skull) is rescaled.

    Parameters
    ----------
    space : odl.DiscretizedSpace
        2D (or 3D) space.
    modified : bool, optional
        Use the modified, higher-contrast version.

    Returns
    -------
    x : ``space`` element

    Examples
    --------
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (64, 64))
    >>> x = shepp_logan(space)
    >>> float(x.asarray().min()), float(x.asarray().max())
    (0.0, 1.0)
    """
    if not isinstance(space, odl.DiscretizedSpace) or space.ndim not in (2, 3):
        raise TypeError(f"space must be a 2D or 3D `odl.uniform_discr` space, got {space!r}")
    raw = _element_array(_odl_shepp_logan(space, modified=bool(modified)))
    return space.element(_normalize(raw, "anchors"))
