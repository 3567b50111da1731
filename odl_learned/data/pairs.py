"""Paired ``(y, x)`` training data: ground truth, forward map and seeded noise.

:class:`PairDataset` is a ``torch.utils.data.Dataset`` whose item ``i`` is
``(y_i, x_i)``: the ground truth ``x_i`` (image ``i`` of a source) and the
noisy data ``y_i = noise(forward(x_i), seed_i)``. Both are tensors with a
channel axis, ``x_i`` of shape ``(1, *image_shape)`` and ``y_i`` of shape
``(1, *data_shape)``, so a ``DataLoader`` gives the ``(B, 1, ...)`` batches that
:mod:`odl_learned.bridge` and the networks expect.

Reproducibility
---------------
Item ``i`` is a function of ``(seed, i)`` only: the image source is indexed
by ``i`` and the noise of item ``i`` is drawn with the seed
``seed * 100_003 + i`` (the convention of
:mod:`odl_learned.evaluation.problems`), so items do not depend on the order
in which they are read, on the batch size or on the number of ``DataLoader``
workers. Datasets are picklable (the forward operators of the factories
below are rebuilt from their parameters in a worker), so workers started
with ``spawn`` or ``forkserver`` work too.

Disk cache
----------
With ``cache_dir=`` (or :meth:`PairDataset.cached`) all pairs are generated
once, in batches (one call of the forward map per batch), and stored as
``.npy`` files in ``cache_dir/<name>-<hash>/`` with a ``settings.json``
describing how they were made (see :mod:`odl_learned.data.cache`); the hash
is taken over those settings, so other settings use another folder. Later
constructions with the same settings memory-map the files and generate
nothing.

Reference problems
------------------
- :func:`ct_ellipse_pairs`: the dival ellipses problem (``shared/ANCHORS.md``):
  128 x 128 ground truth on ``[-64, 64]^2``, data projected from the bilinear
  400 x 400 upscaling with the same 30 parallel-beam angles and detector (no
  inverse crime), divided by the norm of the 128 x 128 ray transform,
  Gaussian noise of 5% of mean ``|y|``. Splits use the seeds
  :data:`SPLIT_SEEDS`.
- :func:`ct_real_pairs`: the same measurement of the real CT slices of
  :func:`~odl_learned.data.real.real_ct_slices` (a test set only).
- :func:`mri_brain_pairs`: single- or multi-coil Cartesian undersampling of
  the shipped brain slices, split by slice range
  (:data:`~odl_learned.data.real.BRAIN_SPLITS`).

For MRI the ground truth ``x`` is the **real magnitude image** (float32, an
element of ``op.domain``, a real space) and ``y`` is complex64 k-space in
``op.range`` (zero off the sampling mask), of shape ``(1, H, W)`` for one coil
and ``(1, C, H, W)`` for ``C`` coils. For CT both are float32.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

import numpy as np
import odl
import torch
from odl.core.set.space import LinearSpaceElement
from torch.utils.data import Dataset

from odl_learned._checks import check_positive
from odl_learned.bridge.compile import batched_torch_function
from odl_learned.bridge.convert import element_to_tensor, tensor_to_element
from odl_learned.data.cache import cache_folder, jsonable, load_arrays, writing_arrays
from odl_learned.operators.noise import (
    _check_level,
    _check_nonneg_int,
    complex_gaussian_noise,
    gaussian_noise,
)

__all__ = (
    "SPLITS",
    "SPLIT_SEEDS",
    "GaussianNoise",
    "ComplexGaussianNoise",
    "PairDataset",
    "ct_ellipse_pairs",
    "ct_real_pairs",
    "mri_brain_pairs",
)

#: Names of the data splits (``'val'`` is accepted for ``'validation'``).
SPLITS = ("train", "validation", "test")

#: Seeds of the splits, as in :mod:`odl_learned.evaluation.problems`: training,
#: validation and test images (and noise) never coincide.
SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}

_SPLIT_ALIASES = {"val": "validation"}
_SEED_STRIDE = 100_003
#: Bumped whenever the generation changes, so that old caches are not reused.
CACHE_FORMAT = 1

ImageSource = Union[np.ndarray, Callable[[int], Any]]
NoiseModel = Callable[[torch.Tensor, int], torch.Tensor]


# --- small checks ---------------------------------------------------------------------------


def _check_split(split: Any) -> str:
    if isinstance(split, str):
        name = _SPLIT_ALIASES.get(split.lower(), split.lower())
        if name in SPLITS:
            return name
    raise ValueError(f"unknown split {split!r}; expected one of 'train', 'validation' (or 'val'), 'test'")


def _noise_seed(seed: int, index: int) -> int:
    """Seed of the noise of item ``index`` (the convention of ``evaluation.problems``)."""
    return seed * _SEED_STRIDE + index


def _item_dtype(dtype: Any) -> np.dtype:
    """float32 for real, complex64 for complex data."""
    complex_ = np.issubdtype(np.dtype(dtype), np.complexfloating)
    return np.dtype(np.complex64) if complex_ else np.dtype(np.float32)


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, LinearSpaceElement):
        return element_to_tensor(value).detach().cpu().numpy()
    return np.asarray(value)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch single-threaded for a while.

    Generation is many small operations per image (rendering, gathers,
    sparse products), which intra-op threads do not speed up but, on a busy
    machine, slow down by an order of magnitude (measured: 300 CT pairs in 3 s
    with one thread, 41 s with two on two loaded cores).
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _sha256(arr: np.ndarray) -> str:
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(str((arr.shape, arr.dtype.str)).encode())
    digest.update(arr.view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


# --- noise models ---------------------------------------------------------------------------


class GaussianNoise:
    """White Gaussian noise with standard deviation ``level * mean|y|`` per item.

    The noise of an item is :func:`odl_learned.operators.noise.gaussian_noise`
    applied to its data as a NumPy array, i.e. drawn from
    ``numpy.random.default_rng(seed)``: the same draw as for the NumPy-backed
    sinograms of :func:`odl_learned.evaluation.problems.ct_problem`.

    Parameters
    ----------
    level : float
        Relative noise level, e.g. 0.05 for "5% of mean ``|y|``"; 0 gives
        noise-free data.

    Examples
    --------
    >>> noise = GaussianNoise(0.1)
    >>> clean = torch.full((1000,), 2.0)
    >>> noisy = noise(clean, seed=3)
    >>> round(float((noisy - clean).std()), 1), bool(torch.equal(noise(clean, 3), noisy))
    (0.2, True)
    """

    def __init__(self, level: float) -> None:
        self.level = _check_level("level", level)

    @property
    def setting(self) -> dict[str, Any]:
        """JSON description (for reports and the cache key)."""
        return {"model": "gaussian", "level": self.level, "std": "level * mean|y| per item"}

    def __call__(self, clean: torch.Tensor, seed: int) -> torch.Tensor:
        """Return ``clean`` plus noise drawn with ``seed``."""
        if self.level == 0:
            return clean.clone()
        return torch.from_numpy(gaussian_noise(_to_numpy(clean), self.level, seed))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.level})"


class ComplexGaussianNoise:
    """Circular complex Gaussian noise for k-space, relative to mean ``|y|`` on the mask.

    ``sigma = level * mean(|y|)`` over the sampled entries (all entries
    without a mask); the noise is
    :func:`odl_learned.operators.noise.complex_gaussian_noise` with that
    ``sigma`` (torch generator seeded with ``seed``) and is set to zero off
    the mask, so the data stay in the range of the subsampled operator. This
    is the noise of :func:`odl_learned.evaluation.problems.mri_problem`.

    Parameters
    ----------
    level : float
        Relative noise level; 0 gives noise-free data.
    mask : array-like of bool, shape (H, W), optional
        Sampling mask in centred k-space convention (broadcast over coils).

    Examples
    --------
    >>> mask = np.zeros((4, 4), dtype=bool); mask[:, 1] = True
    >>> noise = ComplexGaussianNoise(0.1, mask)
    >>> noisy = noise(torch.ones(4, 4, dtype=torch.complex64), seed=0)
    >>> bool((noisy[:, 0] == 0).all()), bool((noisy[:, 1] != 1).all())
    (True, True)
    """

    def __init__(self, level: float, mask: Any = None) -> None:
        self.level = _check_level("level", level)
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        if self.mask is not None and self.mask.ndim != 2:
            raise ValueError(f"mask must have shape (H, W), got {self.mask.shape}")

    @property
    def setting(self) -> dict[str, Any]:
        """JSON description (for reports and the cache key)."""
        masked = None if self.mask is None else _sha256(self.mask)[:16]
        return {"model": "complex_gaussian", "level": self.level,
                "std": "level * mean|y| on sampled k-space, per item", "mask_sha256": masked}

    def __call__(self, clean: torch.Tensor, seed: int) -> torch.Tensor:
        """Return ``clean`` plus noise drawn with ``seed`` (zero off the mask)."""
        if self.level == 0:
            return clean.clone()
        if self.mask is None:
            sampled = torch.ones(clean.shape, dtype=torch.bool)
        else:
            sampled = torch.from_numpy(self.mask).to(clean.device).expand_as(clean)
        sigma = self.level * float(clean.abs()[sampled].mean())
        noisy = complex_gaussian_noise(clean, sigma=sigma, seed=seed)
        return torch.where(sampled, noisy, torch.zeros_like(noisy))

    def __repr__(self) -> str:
        masked = "" if self.mask is None else f", mask={self.mask.shape}"
        return f"{type(self).__name__}({self.level}{masked})"


# --- the dataset ----------------------------------------------------------------------------


class _PerItem:
    """Fallback batched function: an ODL operator called once per item."""

    def __init__(self, op: odl.Operator) -> None:
        self.op = op

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        flat = batch.reshape(-1, *self.op.domain.shape)
        out = [element_to_tensor(self.op(tensor_to_element(t, self.op.domain))) for t in flat]
        return torch.stack(out).reshape(*batch.shape[: batch.ndim - len(self.op.domain.shape)],
                                        *self.op.range.shape)


class PairDataset(Dataset):
    """Pairs ``(y_i, x_i)`` of noisy data and ground truth, deterministic per index.

    Parameters
    ----------
    images : numpy.ndarray or callable
        Ground truth: an array ``(N, *shape)`` (or anything ``np.asarray``
        accepts), or a function ``index -> image`` (array, tensor or ODL
        element) that is deterministic in ``index``.
    forward : odl.Operator or callable
        The forward map. An ODL operator is turned into a batched torch
        function by :func:`~odl_learned.bridge.compile.batched_torch_function`
        (called once per item if it has no batched form); a callable must map
        a tensor ``(B, *shape)`` to ``(B, *data_shape)``.
    num_images : int, optional
        Number of pairs; required for a callable source, at most ``N`` for an
        array (default ``N``).
    noise : callable, optional
        ``noise(clean_item, seed) -> noisy_item`` on a tensor ``data_shape``,
        e.g. :class:`GaussianNoise` or :class:`ComplexGaussianNoise`; ``None``
        for noise-free data.
    seed : int, optional
        Seed of the data set; the noise of item ``i`` uses the seed
        ``seed * 100_003 + i``.
    op : odl.Operator, optional
        The operator to reconstruct with, reported as :attr:`op`; default:
        ``forward`` itself if it is an ODL operator, else ``forward.op`` if
        that exists.
    setting : dict, optional
        JSON description of how images and forward map are made (reported in
        :attr:`setting`; required for caching, as part of the cache key). Its
        ``'name'`` entry names the cache folder.
    cache_dir : str or os.PathLike, optional
        Generate all pairs now (unless cached) and memory-map them from
        ``cache_dir/<name>-<hash of the settings>/``.
    batch_size : int, optional
        Images per call of the forward map when filling the cache.
    progress : bool, optional
        Show a progress bar while filling the cache; default: on a terminal.

    Attributes
    ----------
    op : odl.Operator or None
        The forward operator for reconstruction (normalised for CT).
    setting : dict
        Description of the data for reports.
    seed : int
        Seed of the data set.
    cache_path : pathlib.Path or None
        Folder of the cached arrays.

    Notes
    -----
    Item dtypes are float32 for real and complex64 for complex data. For
    ``DataLoader`` workers started with ``spawn`` / ``forkserver`` the
    dataset is pickled: ``images``, ``forward``, ``noise`` and ``op`` must
    then be picklable (the factories of this module are; an ODL
    ``RayTransform`` is not). With ``fork`` (Linux' default) anything works.

    Examples
    --------
    >>> space = odl.uniform_discr(0, 1, 4)
    >>> images = np.arange(12, dtype=np.float32).reshape(3, 4)
    >>> pairs = PairDataset(images, 2 * odl.IdentityOperator(space), noise=GaussianNoise(0.0))
    >>> y, x = pairs[1]
    >>> x.shape, y.tolist()
    (torch.Size([1, 4]), [[8.0, 10.0, 12.0, 14.0]])
    >>> len(pairs), pairs.op.domain == space
    (3, True)
    """

    def __init__(
        self,
        images: ImageSource,
        forward: odl.Operator | Callable[[torch.Tensor], torch.Tensor],
        *,
        num_images: int | None = None,
        noise: NoiseModel | None = None,
        seed: int = 0,
        op: odl.Operator | None = None,
        setting: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 32,
        progress: bool | None = None,
    ) -> None:
        self._images, self._num = self._check_images(images, num_images)
        if not (isinstance(forward, odl.Operator) or callable(forward)):
            raise TypeError(f"forward must be an ODL operator or a batched torch function, got {forward!r}")
        if noise is not None and not callable(noise):
            raise TypeError(f"noise must be callable as noise(clean, seed) or None, got {noise!r}")
        if op is not None and not isinstance(op, odl.Operator):
            raise TypeError(f"op must be an ODL operator or None, got {op!r}")
        self._forward = forward
        self._noise = noise
        self.seed = _check_nonneg_int("seed", seed)
        self._op = op
        self._setting = None if setting is None else jsonable(dict(setting), "setting")
        self.batch_size = int(check_positive("batch_size", batch_size, integer=True))
        self.progress = progress
        self._fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._arrays: dict[str, np.ndarray] | None = None
        self.cache_path: Path | None = None
        if cache_dir is not None:
            self._open_cache(Path(cache_dir))

    # --- construction helpers

    @staticmethod
    def _check_images(images: ImageSource, num_images: int | None) -> tuple[ImageSource, int]:
        if callable(images) and not isinstance(images, np.ndarray):
            if num_images is None:
                raise ValueError("num_images is required when images is a callable index -> image")
            return images, int(check_positive("num_images", num_images, integer=True))
        arr = _to_numpy(images)
        if arr.ndim < 2 or arr.shape[0] == 0:
            raise ValueError(f"images must be an array (N, *shape) with N >= 1, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
            raise ValueError("images must hold finite numbers")
        if num_images is None:
            return arr, arr.shape[0]
        num = int(check_positive("num_images", num_images, integer=True))
        if num > arr.shape[0]:
            raise ValueError(f"num_images={num} exceeds the {arr.shape[0]} images given")
        return arr[:num], num

    def _cache_settings(self) -> dict[str, Any]:
        if self._setting is None:
            raise ValueError("caching needs `setting=`: a JSON dict describing how the images and the "
                             "forward map are made (it keys the cache)")
        noise = None
        if self._noise is not None:
            noise = getattr(self._noise, "setting", None)
            if noise is None:
                raise ValueError("caching needs a noise model with a `setting` dict "
                                 "(e.g. GaussianNoise, ComplexGaussianNoise)")
        images = _sha256(self._images) if isinstance(self._images, np.ndarray) else None
        return {"format": CACHE_FORMAT, "setting": self._setting, "num_images": self._num,
                "seed": self.seed, "noise": noise, "images_sha256": images}

    def _open_cache(self, root: Path) -> None:
        settings = self._cache_settings()
        folder = cache_folder(root, settings, str(self._setting.get("name", "pairs")))
        arrays = load_arrays(folder, settings, ("y", "x"))
        if arrays is None or any(a.shape[0] != self._num for a in arrays.values()):
            self._write_cache(folder, settings)
            arrays = load_arrays(folder, settings, ("y", "x"))
            if arrays is None:
                raise RuntimeError(f"the pairs written to {folder} could not be read back")
        self._arrays = arrays
        self.cache_path = folder

    def _write_cache(self, folder: Path, settings: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        starts = range(0, self._num, self.batch_size)
        disable = None if self.progress is None else not self.progress
        bar = tqdm(total=self._num, desc=f"generating {folder.name}", unit="pair", disable=disable)
        first = self._generate_batch(range(0, min(self.batch_size, self._num)))
        specs = {"y": ((self._num, *first[0].shape[1:]), first[0].dtype),
                 "x": ((self._num, *first[1].shape[1:]), first[1].dtype)}
        with bar, writing_arrays(folder, specs, settings) as out:
            for start in starts:
                stop = min(start + self.batch_size, self._num)
                ys, xs = first if start == 0 else self._generate_batch(range(start, stop))
                out["y"][start:stop] = ys
                out["x"][start:stop] = xs
                bar.update(stop - start)

    # --- generation

    @property
    def _forward_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        if self._fn is None:
            if isinstance(self._forward, odl.Operator):
                fn = batched_torch_function(self._forward)
                self._fn = fn if fn is not None else _PerItem(self._forward)
            else:
                self._fn = self._forward
        return self._fn

    def _image(self, index: int) -> np.ndarray:
        image = self._images[index] if isinstance(self._images, np.ndarray) else self._images(index)
        image = _to_numpy(image)
        return image.astype(_item_dtype(image.dtype), copy=False)

    def _generate_batch(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ys, xs)`` arrays ``(B, 1, ...)`` generated for ``indices``."""
        indices = [int(i) for i in indices]
        with _one_thread(), torch.no_grad():
            xs = np.stack([self._image(i) for i in indices])
            clean = torch.as_tensor(self._forward_fn(torch.from_numpy(xs))).detach().cpu()
            if clean.shape[0] != len(indices):
                raise ValueError(f"forward returned a batch of {clean.shape[0]} for {len(indices)} images; "
                                 "expected (B, *data_shape)")
            if self._noise is None:
                ys = clean.numpy()
            else:
                ys = np.stack([_to_numpy(self._noise(clean[k], _noise_seed(self.seed, i)))
                               for k, i in enumerate(indices)])
        return ys.astype(_item_dtype(ys.dtype), copy=False)[:, None], xs[:, None]

    # --- public API

    @property
    def op(self) -> odl.Operator | None:
        """The forward operator for reconstruction (``y ~ op(x)``)."""
        if self._op is not None:
            return self._op
        if isinstance(self._forward, odl.Operator):
            return self._forward
        return getattr(self._forward, "op", None)

    @property
    def extras(self) -> dict[str, Any]:
        """Objects besides :attr:`op` (for CT: the unnormalised ``ray_trafo`` and its ``norm``)."""
        return dict(getattr(self._forward, "extras", {}))

    @property
    def setting(self) -> dict[str, Any]:
        """Description of the data for reports (a copy)."""
        setting = dict(self._setting or {})
        setting.setdefault("num_images", self._num)
        setting.setdefault("seed", self.seed)
        if self._noise is not None:
            setting.setdefault("noise_model", getattr(self._noise, "setting", repr(self._noise)))
        return setting

    @property
    def is_cached(self) -> bool:
        """Whether the pairs are read from the disk cache."""
        return self.cache_path is not None

    def __len__(self) -> int:
        return self._num

    def _index(self, index: Any) -> int:
        if isinstance(index, torch.Tensor) and index.ndim == 0:
            index = index.item()
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {index!r}")
        if not -self._num <= index < self._num:
            raise IndexError(f"index {index} is out of range for {self._num} pairs")
        return int(index) % self._num

    def _cached(self) -> dict[str, np.ndarray] | None:
        if self._arrays is None and self.cache_path is not None:  # e.g. after unpickling
            self._arrays = {name: np.load(self.cache_path / f"{name}.npy", mmap_mode="r")
                            for name in ("y", "x")}
        return self._arrays

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(y, x)``, tensors ``(1, *data_shape)`` and ``(1, *image_shape)``."""
        i = self._index(index)
        arrays = self._cached()
        if arrays is not None:
            return torch.from_numpy(np.array(arrays["y"][i])), torch.from_numpy(np.array(arrays["x"][i]))
        ys, xs = self._generate_batch([i])
        return torch.from_numpy(ys[0]), torch.from_numpy(xs[0])

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the pairs ``indices`` as batches ``(B, 1, ...)``, generated in one forward call.

        Examples
        --------
        >>> pairs = PairDataset(np.ones((5, 3)), lambda t: 3 * t)
        >>> y, x = pairs.batch([0, 4])
        >>> y.shape, float(y.max())
        (torch.Size([2, 1, 3]), 3.0)
        """
        indices = [self._index(i) for i in indices]
        if not indices:
            raise ValueError("indices must not be empty")
        arrays = self._cached()
        if arrays is not None:
            return (torch.from_numpy(np.array(arrays["y"][indices])),
                    torch.from_numpy(np.array(arrays["x"][indices])))
        ys, xs = self._generate_batch(indices)
        return torch.from_numpy(ys), torch.from_numpy(xs)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return all pairs as arrays ``(N, 1, ...)``: memory maps if cached, else generated.

        Examples
        --------
        >>> ys, xs = PairDataset(np.ones((5, 3)), lambda t: -t).arrays()
        >>> ys.shape, float(ys.sum())
        ((5, 1, 3), -15.0)
        """
        arrays = self._cached()
        if arrays is not None:
            return arrays["y"], arrays["x"]
        parts = [self._generate_batch(range(s, min(s + self.batch_size, self._num)))
                 for s in range(0, self._num, self.batch_size)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def elements(self, index: int) -> tuple[LinearSpaceElement, LinearSpaceElement]:
        """Return pair ``index`` as ODL elements ``(y in op.range, x in op.domain)``.

        Examples
        --------
        >>> space = odl.uniform_discr(0, 1, 3)
        >>> y, x = PairDataset(np.ones((2, 3)), odl.IdentityOperator(space)).elements(0)
        >>> x in space, y in space
        (True, True)
        """
        op = self.op
        if op is None:
            raise ValueError("this dataset has no ODL operator; pass `op=` to PairDataset")
        y, x = self[index]
        return tensor_to_element(y[0], op.range), tensor_to_element(x[0], op.domain)

    def cached(self, directory: str | Path) -> PairDataset:
        """Return this dataset backed by a disk cache in ``directory`` (see the class notes).

        Examples
        --------
        >>> import tempfile
        >>> pairs = PairDataset(np.ones((4, 3)), lambda t: 2 * t, setting={"name": "doubling"})
        >>> cached = pairs.cached(tempfile.mkdtemp())
        >>> cached.is_cached, cached.cache_path.name.startswith("doubling-")
        (True, True)
        >>> bool(torch.equal(cached[2][0], pairs[2][0]))
        True
        """
        return PairDataset(self._images, self._forward, num_images=self._num, noise=self._noise,
                           seed=self.seed, op=self._op, setting=self._setting, cache_dir=directory,
                           batch_size=self.batch_size, progress=self.progress)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fn"] = None  # compiled closures are rebuilt where needed
        state["_arrays"] = None  # memory maps are reopened from cache_path
        return state

    def __repr__(self) -> str:
        name = (self._setting or {}).get("name", "")
        cached = f", cache={str(self.cache_path)!r}" if self.cache_path is not None else ""
        return f"{type(self).__name__}({name!r}, num_images={self._num}, seed={self.seed}{cached})"


# --- CT ------------------------------------------------------------------------------------


class _Upsampler:
    """Bilinear upscaling ``(..., n, n) -> (..., m, m)`` as :func:`~odl_learned.data.phantoms.upsample`.

    ``skimage.transform.resize(order=1, mode='reflect')`` is separable and
    each fine sample mixes at most two coarse ones, so the 2D upscaling is two
    gathers with weights along each axis (float64, as skimage computes):
    several times faster than ``resize``.
    """

    def __init__(self, n: int, m: int) -> None:
        from skimage.transform import resize

        matrix = resize(np.eye(n), (m, n), order=1, mode="reflect", anti_aliasing=False, preserve_range=True)
        index = np.zeros((m, 2), dtype=np.int64)
        weight = np.zeros((m, 2))
        for row in range(m):
            cols = np.flatnonzero(matrix[row])
            if not 1 <= cols.size <= 2:
                raise RuntimeError(f"unexpected bilinear weights in row {row}: {matrix[row, cols]}")
            index[row, : cols.size] = cols
            index[row, cols.size:] = cols[0]
            weight[row, : cols.size] = matrix[row, cols]
        self.index = torch.from_numpy(index)
        self.weight = torch.from_numpy(weight)

    def _single(self, x: torch.Tensor) -> torch.Tensor:
        i0, i1 = self.index[:, 0], self.index[:, 1]
        w0, w1 = self.weight[:, 0], self.weight[:, 1]
        rows = x[i0, :] * w0[:, None] + x[i1, :] * w1[:, None]
        return rows[:, i0] * w0 + rows[:, i1] * w1

    def __call__(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Upscale a batch ``(..., n, n)``; computed in float64, returned in ``dtype``."""
        flat = x.reshape(-1, *x.shape[-2:]).to(torch.float64)
        # image by image: the float64 intermediates of a whole batch would not stay in cache
        out = torch.stack([self._single(image).to(dtype) for image in flat])
        return out.reshape(*x.shape[:-2], *out.shape[-2:])


class _CTForward:
    """Ground truth ``(B, n, n) -> `` data ``(B, angles, detector)`` without the inverse crime.

    ``x -> A_fine(U x) / ||A||``: bilinear upscaling ``U`` to the fine grid,
    projection with the fine ray transform (same geometry), division by the
    norm of the coarse ray transform ``A``. Built lazily and rebuilt after
    unpickling; only the parameters (and the norm) are pickled.
    """

    def __init__(self, size: int, num_angles: int, fine_size: int, norm: float | None = None) -> None:
        self.size, self.num_angles, self.fine_size, self._norm = size, num_angles, fine_size, norm
        self._parts: dict[str, Any] | None = None

    def _build(self) -> dict[str, Any]:
        if self._parts is None:
            from odl_learned.data.phantoms import fine_space
            from odl_learned.operators import ct

            space = odl.uniform_discr([-64, -64], [64, 64], (self.size, self.size), dtype="float32")
            fine = fine_space(space, (self.fine_size, self.fine_size))
            geometry = ct.make_geometry(space, self.num_angles)
            ray_trafo = ct.ray_transform(space, geometry=geometry)
            ray_trafo_fine = ct.ray_transform(fine, geometry=geometry, impl="sparse")
            if self._norm is None:
                # a fixed start makes the power method, and so the normalisation, reproducible
                self._norm = float(ray_trafo.norm(estimate=True, xstart=space.one()))
            upsample = _Upsampler(self.size, self.fine_size)
            self._parts = {"ray_trafo": ray_trafo, "project": batched_torch_function(ray_trafo_fine),
                           "upsample": upsample, "op": ray_trafo / self._norm}
        return self._parts

    @property
    def op(self) -> odl.Operator:
        return self._build()["op"]

    @property
    def norm(self) -> float:
        self._build()
        return float(self._norm)

    @property
    def extras(self) -> dict[str, Any]:
        return {"ray_trafo": self._build()["ray_trafo"], "norm": self.norm}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        parts = self._build()
        fine = parts["upsample"](x)
        return parts["project"](fine) / self._norm

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "num_angles": self.num_angles, "fine_size": self.fine_size,
                "_norm": self._norm, "_parts": None}


