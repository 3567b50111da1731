"""Data: synthetic phantoms, complex MRI test images and real slices, all offline.

- :mod:`~odl_learned.data.phantoms`: dival's random ellipses (with the
  bilinear upscaling that avoids the inverse crime) and Shepp-Logan.
- :mod:`~odl_learned.data.mri_images`: complex MRI images (magnitude times a
  smooth random phase).
- :mod:`~odl_learned.data.real`: real CT slices from pydicom's test files and
  real T1 brain slices shipped with this package, with disjoint splits.
- :mod:`~odl_learned.data.pairs`: paired ``(y, x)`` datasets for training
  (deterministic per index, optionally cached on disk) and the reference
  CT / MRI problems as datasets.
"""

from odl_learned.data.mri_images import MAGNITUDES, PHASES, add_phase, mri_phantom, random_phase
from odl_learned.data.pairs import (
    SPLIT_SEEDS,
    SPLITS,
    ComplexGaussianNoise,
    GaussianNoise,
    PairDataset,
    ct_ellipse_pairs,
    ct_real_pairs,
    mri_brain_pairs,
)
from odl_learned.data.phantoms import (
    ELLIPSE_VARIANTS,
    ellipse_parameters,
    ellipses_image,
    fine_space,
    random_ellipses,
    random_ellipses_batch,
    random_ellipses_pair,
    shepp_logan,
    upsample,
)
from odl_learned.data.real import (
    BRAIN_SPLITS,
    brain_slice_indices,
    brain_slices,
    brain_volume,
    real_ct_slices,
    real_ct_sources,
    read_ct_dicom,
)

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
    "MAGNITUDES",
    "PHASES",
    "add_phase",
    "mri_phantom",
    "random_phase",
    "BRAIN_SPLITS",
    "brain_slice_indices",
    "brain_slices",
    "brain_volume",
    "real_ct_slices",
    "real_ct_sources",
    "read_ct_dicom",
    "SPLITS",
    "SPLIT_SEEDS",
    "GaussianNoise",
    "ComplexGaussianNoise",
    "PairDataset",
    "ct_ellipse_pairs",
    "ct_real_pairs",
    "mri_brain_pairs",
)
