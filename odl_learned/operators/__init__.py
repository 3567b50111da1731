"""Forward operators as ODL operators: CT, MRI, noise models."""

from odl_learned.operators import ct, mri, noise
from odl_learned.operators import groups

__all__ = ("ct", "mri", "noise", "groups")