class _EllipseImages:
    """``index -> random_ellipses(space, seed, index=index)`` as a float32 array (picklable)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed
        self._space: odl.DiscretizedSpace | None = None

    def __call__(self, index: int) -> np.ndarray:
        from odl_learned.data.phantoms import random_ellipses

        if self._space is None:
            self._space = odl.uniform_discr([-64, -64], [64, 64], (self.size, self.size), dtype="float32")
        return random_ellipses(self._space, self.seed, index=index).asarray()

    def __getstate__(self) -> dict[str, Any]:
        return {"size": self.size, "seed": self.seed, "_space": None}


def _check_ct_sizes(size: int, num_angles: int, fine_size: int, noise_level: float) -> float:
    check_positive("size", size, integer=True)
    check_positive("num_angles", num_angles, integer=True)
    check_positive("fine_size", fine_size, integer=True)
    if fine_size < size:
        raise ValueError(f"fine_size must be at least size={size} (the data grid is finer), got {fine_size}")
    return _check_level("noise_level", noise_level)


def _ct_setting(size: int, num_angles: int, fine_size: int, noise_level: float) -> dict[str, Any]:
    return {
        "task": "ct", "size": size, "extent": [-64, 64], "num_angles": num_angles, "geometry": "parallel",
        "noise": f"gaussian, std {noise_level} x mean|y|", "noise_level": noise_level,
        "fine_size": fine_size,
        "data_grid": f"{fine_size}x{fine_size} bilinear upscaling (no inverse crime)",
        "operator": "ray transform / its norm (power method from one)",
    }


def ct_ellipse_pairs(
    split: str,
    num_images: int,
    *,
    size: int = 128,
    num_angles: int = 30,
    noise_level: float = 0.05,
    fine_size: int = 400,
    cache_dir: str | Path | None = None,
    batch_size: int = 32,
    progress: bool | None = None,
) -> PairDataset:
    """Return pairs of the dival ellipses CT problem (``shared/ANCHORS.md``).

    Image ``i`` of a split is ``random_ellipses(space, SPLIT_SEEDS[split],
    index=i)`` on ``size x size`` cells of ``[-64, 64]^2`` (float32); its data
    are the parallel-beam projections (``num_angles`` angles over ``[0, pi)``)
    of its bilinear ``fine_size x fine_size`` upscaling, divided by the norm
    of the ``size x size`` ray transform, plus white Gaussian noise of
    ``noise_level * mean|y|``. The test split equals the pairs of
    :func:`odl_learned.evaluation.problems.ct_problem` up to float rounding.

    Parameters
    ----------
    split : {'train', 'validation', 'test'}
        Which images (seeds 0, 1, 2); ``'val'`` means ``'validation'``.
    num_images : int
        Number of pairs; a larger set starts with the pairs of a smaller one.
    size : int, optional
        Image size.
    num_angles : int, optional
        Number of projection angles.
    noise_level : float, optional
        Noise standard deviation relative to the mean of ``|y|``.
    fine_size : int, optional
        Size of the grid the data are projected from (at least ``size``).
    cache_dir : str or os.PathLike, optional
        Generate all pairs once and memory-map them from there.
    batch_size : int, optional
        Images per forward call while filling the cache.
    progress : bool, optional
        Progress bar while filling the cache (default: on a terminal).

    Returns
    -------
    pairs : PairDataset
        Items ``(y, x)`` of shapes ``(1, num_angles, detector)`` and
        ``(1, size, size)``, float32; ``pairs.op`` is ``ray_trafo / norm``
        and ``pairs.extras`` holds ``ray_trafo`` and ``norm``.

    Raises
    ------
    ValueError
        For an unknown split, a non-positive ``num_images`` or size, a
        negative noise level or ``fine_size < size``.

    Examples
    --------
    >>> pairs = ct_ellipse_pairs("train", 4, size=32, num_angles=8, fine_size=64)
    >>> y, x = pairs[0]
    >>> x.shape, y.shape, y.dtype
    (torch.Size([1, 32, 32]), torch.Size([1, 8, 47]), torch.float32)
    >>> pairs.op.range.shape, pairs.setting["seed"]
    ((8, 47), 0)
    """
    split = _check_split(split)
    num_images = int(check_positive("num_images", num_images, integer=True))
    noise_level = _check_ct_sizes(size, num_angles, fine_size, noise_level)
    seed = SPLIT_SEEDS[split]
    setting = {"name": f"ct_ellipses_{split}", "phantom": "ellipses", "split": split,
               "ellipses": "dival (ANCHORS.md): 50 random ellipses, scaled to [0, 1]",
               **_ct_setting(size, num_angles, fine_size, noise_level), "seed": seed}
    return PairDataset(_EllipseImages(size, seed), _CTForward(size, num_angles, fine_size),
                       num_images=num_images, noise=GaussianNoise(noise_level), seed=seed,
                       setting=setting, cache_dir=cache_dir, batch_size=batch_size, progress=progress)


def ct_real_pairs(
    num_images: int | None = None,
    *,
    size: int = 128,
    num_angles: int = 30,
    noise_level: float = 0.05,
    fine_size: int = 400,
    seed: int = SPLIT_SEEDS["test"],
    cache_dir: str | Path | None = None,
) -> PairDataset:
    """Return pairs for the real CT slices of :func:`~odl_learned.data.real.real_ct_slices`.

    The measurement is that of :func:`ct_ellipse_pairs` (bilinear upscaling to
    ``fine_size``, projection, division by the norm, Gaussian noise). The
    slices (1 to 4, depending on the installed packages, see
    :func:`~odl_learned.data.real.real_ct_sources`) are test images only.

    Parameters
    ----------
    num_images : int, optional
        Number of slices (default: all available).
    size, num_angles, noise_level, fine_size, cache_dir
        See :func:`ct_ellipse_pairs`.
    seed : int, optional
        Seed of the noise (default: the test seed, as in
        :func:`odl_learned.evaluation.problems.ct_problem`).

    Returns
    -------
    pairs : PairDataset

    Raises
    ------
    ImportError
        Without pydicom.
    ValueError
        If more slices are asked for than are available.

    Examples
    --------
    >>> try:
    ...     pairs = ct_real_pairs(1, size=32, num_angles=8, fine_size=64)
    ... except ImportError:  # pydicom is not installed
    ...     pairs = None
    >>> pairs is None or pairs[0][1].shape == (1, 32, 32)
    True
    """
    from odl_learned.data.real import real_ct_slices, real_ct_sources

    noise_level = _check_ct_sizes(size, num_angles, fine_size, noise_level)
    seed = _check_nonneg_int("seed", seed)
    slices = real_ct_slices((size, size))
    if num_images is None:
        num_images = len(slices)
    num_images = int(check_positive("num_images", num_images, integer=True))
    if num_images > len(slices):
        raise ValueError(f"only {len(slices)} real CT slices are available here, asked for {num_images}")
    setting = {"name": "ct_real", "phantom": "real", "split": "test", "sources": real_ct_sources(),
               **_ct_setting(size, num_angles, fine_size, noise_level), "seed": seed}
    return PairDataset(slices[:num_images], _CTForward(size, num_angles, fine_size),
                       noise=GaussianNoise(noise_level), seed=seed, setting=setting, cache_dir=cache_dir)


# --- MRI -----------------------------------------------------------------------------------


class _MRIForward:
    """Real image batch ``(B, H, W)`` -> k-space ``(B, [C,] H, W)``; rebuilt after unpickling."""

    def __init__(self, size: int, acceleration: float, pattern: str, num_coils: int,
                 center_fraction: float, seed: int) -> None:
        self.params = {"size": size, "acceleration": acceleration, "pattern": pattern,
                       "num_coils": num_coils, "center_fraction": center_fraction, "seed": seed}
        self._op: odl.Operator | None = None

    @property
    def op(self) -> odl.Operator:
        if self._op is None:
            from odl_learned.operators import mri

            p = self.params
            shape = (p["size"], p["size"])
            # complex images, as in the MRI reference problem; x is their magnitude
            space = odl.uniform_discr([-1, -1], [1, 1], shape, dtype="complex64")
            mask = mri.cartesian_mask(shape, p["acceleration"], center_fraction=p["center_fraction"],
                                      pattern=p["pattern"], seed=p["seed"])
            coil_maps = None if p["num_coils"] == 1 else mri.coil_sensitivities(shape, p["num_coils"],
                                                                                seed=p["seed"])
            self._op = mri.subsampled_fourier(space, mask, coil_maps)
        return self._op

    @property
    def mask(self) -> np.ndarray:
        return self.op.mask.cpu().numpy()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.torch_call(x if torch.is_complex(x) else x.to(torch.complex64))

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params, "_op": None}


def mri_brain_pairs(
    split: str,
    num_images: int | None = None,
    *,
    size: int = 128,
    acceleration: float = 4,
    pattern: str = "random",
    num_coils: int = 1,
    noise_level: float = 0.02,
    center_fraction: float = 0.08,
    seed: int = SPLIT_SEEDS["test"],
    augment: int = 1,
    cache_dir: str | Path | None = None,
) -> PairDataset:
    """Return MRI pairs from the shipped brain slices of one split.

    The ground truth is a slice of :func:`~odl_learned.data.real.brain_slices`
    of ``split`` (disjoint slice ranges, :data:`~odl_learned.data.real.BRAIN_SPLITS`),
    a real magnitude image on ``[-1, 1]^2``; the data are its Cartesian
    undersampled (multi-coil) k-space ``M F (S_c x)`` plus complex Gaussian
    noise of ``noise_level * mean|y|`` on the sampled entries (zero
    elsewhere), as in :func:`odl_learned.evaluation.problems.mri_problem`.

    Parameters
    ----------
    split : {'train', 'validation', 'test'}
        Which slices (56 / 8 / 8); ``'val'`` means ``'validation'``. The
        noise seed of the split is ``SPLIT_SEEDS[split]``.
    num_images : int, optional
        Number of slices, spread evenly over the split's slices (default:
        all). The indices in the volume are ``setting['slice_indices']``.
    size : int, optional
        Image size (``size x size``).
    acceleration : float, optional
        Undersampling factor.
    pattern : {'random', 'equispaced', 'radial'}, optional
        Sampling pattern (:func:`~odl_learned.operators.mri.cartesian_mask`).
    num_coils : int, optional
        1 for single coil, else synthetic coil maps.
    noise_level : float, optional
        Complex noise standard deviation relative to mean ``|y|`` on the mask.
    center_fraction : float, optional
        Fully sampled centre of k-space.
    seed : int, optional
        Seed of the **operator** (mask and coil maps), the same for all
        splits so that a network trained on ``'train'`` fits the ``'test'``
        operator. The default is that of the reference test problem.
    augment : int, optional
        Training split only: copies of each slice (default 1). Copy ``c``
        (items ``c * num_images ...``) is mirrored left to right when ``c`` is
        odd, and every item has its own noise, so ``augment=8`` holds each
        slice and its mirror image with four noise draws each. One subject's
        56 slices are little data for a learned method; this keeps it from
        learning the noise of each slice by heart.
    cache_dir : str or os.PathLike, optional
        Generate all pairs once and memory-map them from there.

    Returns
    -------
    pairs : PairDataset
        ``augment * num_images`` items ``(y, x)``: ``y`` complex64 of shape ``(1, size, size)`` (one
        coil) or ``(1, num_coils, size, size)``, ``x`` float32 of shape
        ``(1, size, size)``; ``pairs.op`` is the
        :class:`~odl_learned.operators.mri.SubsampledFourier` operator.

    Raises
    ------
    ValueError
        For an unknown split or pattern, an impossible acceleration, or more
        images than the split has.

    Examples
    --------
    >>> pairs = mri_brain_pairs("validation", 2, size=32, num_coils=4)
    >>> y, x = pairs[0]
    >>> y.shape, y.dtype, x.shape, x.dtype
    (torch.Size([1, 4, 32, 32]), torch.complex64, torch.Size([1, 32, 32]), torch.float32)
    >>> pairs.setting["slice_indices"]
    [20, 80]
    >>> train = mri_brain_pairs("train", 3, size=32, augment=2)
    >>> len(train), bool((train[3][1] == train[0][1].flip(-2)).all())  # copy 1 is mirrored
    (6, True)
    """
    from odl_learned.data.real import brain_slice_indices, brain_slices

    split = _check_split(split)
    brain_split = "val" if split == "validation" else split
    check_positive("size", size, integer=True)
    check_positive("num_coils", num_coils, integer=True)
    noise_level = _check_level("noise_level", noise_level)
    seed = _check_nonneg_int("seed", seed)
    forward = _MRIForward(int(size), acceleration, pattern, int(num_coils), center_fraction, seed)
    mask = forward.mask  # builds (and so checks) the operator now
    slices = brain_slices((size, size), split=brain_split)
    if num_images is None:
        num_images = len(slices)
    num_images = int(check_positive("num_images", num_images, integer=True))
    if num_images > len(slices):
        raise ValueError(f"split {split!r} has {len(slices)} brain slices, asked for {num_images}")
    # spread over the split's range, as evaluation.problems does
    picks = np.linspace(0, len(slices) - 1, num_images).round().astype(int)
    augment = int(check_positive("augment", augment, integer=True))
    if augment > 1 and split != "train":
        raise ValueError(f"augment={augment} is for the training split only, not {split!r}")
    images = slices[picks]
    if augment > 1:  # axis 0 of a slice runs from left to right
        images = np.concatenate([images[:, ::-1] if c % 2 else images for c in range(augment)])
    setting = {
        "name": f"mri_brain_{split}", "task": "mri", "phantom": "brain", "split": split, "size": size,
        "slice_indices": brain_slice_indices(brain_split)[picks].tolist(),
        "acceleration": acceleration, "pattern": forward.params["pattern"],
        "center_fraction": center_fraction,
        "num_coils": num_coils, "sampled_fraction": float(np.mean(mask)),
        "noise": f"complex gaussian, std {noise_level} x mean|y| on sampled k-space",
        "noise_level": noise_level, "operator_seed": seed, "seed": SPLIT_SEEDS[split],
        "ground_truth": "real magnitude image (float32); data complex64 k-space, zero off the mask",
    }
    if augment > 1:
        setting["augment"] = {"copies": augment, "odd copies": "mirrored left to right", "noise": "own per item"}
    return PairDataset(images, forward, noise=ComplexGaussianNoise(noise_level, mask),
                       seed=SPLIT_SEEDS[split], setting=setting, cache_dir=cache_dir)
