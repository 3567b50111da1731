"""Plain ``torch.nn.Module`` networks; they know nothing of ODL.

Operators enter the unrolled networks as callables on batched tensors
(``forward_op(x)``, ``adjoint_op(y)``), e.g. an ``OperatorModule`` from
:mod:`odl_learned.bridge` or a matrix product.

- post-processing and denoising: :class:`UNet`, :class:`DnCNN`;
- unrolled schemes: :class:`LearnedPrimalDual`, :class:`LearnedGradientDescent`,
  :class:`LearnedProximalGradient` (built from :class:`ConvBlock`,
  :class:`ResidualConvBlock`);
- MRI: :class:`VariationalNetwork` with :class:`RBFActivation`;
- direct inversion: :class:`DirectMap` (AUTOMAP / iRadonMap style);
- group-equivariant (C4, D4 exactly; C8 approximately): :class:`LiftingConv2d`,
  :class:`GroupConv2d`, :class:`GroupPool`, :class:`GroupBatchNorm`,
  :class:`GroupResidualBlock`, :class:`EquivariantConvBlock` (a proximal network
  for :class:`LearnedProximalGradient`), :func:`matched_cnn`,
  :func:`match_parameters`, :func:`network_equivariance_error`;
- sparse coding: :class:`LISTA`, :func:`ista`, :func:`soft_threshold`;
- :func:`count_parameters`.
"""

from odl_learned.nets.automap import DirectMap
from odl_learned.nets.counting import count_parameters
from odl_learned.nets.dncnn import DnCNN
from odl_learned.nets.equivariant import (
    EquivariantConvBlock,
    Group,
    GroupBatchNorm,
    GroupConv2d,
    GroupPool,
    GroupResidualBlock,
    LiftingConv2d,
    network_equivariance_error,
    get_group,
    match_parameters,
    matched_cnn,
    rotate_image,
)
from odl_learned.nets.lista import LISTA, ista, lipschitz_constant, soft_threshold
from odl_learned.nets.unet import UNet
from odl_learned.nets.unrolled import (
    ConvBlock,
    LearnedGradientDescent,
    LearnedPrimalDual,
    LearnedProximalGradient,
    ResidualConvBlock,
)
from odl_learned.nets.varnet import RBFActivation, VariationalNetwork

__all__ = (
    "UNet",
    "DnCNN",
    "ConvBlock",
    "ResidualConvBlock",
    "LearnedPrimalDual",
    "LearnedGradientDescent",
    "LearnedProximalGradient",
    "VariationalNetwork",
    "RBFActivation",
    "DirectMap",
    "LISTA",
    "ista",
    "soft_threshold",
    "lipschitz_constant",
    "count_parameters",
    "Group",
    "get_group",
    "rotate_image",
    "network_equivariance_error",
    "LiftingConv2d",
    "GroupConv2d",
    "GroupPool",
    "GroupBatchNorm",
    "GroupResidualBlock",
    "EquivariantConvBlock",
    "match_parameters",
    "matched_cnn",
)
