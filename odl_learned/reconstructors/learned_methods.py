r"""The learned methods of the reference problems: networks wired to their operators, and shipped weights.

Each :class:`LearnedMethod` says how to build its network for a forward
operator (the ray transform and its adjoint enter unrolled networks through
the bridge as OperatorModule layers), how it is trained by default, and
where its pretrained weights ship. :func:`load_pretrained` returns a
:class:`~odl_learned.reconstructors.LearnedReconstructor`, i.e. a
reconstructor that is also an ODL operator.

Methods (task ``'ct'``: data ``(B, 1, angles, detectors)``, images
``(B, 1, H, W)``; task ``'mri'``: complex k-space ``(B, 1, H, W)``, magnitude
images ``(B, 1, H, W)``):

- ``fbp-unet``: :math:`x = N_\theta(\mathrm{FBP}\, y)` (Jin et al. 2017);
- ``fbp-dncnn``: the same with a DnCNN (Zhang et al. 2017);
- ``lpg``: learned proximal gradient, :math:`x_{k+1} = \Lambda_k(x_k - \tau_k A^*(A x_k - y))`;
- ``lpd``: learned primal-dual (Adler & Oktem 2018);
- ``lgd``: learned gradient descent (Adler & Oktem 2017);
- ``varnet``: variational network (Hammernik et al. 2018), MRI, started from
  zero filling :math:`A^* y`;
- ``varnet-tv``: the same stages started from the TV reconstruction (parameter
  ``tv_lam``, ``tv_iter`` PDHG iterations of step ratio ``tv_step_ratio``), so that
  they learn a correction of TV.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import odl
import torch
from torch import nn

from odl_learned._checks import check_choice
from odl_learned.bridge import OperatorModule
from odl_learned.reconstructors.learned import LearnedReconstructor

__all__ = (
    "LearnedMethod",
    "LEARNED_METHODS",
    "PostProcessing",
    "Magnitude",
    "build_network",
    "load_pretrained",
    "weights_path",
    "has_weights",
)


class PostProcessing(nn.Module):
    r"""Post-processing :math:`x = N_\theta(B y)`: a fixed reconstruction ``B`` then a network.

    Parameters
    ----------
    initial : torch.nn.Module
        The fixed first step (e.g. FBP through the bridge); not trained.
    network : torch.nn.Module
        The trained image-to-image network.

    Examples
    --------
    >>> model = PostProcessing(nn.Identity(), nn.Conv2d(1, 1, 3, padding=1))
    >>> model(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(self, initial: nn.Module, network: nn.Module) -> None:
        super().__init__()
        self.initial = initial
        self.network = network

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        # no torch.no_grad here: gradients with respect to y (for derivatives
        # and stability audits) flow through the fixed step too
        return self.network(self.initial(y))


class Magnitude(nn.Module):
    r"""The modulus :math:`|N_\theta(y)|` of a network with complex output (MRI magnitude images).

    Examples
    --------
    >>> Magnitude(nn.Identity())(torch.tensor([3 + 4j])).tolist()
    [5.0]
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.network(y).abs()


def _post_processing(network_class: type, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.operators import ct

    fbp_op = ct.fbp(extras["ray_trafo"], "Hann", arch.get("frequency_scaling", 1.0)) * extras["norm"]
    network_arch = {k: v for k, v in arch.items() if k != "frequency_scaling"}
    return PostProcessing(OperatorModule(fbp_op), network_class(**network_arch))


def _fbp_unet(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.nets import UNet

    return _post_processing(UNet, extras, arch)


def _fbp_dncnn(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.nets import DnCNN

    return _post_processing(DnCNN, extras, arch)


def _lpg(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.nets import LearnedProximalGradient
    from odl_learned.operators import ct

    fbp_op = ct.fbp(extras["ray_trafo"], "Hann", 0.4) * extras["norm"]
    return LearnedProximalGradient(OperatorModule(op), OperatorModule(op.adjoint),
                                   init=OperatorModule(fbp_op), **arch)


def _lpd(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.nets import LearnedPrimalDual

    return LearnedPrimalDual(OperatorModule(op), OperatorModule(op.adjoint), image_shape=op.domain.shape,
                             **arch)


def _lgd(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.nets import LearnedGradientDescent

    return LearnedGradientDescent(OperatorModule(op), OperatorModule(op.adjoint), image_shape=op.domain.shape,
                                  **arch)


def _varnet(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.nets import VariationalNetwork

    # the Euclidean adjoint A^H (the ODL adjoint of a complex-domain operator is the same map)
    return Magnitude(VariationalNetwork(OperatorModule(op), OperatorModule(op.adjoint), **arch))


def _varnet_tv(op: odl.Operator, extras: Mapping[str, Any], arch: Mapping[str, Any]) -> nn.Module:
    from odl_learned.reconstructors.fixed_start import FixedStart
    from odl_learned.reconstructors.tv import TVReconstructor

    arch = dict(arch)
    tv = TVReconstructor(op, arch.pop("tv_lam"), num_iter=arch.pop("tv_iter"), step_ratio=arch.pop("tv_step_ratio"),
                         name="tv")
    return _varnet(op, extras, {**arch, "init": FixedStart(tv)})


@dataclass(frozen=True)
class LearnedMethod:
    """A learned method of a reference problem.

    Attributes
    ----------
    name : str
        Method name (``--methods``, ``odl-learned train NAME``).
    task : str
        ``'ct'`` or ``'mri'``.
    builder : callable
        ``builder(op, extras, arch)`` returns the untrained network.
    arch : dict
        Architecture keywords (saved with the weights).
    train : dict
        Default :class:`~odl_learned.training.TrainConfig` fields.
    summary : str
        One line for help and reports.

    Examples
    --------
    >>> conv = lambda op, extras, arch: nn.Conv2d(1, 1, arch["k"], padding="same")
    >>> method = LearnedMethod("conv", "ct", conv, {"k": 3}, summary="one convolution")
    >>> method.key
    'ct_conv'
    >>> net = method.builder(None, {}, method.arch)
    >>> net(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 1, 8, 8])
    >>> LEARNED_METHODS["varnet"].task
    'mri'
    """

    name: str
    task: str
    builder: Callable[[odl.Operator, Mapping[str, Any], Mapping[str, Any]], nn.Module]
    arch: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    summary: str = ""

    @property
    def key(self) -> str:
        """``'TASK_NAME'``, the stem of the weight files.

        Examples
        --------
        >>> LEARNED_METHODS["lpd"].key
        'ct_lpd'
        """
        return f"{self.task}_{self.name.replace('-', '_')}"


#: Default training of the CT methods (Adam, as Adler & Oktem; clipped gradients).
_CT_TRAINING = {"batch_size": 32, "learning_rate": 1e-3, "grad_clip": 1.0, "loss": "mse"}

LEARNED_METHODS: dict[str, LearnedMethod] = {
    m.name: m
    for m in (
        LearnedMethod(
            "fbp-unet", "ct", _fbp_unet, {"frequency_scaling": 1.0},
            _CT_TRAINING,
            "FBP + U-Net post-processing (Jin et al. 2017)",
        ),
        LearnedMethod(
            "fbp-dncnn", "ct", _fbp_dncnn, {"frequency_scaling": 1.0, "depth": 17, "features": 64},
            _CT_TRAINING,
            "FBP + DnCNN post-processing (Zhang et al. 2017)",
        ),
        LearnedMethod(
            "lpg", "ct", _lpg, {"num_iter": 8},
            _CT_TRAINING,
            "learned proximal gradient (forward-backward with learned proximal networks), 8 iterations, FBP start",
        ),
        LearnedMethod(
            "lpd", "ct", _lpd, {"num_iter": 10, "num_primal": 5, "num_dual": 5, "hidden": 32},
            _CT_TRAINING,
            "learned primal-dual (Adler & Oktem 2018), 10 iterations",
        ),
        LearnedMethod(
            "lgd", "ct", _lgd, {"num_iter": 10},
            _CT_TRAINING,
            "learned gradient descent (Adler & Oktem 2017), 10 iterations",
        ),
        LearnedMethod(
            "varnet", "mri", _varnet, {"num_stages": 10, "num_filters": 24, "kernel_size": 11},
            {"batch_size": 8, "learning_rate": 1e-3, "grad_clip": 1.0, "loss": "mse"},
            "variational network (Hammernik et al. 2018), 10 stages, 24 filters 11x11",
        ),
        LearnedMethod(
            # the TV of the MRI benchmark (parameter from ``odl-learned benchmark mri --tune``, its iterations
            # and step ratio); init_slope 0: the untrained stages only restore the measured k-space, so
            # training starts at TV
            "varnet-tv", "mri", _varnet_tv,
            {"num_stages": 10, "num_filters": 24, "kernel_size": 11, "init_slope": 0.0,
             "tv_lam": 5e-5, "tv_iter": 300, "tv_step_ratio": 10.0},
            {"batch_size": 8, "learning_rate": 1e-3, "grad_clip": 1.0, "loss": "mse"},
            "variational network started from the TV reconstruction, 10 stages, 24 filters 11x11",
        ),
    )
}


def build_network(name: str, op: odl.Operator, extras: Mapping[str, Any] | None = None,
                  arch: Mapping[str, Any] | None = None) -> nn.Module:
    """Return the untrained network of method ``name`` for operator ``op``.

    Parameters
    ----------
    name : str
        A key of :data:`LEARNED_METHODS`.
    op : odl.Operator
        The (normalised) forward operator of the data the network sees.
    extras : mapping, optional
        For ``fbp-unet``: ``ray_trafo`` (unnormalised) and ``norm``.
    arch : mapping, optional
        Architecture keywords (default: the method's).

    Examples
    --------
    >>> from odl_learned.evaluation.problems import ct_problem
    >>> problem = ct_problem(num_images=1, size=32, fine_size=64)
    >>> net = build_network("lpd", problem.op, arch={"num_iter": 2})
    >>> net(torch.zeros(1, 1, *problem.op.range.shape)).shape
    torch.Size([1, 1, 32, 32])
    """
    name = check_choice("method", name, tuple(LEARNED_METHODS))
    method = LEARNED_METHODS[name]
    return method.builder(op, dict(extras or {}), {**method.arch, **dict(arch or {})})


def weights_path(name: str) -> str:
    """Path of the shipped weights of method ``name`` (which may not exist yet).

    Examples
    --------
    >>> os.path.basename(weights_path("lpd"))
    'ct_lpd.pt'
    """
    name = check_choice("method", name, tuple(LEARNED_METHODS))
    return os.fspath(resources.files("odl_learned") / "weights" / f"{LEARNED_METHODS[name].key}.pt")


def has_weights(name: str) -> bool:
    """Whether weights for method ``name`` ship with this installation.

    Examples
    --------
    >>> isinstance(has_weights("lpd"), bool)
    True
    """
    return os.path.exists(weights_path(name))


def load_pretrained(name: str, op: odl.Operator, extras: Mapping[str, Any] | None = None, *,
                    path: str | os.PathLike | None = None, image_space: odl.LinearSpace | None = None,
                    device: str | torch.device | None = None) -> LearnedReconstructor:
    """Return method ``name`` with its trained weights as a reconstructor (and ODL operator).

    Parameters
    ----------
    name : str
        A key of :data:`LEARNED_METHODS`.
    op, extras :
        As for :func:`build_network`; they must describe the problem the
        weights were trained for (the weight file's JSON records it).
    path : path-like, optional
        Weight file (default: the shipped one, :func:`weights_path`).
    image_space : odl.LinearSpace, optional
        Space of the network's output (default ``op.domain``, for MRI its
        real counterpart).
    device : str or torch.device, optional
        Where the network runs (default CPU).

    Returns
    -------
    LearnedReconstructor
        The network with its weights, ``name`` as its label and the weight
        file's JSON as ``training_info``.

    Raises
    ------
    FileNotFoundError
        If there are no weights; the message says how to train them.

    Examples
    --------
    Weights saved for a small ray transform (``arch`` recorded in the JSON
    next to them) come back into the same network:

    >>> import tempfile
    >>> from odl_learned.operators import ct
    >>> space = odl.uniform_discr([-1, -1], [1, 1], (8, 8), dtype="float32")
    >>> op = ct.ray_transform(space, num_angles=4)
    >>> net = build_network("lgd", op, arch={"num_iter": 1})
    >>> y = op(space.one())
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "lgd.pt")
    ...     torch.save(net.state_dict(), path)
    ...     with open(os.path.join(tmp, "lgd.json"), "w") as f:
    ...         json.dump({"arch": {"num_iter": 1}}, f)
    ...     reco = load_pretrained("lgd", op, path=path)
    >>> reco.name, reco.training_info["arch"]
    ('lgd', {'num_iter': 1})
    >>> x = reco(y)
    >>> x in space
    True
    >>> with torch.no_grad():
    ...     expected = net(torch.as_tensor(y.asarray())[None, None])[0, 0]
    >>> torch.allclose(torch.as_tensor(x.asarray()), expected)
    True
    >>> load_pretrained("lgd", op, path="missing.pt")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no weights for 'lgd' at missing.pt; train them with 'odl-learned train lgd --task ct'
    """
    name = check_choice("method", name, tuple(LEARNED_METHODS))
    method = LEARNED_METHODS[name]
    path = os.fspath(path) if path is not None else weights_path(name)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no weights for {name!r} at {path}; train them with 'odl-learned train {name} --task {method.task}'"
        )
    info = _read_info(path)
    network = build_network(name, op, extras, info.get("arch"))
    state = torch.load(path, map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    network.to(device or "cpu")
    if image_space is None:
        image_space = op.domain.real_space if getattr(op.domain, "is_complex", False) else op.domain
    return LearnedReconstructor(network, op, image_space=image_space, name=name, training_info=info)


def _read_info(path: str) -> dict:
    info_path = os.path.splitext(path)[0] + ".json"
    if not os.path.exists(info_path):
        return {}
    with open(info_path) as f:
        return json.load(f)
