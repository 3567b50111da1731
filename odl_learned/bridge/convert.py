"""Conversion between ODL elements and torch tensors.

For spaces with ``impl='pytorch'`` the element's tensor is shared, not copied;
for NumPy spaces the array is wrapped with ``torch.from_numpy`` (no copy on the
CPU either).
"""

from __future__ import annotations

import numpy as np
import odl
import torch

__all__ = ("torch_dtype", "element_to_tensor", "tensor_to_element", "is_torch_space")


def is_torch_space(space: odl.LinearSpace) -> bool:
    """Return True if ``space`` holds torch tensors (``impl='pytorch'``).

    Examples
    --------
    >>> is_torch_space(odl.uniform_discr(0, 1, 4, impl="pytorch"))
    True
    >>> is_torch_space(odl.uniform_discr(0, 1, 4))
    False
    >>> is_torch_space(odl.uniform_discr(0, 1, 4, impl="pytorch") ** 2)  # power spaces too
    True
    """
    if isinstance(space, odl.ProductSpace):
        return space.is_power_space and is_torch_space(space[0])
    return getattr(space, "impl", None) == "pytorch"


def torch_dtype(space: odl.LinearSpace) -> torch.dtype:
    """Return the torch dtype matching the dtype of an ODL tensor space.

    Examples
    --------
    >>> torch_dtype(odl.uniform_discr(0, 1, 4, dtype="float32"))
    torch.float32
    >>> torch_dtype(odl.uniform_discr(0, 1, 4, dtype="complex128", impl="pytorch"))
    torch.complex128
    """
    if isinstance(space, odl.ProductSpace):
        return torch_dtype(space[0])
    dtype = space.dtype
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def element_to_tensor(x: odl.LinearSpace.Element) -> torch.Tensor:
    """Return the data of an ODL element as a torch tensor of the element's shape.

    Examples
    --------
    >>> space = odl.uniform_discr(0, 1, 3)
    >>> element_to_tensor(space.one())
    tensor([1., 1., 1.], dtype=torch.float64)

    Elements of power spaces ``X^n`` give a stacked tensor ``(n, *X.shape)``:

    >>> element_to_tensor((space ** 2).one()).shape
    torch.Size([2, 3])
    """
    if isinstance(x.space, odl.ProductSpace):
        return torch.stack([element_to_tensor(part) for part in x])
    data = x.data
    if isinstance(data, torch.Tensor):
        return data
    return torch.from_numpy(np.ascontiguousarray(data))


def tensor_to_element(t: torch.Tensor, space: odl.LinearSpace) -> odl.LinearSpace.Element:
    """Return ``t`` as an element of ``space``, detached from autograd.

    Shared memory where the backend allows; a copy to NumPy (via the CPU)
    for NumPy spaces.

    Examples
    --------
    >>> space = odl.uniform_discr(0, 1, 3)
    >>> tensor_to_element(torch.ones(3), space).asarray().tolist()
    [1.0, 1.0, 1.0]
    """
    t = t.detach()
    if isinstance(space, odl.ProductSpace):
        return space.element([tensor_to_element(part, sub) for part, sub in zip(t, space)])
    if is_torch_space(space):
        return space.element(t.to(dtype=torch_dtype(space), device=space.device))
    t = t.cpu()
    if t.dtype in (torch.bfloat16, torch.complex32):  # NumPy has no such dtypes
        t = t.to(torch_dtype(space))
    return space.element(t.numpy())
