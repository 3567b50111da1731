"""Forward operators as ODL operators: CT, MRI, noise models."""

from odl_learned.operators import ct

__all__ = ("ct",)
