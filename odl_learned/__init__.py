"""odl_learned: classical and learned reconstruction in one ODL operator algebra.

Forward operators, functionals and proximals are ODL objects; every learned part
is wrapped as an ODL operator or functional through :mod:`odl_learned.bridge`.
"""

__version__ = "0.1.0"

__all__ = ("__version__",)
