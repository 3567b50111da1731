"""Direct (one-step, linear) reconstructors.

- :class:`FBPReconstructor`: filtered back-projection for CT, ODL's
  ``odl.applications.tomo.fbp_op``.
- :class:`LinearReconstructor`: apply any given linear pseudo-inverse
  :math:`B \\approx A^\\dagger`.
- :class:`AdjointReconstructor`: :math:`x = A^* y`, e.g. the zero-filled MRI
  reconstruction, which is :math:`A^* y` for an orthonormal (unitary) Fourier
  operator followed by a sampling mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import odl
from odl.applications.tomo import RayTransform, fbp_op
from odl.core.set.space import LinearSpaceElement

from odl_learned._checks import check_choice, check_positive
from odl_learned.reconstructors.base import Reconstructor

__all__ = ("FBPReconstructor", "LinearReconstructor", "AdjointReconstructor", "ZeroFilledReconstructor", "FBP_FILTERS")

#: Filters understood by :func:`odl.applications.tomo.fbp_op`, from the most
#: noise-sensitive to the smoothest.
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


class FBPReconstructor(Reconstructor):
    r"""Filtered back-projection, :math:`x = A^* (h * y)`.

    Parameters
    ----------
    ray_trafo : odl.applications.tomo.RayTransform
        The CT forward operator :math:`A`.
    filter_type : str, optional
        One of ``'Ram-Lak'``, ``'Shepp-Logan'``, ``'Cosine'``, ``'Hamming'``,
        ``'Hann'`` (case-insensitive).
    frequency_scaling : float, optional
        Relative cut-off frequency of the filter, in ``(0, 1]``.
    padding : bool, optional
        Zero-pad the data before filtering (avoids wrap-around of the
        circular convolution; slower).
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    For parallel-beam geometry the filtered back-projection inverts the ray
    transform exactly in the continuum,

    .. math::
        x = \frac{1}{2} A^* \left(\mathcal{F}^{-1} |\xi|\, W(\xi/\xi_c)\,
            \mathcal{F} y\right),

    where the ramp :math:`|\xi|` is multiplied by a window :math:`W` (the
    filter) with cut-off :math:`\xi_c` = ``frequency_scaling`` times the
    Nyquist frequency. Fan and cone beam are approximate; see ``fbp_op``.
    The operator is built once, at construction.

    References
    ----------
    .. [1] Natterer, F. *The Mathematics of Computerized Tomography*. SIAM,
       2001, chapter V.1.
    .. [2] Kak, A C and Slaney, M. *Principles of Computerized Tomographic
       Imaging*. IEEE Press, 1988, chapter 3.

    Examples
    --------
    >>> import odl
    >>> from odl.applications import tomo
    >>> space = odl.uniform_discr([-16, -16], [16, 16], (32, 32), dtype="float32")
    >>> geometry = tomo.parallel_beam_geometry(space, num_angles=20)
    >>> ray_trafo = tomo.RayTransform(space, geometry, impl="astra_cpu")
    >>> fbp = FBPReconstructor(ray_trafo, filter_type="Hann")
    >>> x = fbp(ray_trafo(odl.core.phantom.shepp_logan(space, modified=True)))
    >>> x.shape
    (32, 32)
    >>> fbp
    FBPReconstructor(name='FBPReconstructor', filter_type='hann', frequency_scaling=1.0, padding=True)
    """

    def __init__(
        self,
        ray_trafo: RayTransform,
        *,
        filter_type: str = "Hann",
        frequency_scaling: float = 1.0,
        padding: bool = True,
        name: str | None = None,
    ) -> None:
        if not isinstance(ray_trafo, RayTransform):
            raise TypeError(
                f"ray_trafo must be an odl.applications.tomo.RayTransform, got {type(ray_trafo).__name__}"
            )
        filter_type = check_choice("filter_type", filter_type, FBP_FILTERS)
        check_positive("frequency_scaling", frequency_scaling)
        if frequency_scaling > 1:
            raise ValueError(f"frequency_scaling must be in (0, 1], got {frequency_scaling!r}")
        if not isinstance(padding, bool):
            raise TypeError(f"padding must be a bool, got {padding!r}")
        super().__init__(ray_trafo, name=name)
        self._filter_type = filter_type
        self._frequency_scaling = float(frequency_scaling)
        self._padding = padding
        self._fbp = fbp_op(
            ray_trafo, padding=padding, filter_type=filter_type, frequency_scaling=self._frequency_scaling
        )

    @property
    def filter_type(self) -> str:
        """The filter (lower case)."""
        return self._filter_type

    @property
    def frequency_scaling(self) -> float:
        """Relative cut-off frequency of the filter."""
        return self._frequency_scaling

    @property
    def padding(self) -> bool:
        """Whether the data are zero-padded before filtering."""
        return self._padding

    @property
    def fbp_op(self) -> odl.Operator:
        """The filtered back-projection operator (an ODL operator)."""
        return self._fbp

    def _config(self) -> Mapping[str, Any]:
        return {
            "filter_type": self.filter_type,
            "frequency_scaling": self.frequency_scaling,
            "padding": self.padding,
        }

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        return self._fbp(y)


class LinearReconstructor(Reconstructor):
    r"""Apply a given linear reconstruction operator, :math:`x = B y`.

    Parameters
    ----------
    linear_op : odl.Operator
        A linear operator :math:`B` from the data space to the image space,
        e.g. a pseudo-inverse or the adjoint of the forward operator.
    op : odl.Operator, optional
        The forward operator :math:`A`, if known; it must map
        ``linear_op.range`` to ``linear_op.domain``.
    magnitude : bool, optional
        Return :math:`|B y|` (real) instead of :math:`B y`, the usual
        magnitude image for complex MRI reconstructions.
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    The reconstruction is

    .. math::
        x = B y \quad\text{or, with } \texttt{magnitude=True},\quad x = |B y|.

    Examples
    --------
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4))
    >>> reco = LinearReconstructor(odl.ScalingOperator(space, 0.5))
    >>> float(reco(space.one()).asarray()[0, 0])
    0.5
    """

    def __init__(
        self,
        linear_op: odl.Operator,
        *,
        op: odl.Operator | None = None,
        magnitude: bool = False,
        name: str | None = None,
    ) -> None:
        if not isinstance(linear_op, odl.Operator) or not linear_op.is_linear:
            raise TypeError(f"linear_op must be a linear odl.Operator, got {linear_op!r}")
        if op is not None:
            if not isinstance(op, odl.Operator):
                raise TypeError(f"op must be an odl.Operator, got {type(op).__name__}")
            if op.range != linear_op.domain or op.domain != linear_op.range:
                raise TypeError(
                    "linear_op must map op.range to op.domain; got "
                    f"linear_op: {linear_op.domain!r} -> {linear_op.range!r}, "
                    f"op: {op.domain!r} -> {op.range!r}"
                )
        super().__init__(
            op, name=name, magnitude=magnitude, data_space=linear_op.domain, image_space=linear_op.range
        )
        self._linear_op = linear_op

    @property
    def linear_op(self) -> odl.Operator:
        """The reconstruction operator :math:`B`."""
        return self._linear_op

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        return self._linear_op(y)


class AdjointReconstructor(LinearReconstructor):
    r"""Back-projection :math:`x = A^* y`; the zero-filled MRI reconstruction.

    Parameters
    ----------
    op : odl.Operator
        A linear forward operator :math:`A` with an adjoint.
    magnitude : bool, optional
        Return :math:`|A^* y|` (real) instead of :math:`A^* y`.
    name : str, optional
        Label of the reconstructor.

    Notes
    -----
    For the subsampled Fourier operator :math:`A = M F` with a unitary
    Fourier transform :math:`F` and a 0/1 sampling mask :math:`M`,

    .. math::
        A^* y = F^{-1} M y,

    which is the zero-filled reconstruction: missing k-space samples are set
    to zero and the inverse transform is applied. For other operators (CT)
    :math:`A^* y` is the unfiltered back-projection, a blurred image (a
    baseline, not a good reconstruction).

    Examples
    --------
    >>> import numpy as np
    >>> import odl
    >>> space = odl.uniform_discr([0, 0], [4, 4], (4, 4), dtype="complex64")
    >>> reco = AdjointReconstructor(odl.ScalingOperator(space, 2.0), magnitude=True)
    >>> x = reco(space.element(np.full((4, 4), -1j)))
    >>> x.dtype, float(x.asarray()[0, 0])
    (dtype('float32'), 2.0)
    """

    def __init__(self, op: odl.Operator, *, magnitude: bool = False, name: str | None = None) -> None:
        if not isinstance(op, odl.Operator) or not op.is_linear:
            raise TypeError(f"op must be a linear odl.Operator, got {op!r}")
        super().__init__(op.adjoint, op=op, magnitude=magnitude, name=name)


class ZeroFilledReconstructor(Reconstructor):
    r"""The MRI baselines: zero-filled magnitude :math:`|A^H y|` or root-sum-of-squares.

    Unlike :class:`AdjointReconstructor`, the adjoint here is always the
    complex conjugate transpose :math:`A^H` (also when ``op.domain`` is real,
    where the ODL adjoint is :math:`\Re A^H`), so the result is the usual
    zero-filled magnitude image.

    Parameters
    ----------
    op : odl_learned.operators.mri.SubsampledFourier
        The forward operator.
    combine : {'adjoint', 'sum-of-squares'}, optional
        Coil combination: with the coil maps (:math:`|A^H y|`) or without them
        (:math:`\sqrt{\sum_c |F^H M y_c|^2}`).
    name : str, optional
        Label of the reconstructor.

    Examples
    --------
    >>> import numpy as np
    >>> import odl
    >>> from odl_learned.operators import mri
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), dtype="float32")
    >>> op = mri.subsampled_fourier(space, np.ones((8, 8), dtype=bool))
    >>> x = space.element(np.arange(64.0).reshape(8, 8))
    >>> reco = ZeroFilledReconstructor(op)
    >>> bool(np.allclose(reco(op(x)).asarray(), x.asarray(), atol=1e-4))
    True
    """

    def __init__(self, op: odl.Operator, *, combine: str = "adjoint", name: str | None = None) -> None:
        from odl_learned.operators.mri import SubsampledFourier

        if not isinstance(op, SubsampledFourier):
            raise TypeError(f"op must be an odl_learned.operators.mri.SubsampledFourier, got {type(op).__name__}")
        self._combine = check_choice("combine", combine, ("adjoint", "sum-of-squares"))
        super().__init__(op, name=name, data_space=op.range, image_space=op.domain.real_space)

    @property
    def combine(self) -> str:
        """Coil combination, ``'adjoint'`` or ``'sum-of-squares'``."""
        return self._combine

    def _config(self) -> Mapping[str, Any]:
        return {"combine": self.combine}

    def _reconstruct(self, y: LinearSpaceElement) -> LinearSpaceElement:
        from odl_learned.operators.mri import sum_of_squares, zero_filled

        image = zero_filled(self.op, y) if self.combine == "adjoint" else sum_of_squares(self.op, y)
        return self.image_space.element(image.asarray())
