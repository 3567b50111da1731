"""Forward operators as ODL operators: CT, MRI, noise models."""

from odl_learned.operators import ct, mri, noise

__all__ = ("ct", "mri", "noise")
