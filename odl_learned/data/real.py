"""Real image slices that need no download: CT from pydicom, brain MRI shipped here.

Nothing here touches the network. The sources:

**CT** (:func:`real_ct_slices`), read from the test files that the
``pydicom`` wheel (MIT licence) ships, plus two more when the optional
``pydicom-data`` package (MIT, a 34 MB wheel) is installed:

=========================================  ============  ===========================================
file                                       package       content
=========================================  ============  ===========================================
``CT_small.dcm``                           pydicom       128 x 128 crop of NEMA WG04 ``CT1_UNC``
``J2K_pixelrep_mismatch.dcm``              pydicom       512 x 512 head CT (pydicom issue 1149),
                                                         JPEG 2000: needs Pillow with OpenJPEG or
                                                         ``pylibjpeg-openjpeg``
``693_UNCR.dcm``                           pydicom-data  512 x 512 head CT from the CQ500 data set
                                                         (qure.ai; CC BY-NC-SA 4.0: non-commercial)
``explicit_VR-UN.dcm``                     pydicom-data  512 x 512 abdominal CT from TCIA
                                                         Pancreas-CT (CC BY), JPEG 2000
=========================================  ============  ===========================================

A file whose pixel data cannot be decoded here is skipped with a warning.
Hounsfield units are mapped linearly to ``[0, 1]`` over ``hu_range``
(default ``[-1024, 3071]``, the 12-bit CT range that LoDoPaB-CT normalises
by), so values stay proportional to attenuation and air is 0.

**Brain MRI** (:func:`brain_slices`), from ``files/mni152_t1_1p5mm.npz``
(0.5 MB) shipped with this package: the ICBM 2009a nonlinear symmetric T1
template (brain-extracted, 8 bit, as shipped by nilearn 0.14.1), cropped to
the brain and resampled to 1.5 mm isotropic voxels, ``(100, 124, 104)`` in
RAS order. Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging
Centre, Montreal Neurological Institute, McGill University; redistributed
under its permissive notice (``files/NOTICE-mni152.txt``). Cite Fonov et al.,
NeuroImage 54 (2011) and 47 (2009). It is an average of 152 brains: real
anatomy and contrast, but smoother and less noisy than a single scan.

Arrays follow ODL's axis convention: axis 0 is ``x`` (left to right on the
screen), axis 1 is ``y`` (bottom to top); show one with
``plt.imshow(a.T, origin="lower")`` or ``space.element(a).show()``.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from skimage.transform import resize

from odl_learned._checks import check_choice, check_positive

__all__ = (
    "BRAIN_SPLITS",
    "brain_slice_indices",
    "brain_slices",
    "brain_volume",
    "real_ct_slices",
    "real_ct_sources",
    "read_ct_dicom",
)

#: Axial slice ranges ``[start, stop)`` of the 1.5 mm brain volume per split.
#: Validation and test are blocks of 4 slices interleaved with the training
#: blocks from the bottom to the top of the brain (validation at two lower and
#: upper levels, test at two middle levels), so every level a test slice shows
#: has training slices above and below it. Gaps of 3 slices (4.5 mm) separate
#: the splits, so no slice of one split is a neighbour of a slice of another;
#: the slices below 6 and above 101 (less than 5% brain) are unused.
#: 56 / 8 / 8 slices.
BRAIN_SPLITS: dict[str, tuple[tuple[int, int], ...]] = {
    "train": ((6, 17), (27, 36), (46, 55), (65, 74), (84, 102)),
    "val": ((20, 24), (77, 81)),
    "test": ((39, 43), (58, 62)),
}

_BRAIN_FILE = "mni152_t1_1p5mm.npz"
_BRAIN_FOV_CELLS = 128  # 128 cells of 1.5 mm: a 192 mm square field of view


@dataclass(frozen=True)
class _CTFile:
    package: str  # PyPI name, for messages
    module: str  # import name whose folder holds the file
    path: str  # relative to that folder
    description: str


_CT_FILES = (
    _CTFile("pydicom", "pydicom", "data/test_files/CT_small.dcm",
            "NEMA WG04 CT1_UNC, 128 x 128 crop (pydicom, MIT)"),
    _CTFile("pydicom", "pydicom", "data/test_files/J2K_pixelrep_mismatch.dcm",
            "head CT, 512 x 512, JPEG 2000 (pydicom issue 1149, MIT)"),
    _CTFile("pydicom-data", "data_store", "data/693_UNCR.dcm",
            "head CT, 512 x 512, CQ500 (qure.ai, CC BY-NC-SA 4.0)"),
    _CTFile("pydicom-data", "data_store", "data/explicit_VR-UN.dcm",
            "abdominal CT, 512 x 512, TCIA Pancreas-CT (CC BY), JPEG 2000"),
)


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"shape must have 2 entries, got {shape}")
    for n in shape:
        check_positive("shape entries", n, integer=True)
    return (int(shape[0]), int(shape[1]))


def _module_dir(module: str) -> Path | None:
    """Return the folder of an installed package without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _ct_path(entry: _CTFile) -> Path | None:
    folder = _module_dir(entry.module)
    if folder is None:
        return None
    path = folder / entry.path
    return path if path.is_file() else None


