"""The ODL <-> torch bridge: the one place where ODL meets torch.

- :class:`OperatorModule`: an ODL operator as a ``torch.nn.Module`` on batches.
- :class:`TorchOperator`: a ``torch.nn.Module`` as an ODL operator.
- :class:`TorchFunctional`: a scalar ``torch.nn.Module`` as an ODL functional.
- :class:`TorchNativeOperator`: base class of operators written in torch.

Weighted inner products are handled in :mod:`odl_learned.bridge.weighting`.
"""

from odl_learned.bridge.convert import element_to_tensor, tensor_to_element
from odl_learned.bridge.native import TorchNativeOperator
from odl_learned.bridge.operator_module import OperatorModule
from odl_learned.bridge.torch_functional import TorchFunctional
from odl_learned.bridge.torch_operator import TorchOperator, TorchOperatorDerivative

__all__ = (
    "OperatorModule",
    "TorchOperator",
    "TorchOperatorDerivative",
    "TorchFunctional",
    "TorchNativeOperator",
    "element_to_tensor",
    "tensor_to_element",
)
