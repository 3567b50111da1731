"""Reconstructors: one interface, ``x = reco(y)``, for classical and learned methods.

Every reconstructor is a :class:`Reconstructor`: called with one ODL element
of the data space it returns one image; called with a batch (NumPy array or
torch tensor of shape ``(B, *data_shape)`` or ``(B, 1, *data_shape)``) it
returns a batch of the same kind and layout.

- direct: :class:`FBPReconstructor`, :class:`LinearReconstructor`,
  :class:`AdjointReconstructor`, :class:`ZeroFilledReconstructor` (MRI);
- variational: :class:`TVReconstructor`, :class:`TGVReconstructor`
  (PDHG), :class:`WaveletL1Reconstructor` (FISTA);
- iterative with the discrepancy principle: :class:`LandweberReconstructor`,
  :class:`CGLSReconstructor`, with :func:`noise_norm`;
- parameter choice: :func:`grid_search`;
- a reconstructor as the fixed first step of a network: :class:`FixedStart`.
"""

from odl_learned.reconstructors.analytic import (
    FBP_FILTERS,
    AdjointReconstructor,
    FBPReconstructor,
    LinearReconstructor,
    ZeroFilledReconstructor,
)
from odl_learned.reconstructors.base import Reconstructor
from odl_learned.reconstructors.fixed_start import FixedStart
from odl_learned.reconstructors.learned import LearnedReconstructor
from odl_learned.reconstructors.iterative import CGLSReconstructor, LandweberReconstructor, noise_norm
from odl_learned.reconstructors.tgv import TGVReconstructor, symmetrized_gradient
from odl_learned.reconstructors.tuning import GridSearchResult, grid_search
from odl_learned.reconstructors.tv import TVReconstructor
from odl_learned.reconstructors.wavelet import (
    ORTHOGONAL_WAVELETS,
    WaveletL1Reconstructor,
    orthonormal_wavelet_transform,
)

__all__ = (
    "Reconstructor",
    "FixedStart",
    "FBPReconstructor",
    "LinearReconstructor",
    "AdjointReconstructor",
    "ZeroFilledReconstructor",
    "FBP_FILTERS",
    "TVReconstructor",
    "TGVReconstructor",
    "symmetrized_gradient",
    "WaveletL1Reconstructor",
    "orthonormal_wavelet_transform",
    "ORTHOGONAL_WAVELETS",
    "LandweberReconstructor",
    "CGLSReconstructor",
    "noise_norm",
    "grid_search",
    "LearnedReconstructor",
    "GridSearchResult",
)