def real_ct_sources() -> list[str]:
    """Describe the real CT slices available here, in the order of :func:`real_ct_slices`.

    Files that are installed but cannot be decoded are listed too; they are
    skipped (with a warning) by :func:`real_ct_slices`.

    Examples
    --------
    >>> sources = real_ct_sources()  # empty without pydicom
    >>> all(s.startswith(("pydicom: ", "pydicom-data: ")) for s in sources)
    True
    """
    return [f"{e.package}: {e.path}: {e.description}" for e in _CT_FILES if _ct_path(e) is not None]


def _import_pydicom():
    try:
        import pydicom
    except ImportError as err:
        raise ImportError(
            "real_ct_slices reads the CT test images shipped with pydicom; install it with "
            "`pip install pydicom` (and `pip install pydicom-data` for two more slices)"
        ) from err
    return pydicom


def _read_hu(pydicom, path: Path) -> np.ndarray | None:
    """Return the slice in Hounsfield units (ODL axis order), or None if undecodable."""
    ds = pydicom.dcmread(str(path))
    try:
        pixels = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - missing decoders raise various types
        warnings.warn(f"skipping {path.name}: pixel data not decodable here ({err})", stacklevel=3)
        return None
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    hu = pixels.astype(np.float64) * slope + intercept
    return hu[::-1, :].T


def _to_unit(hu: np.ndarray, hu_range: tuple[float, float]) -> np.ndarray:
    low, high = hu_range
    return (np.clip(hu, low, high) - low) / (high - low)


