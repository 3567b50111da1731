r"""Learned reconstructors: a trained network :math:`\Phi_\theta: y \mapsto x` as a reconstructor.

A :class:`LearnedReconstructor` holds a ``torch.nn.Module`` that maps a batch
of data ``(B, 1, *data_shape)`` to a batch of images ``(B, 1, *image_shape)``
(for example an unrolled learned primal-dual network that calls the ray
transform through the bridge, or a U-Net after FBP). It is at the same time

- a :class:`~odl_learned.reconstructors.Reconstructor` (called on one ODL
  element or a whole batch; batches go through the network in one call), and
- an ODL operator from data space to image space, :attr:`LearnedReconstructor.operator`
  (a :class:`~odl_learned.bridge.TorchOperator`), so it composes with every
  other ODL operator and has a derivative whose adjoint is the network's
  vector-Jacobian product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import odl
import torch
from odl.core.set.space import LinearSpaceElement

from odl_learned.bridge.torch_operator import TorchOperator
from odl_learned.reconstructors.base import Reconstructor

__all__ = ("LearnedReconstructor",)


class LearnedReconstructor(Reconstructor):
    r"""A trained network :math:`x = \Phi_\theta(y)` with the reconstructor interface.

    Parameters
    ----------
    network : torch.nn.Module
        Maps ``(B, 1, *data_space.shape) -> (B, 1, *image_space.shape)``. It
        is put in evaluation mode.
    op : odl.Operator
        The forward operator the network was trained for (``op.range`` is the
        data space). Its domain is the image space unless ``image_space`` is
        given.
    image_space : odl.LinearSpace, optional
        Space of the network's output (e.g. ``op.domain.real_space`` for a
        network that returns MRI magnitude images).
    name : str, optional
        Label of the reconstructor.
    batch_size : int, optional
        Largest batch sent through the network at once.
    training_info : dict, optional
        How the network was trained (steps, data, budget), for reports.

    Examples
    --------
    >>> space = odl.uniform_discr([0, 0], [1, 1], (8, 8), dtype="float32")
    >>> op = odl.IdentityOperator(space)
    >>> reco = LearnedReconstructor(torch.nn.Conv2d(1, 1, 1, bias=False), op)
    >>> with torch.no_grad():
    ...     _ = reco.network.weight.fill_(2.0)
    >>> float(reco(space.one()).asarray()[0, 0])
    2.0
    >>> reco(np.ones((3, 1, 8, 8), dtype="float32")).shape
    (3, 1, 8, 8)
    >>> (reco.operator * op)(space.one()) in space  # an ODL operator like any other
    True
    """

    def __init__(
        self,
        network: torch.nn.Module,
        op: odl.Operator,
        *,
        image_space: odl.LinearSpace | None = None,
        name: str | None = None,
        batch_size: int = 16,
        training_info: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(network, torch.nn.Module):
            raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        image_space = op.domain if image_space is None else image_space
        super().__init__(op, name=name, data_space=op.range, image_space=image_space)
        self._network = network.eval()
        self._batch_size = batch_size
        self._operator = TorchOperator(self._network, op.range, image_space)
        self._training_info = dict(training_info or {})

    @property
    def network(self) -> torch.nn.Module:
        """The torch network :math:`\\Phi_\\theta`."""
        return self._network

    @property
    def operator(self) -> TorchOperator:
        """The network as an ODL operator from data space to image space."""
        return self._operator

    @property
    def training_info(self) -> dict:
        """How the network was trained (empty if unknown)."""
        return dict(self._training_info)

    def num_parameters(self) -> int:
        """Number of trainable parameters of the network.

        Examples
        --------
        >>> space = odl.uniform_discr([0, 0], [1, 1], (4, 4))
        >>> LearnedReconstructor(torch.nn.Conv2d(1, 1, 3), odl.IdentityOperator(space)).num_parameters()
        10
        """
        return sum(p.numel() for p in self._network.parameters() if p.requires_grad)

    def _config(self) -> Mapping[str, Any]:
        return {"network": type(self._network).__name__, "num_parameters": self.num_parameters()}

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        return self._operator(y)

    def _batch(self, y):
        # the whole batch through the network at once (in chunks), not item by item
        channel = self._check_batch(y)
        shape = tuple(y.shape)
        data_shape = tuple(self.data_space.shape)
        tensor = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(y))
        flat = tensor.reshape(shape[0], *data_shape)
        with torch.no_grad():
            chunks = [self._operator.batched_call(flat[i:i + self._batch_size])
                      for i in range(0, shape[0], self._batch_size)]
        out = torch.cat(chunks) if chunks else flat.new_zeros((0, *self.reco_space.shape))
        if channel:
            out = out.reshape(shape[0], 1, *self.reco_space.shape)
        if isinstance(y, torch.Tensor):
            return out.to(y.device), [{} for _ in range(shape[0])]
        return out.cpu().numpy(), [{} for _ in range(shape[0])]
