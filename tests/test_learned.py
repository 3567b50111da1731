"""Learned reconstructors as ODL operators: shipped weights, composition, derivatives, a learned proximal."""

import numpy as np
import odl
import pytest
import torch

from odl_learned.bridge import TorchFunctional, TorchOperator
from odl_learned.evaluation.problems import ct_problem, mri_problem
from odl_learned.metrics import psnr
from odl_learned.reconstructors import LearnedReconstructor
from odl_learned.reconstructors.learned_methods import (
    LEARNED_METHODS,
    build_network,
    has_weights,
    load_pretrained,
)
from odl_learned.testing import dot_test


@pytest.fixture(scope="module")
def ct():
    return ct_problem(num_images=2)


@pytest.mark.parametrize("name", [n for n, m in LEARNED_METHODS.items() if m.task == "ct"])
def test_shipped_ct_weights_beat_fbp(ct, name):
    assert has_weights(name), f"the {name} weights ship with the package"
    reco = load_pretrained(name, ct.op, ct.extras)
    fbp = odl.applications.tomo.fbp_op(ct.extras["ray_trafo"]) * ct.extras["norm"]
    for y, x_true in ct.pairs:
        assert psnr(reco(y), x_true) > psnr(fbp(y), x_true) + 2


def test_batch_equals_items(ct):
    reco = load_pretrained("lpd", ct.op, ct.extras)
    ys = np.stack([y.asarray() for y, _ in ct.pairs])
    batch = reco(ys)
    for i, (y, _) in enumerate(ct.pairs):
        assert np.allclose(batch[i], reco(y).asarray(), atol=1e-5)


def test_learned_reconstructor_composes_with_ray_transform(ct):
    """reco o A is an ODL operator on images; the learned map nearly inverts A on a test image."""
    reco = load_pretrained("fbp-unet", ct.op, ct.extras)
    y, x_true = ct.pairs[0]
    composed = reco.operator * ct.op  # image -> data -> image
    assert composed.domain == ct.op.domain and composed.range == ct.op.domain
    # noise-free data of the same image: at least as good as from noisy data
    assert psnr(composed(x_true), x_true) > psnr(reco(y), x_true) - 0.5


def test_derivative_adjoint_is_vjp():
    """The derivative of an unrolled network at y passes an adjoint dot test (JVP vs VJP).

    A small learned primal-dual network (2 iterations, 32 x 32) in float64: the
    same code path as the shipped one, at a size where the float64 JVPs are fast.
    """
    small = ct_problem(num_images=1, size=32, fine_size=64)
    network = build_network("lpd", small.op, arch={"num_iter": 2, "hidden": 8}).double()
    op64 = TorchOperator(network, small.op.range.astype("float64"), small.op.domain.astype("float64"))
    y = op64.domain.element(small.pairs[0][0].asarray().astype("float64"))
    dot_test(op64.derivative(y), rtol=1e-6, seed=1, opnorm_iter=4)


def test_trained_denoiser_as_proximal_in_odl_solver(ct):
    """The trained U-Net as the proximal step of odl.solvers.proximal_gradient (plug-and-play)."""
    reco = load_pretrained("fbp-unet", ct.op, ct.extras)
    denoiser = TorchOperator(reco.network.network, ct.op.domain, ct.op.domain)
    regulariser = TorchFunctional(torch.nn.Identity(), ct.op.domain, proximal=lambda sigma: denoiser)
    y, x_true = ct.pairs[0]
    data_fit = odl.functionals.L2NormSquared(ct.op.range).translated(y) * ct.op
    fbp = odl.applications.tomo.fbp_op(ct.extras["ray_trafo"]) * ct.extras["norm"]
    x = fbp(y)
    start = psnr(x, x_true)
    odl.solvers.proximal_gradient(x, regulariser, data_fit, gamma=0.2, niter=3)
    assert psnr(x, x_true) > start + 2


def test_varnet_beats_zero_filled():
    assert has_weights("varnet"), "the varnet weights ship with the package"
    problem = mri_problem(num_images=2)
    reco = load_pretrained("varnet", problem.op)
    from odl_learned.operators import mri

    for y, x_true in problem.pairs:
        assert psnr(reco(y), x_true) > psnr(mri.zero_filled(problem.op, y), x_true) + 2


def test_bad_inputs(ct):
    with pytest.raises(ValueError, match="unknown method .automagic."):
        build_network("automagic", ct.op)
    with pytest.raises(FileNotFoundError, match="odl-learned train lpd"):
        load_pretrained("lpd", ct.op, ct.extras, path="/nonexistent/ct_lpd.pt")
    reco = LearnedReconstructor(torch.nn.Identity(), odl.IdentityOperator(ct.op.domain))
    with pytest.raises(ValueError, match="expected"):
        reco(np.zeros((2, 5, 5), dtype="float32"))