def _resize_image(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if img.shape == shape:
        return img
    out = resize(img, shape, order=1, mode="edge", anti_aliasing=None, preserve_range=True)
    return np.clip(out, 0.0, 1.0)


def real_ct_slices(shape: tuple[int, int] = (128, 128), *,
                   hu_range: tuple[float, float] = (-1024.0, 3071.0),
                   dtype: np.dtype | str = np.float32) -> np.ndarray:
    """Return the real CT slices installed here, scaled to ``[0, 1]``.

    Each slice's whole field of view is resampled to ``shape`` (bilinear,
    anti-aliased when shrinking). See the module docstring for the files,
    their origin and licences.

    Parameters
    ----------
    shape : tuple of int, optional
        Output shape of each slice.
    hu_range : tuple of float, optional
        Hounsfield units mapped to 0 and 1; values outside are clipped.
    dtype : numpy dtype, optional
        Output dtype.

    Returns
    -------
    slices : numpy.ndarray, shape (n, *shape)
        ``n`` is 1 or 2 with pydicom alone (2 where JPEG 2000 decodes), up to
        4 with ``pydicom-data``.

    Raises
    ------
    ImportError
        If pydicom is not installed.
    RuntimeError
        If no CT file could be read.

    Examples
    --------
    >>> try:
    ...     slices = real_ct_slices((64, 64))
    ... except ImportError:  # pydicom is not installed
    ...     slices = np.zeros((1, 64, 64), dtype=np.float32)
    >>> slices.shape[1:], bool(slices.min() >= 0.0), bool(slices.max() <= 1.0)
    ((64, 64), True, True)
    """
    shape = _check_shape(shape)
    low, high = (float(v) for v in hu_range)
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ValueError(f"hu_range must be an increasing pair of finite numbers, got {hu_range!r}")
    pydicom = _import_pydicom()
    slices = []
    for entry in _CT_FILES:
        path = _ct_path(entry)
        hu = None if path is None else _read_hu(pydicom, path)
        if hu is not None:
            slices.append(_resize_image(_to_unit(hu, (low, high)), shape))
    if not slices:
        raise RuntimeError(
            "no CT test file of pydicom could be read; reinstall with `pip install pydicom`"
        )
    return np.stack(slices).astype(dtype)


def read_ct_dicom(path: str | Path, shape: tuple[int, int] = (128, 128), *,
                  hu_range: tuple[float, float] = (-1024.0, 3071.0)) -> np.ndarray:
    """Read one CT slice from a DICOM file, scaled to ``[0, 1]`` and resampled to ``shape``.

    The same conversion as :func:`real_ct_slices` (Hounsfield units through
    the file's rescale slope and intercept, clipped to ``hu_range``, ODL's
    axis order), for a file of the user's.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If pydicom cannot decode its pixel data.

    Examples
    --------
    >>> import os
    >>> import pydicom.data
    >>> path = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files", "CT_small.dcm")
    >>> image = read_ct_dicom(path, (32, 32))
    >>> image.shape, bool(0 <= image.min() and image.max() <= 1)
    ((32, 32), True)
    """
    shape = _check_shape(shape)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such DICOM file: {str(path)!r}")
    pydicom = _import_pydicom()
    try:
        hu = _read_hu(pydicom, path)
    except Exception as err:  # noqa: BLE001 - pydicom raises various types for non-DICOM input
        raise ValueError(f"{str(path)!r} is not a readable DICOM file ({err})") from err
    if hu is None or hu.ndim != 2:
        raise ValueError(f"{str(path)!r}: expected a 2D CT slice whose pixel data pydicom can decode")
    return _resize_image(_to_unit(hu, hu_range), shape).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _brain_volume_uint8() -> np.ndarray:
    source = resources.files("odl_learned.data").joinpath("files", _BRAIN_FILE)
    if not source.is_file():
        raise RuntimeError(
            f"the shipped brain volume {_BRAIN_FILE} is missing from odl_learned/data/files; "
            "reinstall odl_learned (its package data)"
        )
    with source.open("rb") as handle, np.load(handle) as npz:
        volume = npz["volume"]
    volume.setflags(write=False)
    return volume


def brain_volume() -> tuple[np.ndarray, float]:
    """Return the shipped T1 brain volume, values in ``[0, 1]``, and its voxel size in mm.

    Returns
    -------
    volume : numpy.ndarray, shape (100, 124, 104), float32
        RAS voxel order: axis 0 left to right, 1 posterior to anterior,
        2 inferior to superior.
    voxel_size : float
        1.5 (mm, isotropic).

    Examples
    --------
    >>> volume, voxel_size = brain_volume()
    >>> volume.shape, voxel_size, float(volume.max())
    ((100, 124, 104), 1.5, 1.0)
    """
    volume = _brain_volume_uint8().astype(np.float32)
    return volume / volume.max(), 1.5


def brain_slice_indices(split: str) -> np.ndarray:
    """Return the axial slice indices of ``split`` (see :data:`BRAIN_SPLITS`).

    Examples
    --------
    >>> brain_slice_indices("val").tolist()
    [20, 21, 22, 23, 77, 78, 79, 80]
    """
    split = check_choice("split", split, tuple(BRAIN_SPLITS))
    return np.concatenate([np.arange(start, stop) for start, stop in BRAIN_SPLITS[split]])


def _pad_to_fov(img: np.ndarray) -> np.ndarray:
    """Centre a slice in the square 128 x 128 (192 mm) field of view."""
    pads = []
    for n in img.shape:
        total = _BRAIN_FOV_CELLS - n
        pads.append((total // 2, total - total // 2))
    return np.pad(img, pads)


def brain_slices(shape: tuple[int, int] = (128, 128), split: str = "train", *,
                 dtype: np.dtype | str = np.float32) -> np.ndarray:
    """Return axial T1 brain slices of one split, values in ``[0, 1]``.

    Each axial slice of :func:`brain_volume` is centred in a 192 mm square
    field of view (128 x 128 cells of 1.5 mm, so ``shape=(128, 128)`` needs
    no resampling) and resampled to ``shape`` otherwise (bilinear,
    anti-aliased when shrinking; anisotropic if ``shape`` is not square).
    Intensities are divided by the volume's maximum, so they are comparable
    across slices. The splits are disjoint, interleaved slice ranges with gaps
    (:data:`BRAIN_SPLITS`): train 56, val 8, test 8 slices.

    Parameters
    ----------
    shape : tuple of int, optional
        Output shape of each slice.
    split : {"train", "val", "test"}, optional
        Which slices.
    dtype : numpy dtype, optional
        Output dtype.

    Returns
    -------
    slices : numpy.ndarray, shape (n, *shape)

    Examples
    --------
    >>> test = brain_slices((64, 64), split="test")
    >>> test.shape, test.dtype
    ((8, 64, 64), dtype('float32'))
    >>> bool(test.min() >= 0.0) and bool(test.max() <= 1.0)
    True
    """
    shape = _check_shape(shape)
    volume, _ = brain_volume()
    slices = [_resize_image(_pad_to_fov(volume[:, :, k]), shape) for k in brain_slice_indices(split)]
    return np.stack(slices).astype(dtype)
