"""Counting the parameters of a network."""

from __future__ import annotations

from torch import nn

__all__ = ("count_parameters",)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Return the number of (trainable) scalar parameters of ``module``.

    A parameter shared between several submodules is counted once.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    trainable_only : bool, optional
        Count only parameters with ``requires_grad=True`` (default); with
        ``False`` count all of them.

    Returns
    -------
    int
        The number of scalar entries.

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Conv2d(2, 32, 3))  # 2 * 32 * 3 * 3 weights + 32 biases
    608
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
