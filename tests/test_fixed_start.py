"""FixedStart (a reconstructor as a memoised first step) and the variational network started from TV."""

import odl
import pytest
import torch

from odl_learned.evaluation.problems import mri_problem
from odl_learned.metrics import psnr
from odl_learned.operators.mri import centred_fft2
from odl_learned.reconstructors import FixedStart, Reconstructor, TVReconstructor
from odl_learned.reconstructors.learned_methods import LEARNED_METHODS, build_network, has_weights, load_pretrained


@pytest.fixture(scope="module")
def small_mri():
    return mri_problem(phantom="shepp-logan", num_images=2, size=32)


def _batch(problem):
    return torch.stack([y.data for y, _ in problem.pairs])


def test_fixed_start_equals_reconstructor_and_memoises():
    space = odl.uniform_discr([0, 0], [1, 1], (8, 8))
    tv = TVReconstructor(odl.IdentityOperator(space), lam=1e-3, num_iter=20)
    start = FixedStart(tv, max_items=2)
    y = torch.rand(3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x0 = start(y)
    for item, x in zip(y, x0):
        assert torch.equal(x, torch.as_tensor(tv(space.element(item.numpy())).asarray()))
    assert (start.misses, start.hits) == (3, 0)
    # the two most recent items are kept, the first was dropped
    assert torch.equal(start(y[1:]), x0[1:]) and (start.misses, start.hits) == (3, 2)
    assert torch.equal(start(y[:1]), x0[:1]) and start.misses == 4
    # a changed item is a new item
    start(y[:1] + 1e-9)
    assert start.misses == 5


def test_fixed_start_keys_any_dtype():
    """Items are keyed by their raw bytes, so dtypes NumPy lacks (bfloat16) work, and equal bytes of
    another dtype or shape are another item."""

    class Double(Reconstructor):
        def _reconstruct(self, y):
            return 2 * y

    space = odl.uniform_discr([0, 0], [1, 1], (2, 2))
    start = FixedStart(Double(odl.IdentityOperator(space)))
    y = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=torch.bfloat16)
    assert torch.equal(start(y), 2 * y) and torch.equal(start(y), 2 * y)
    assert (start.misses, start.hits) == (1, 1)
    start(y.view(torch.int16))
    start(y.reshape(1, 1, 2, 2))
    assert start.misses == 3


def test_fixed_start_bad_input():
    space = odl.uniform_discr([0, 0], [1, 1], (4, 4))
    start = FixedStart(TVReconstructor(odl.IdentityOperator(space), lam=1e-3, num_iter=2))
    with pytest.raises(RuntimeError, match="not differentiable"):
        start(torch.zeros(1, 4, 4, dtype=torch.float64, requires_grad=True))
    with pytest.raises(TypeError, match="Reconstructor"):
        FixedStart(torch.nn.Identity())
    with pytest.raises(ValueError, match="max_items"):
        FixedStart(start.reconstructor, max_items=0)


def test_varnet_tv_untrained_is_tv_then_data_consistency(small_mri):
    """With zero activations the stages are x <- x - lambda_t A^*(A x - y): lambda = 0 keeps TV exactly,
    lambda = 1 replaces the sampled k-space of the TV reconstruction by the data (A^*A is the mask)."""
    op = small_mri.op
    arch = {"num_stages": 2, "num_filters": 2, "kernel_size": 3, "init_slope": 0.0, "tv_lam": 1e-3, "tv_iter": 50,
            "tv_step_ratio": 10.0}
    network = build_network("varnet-tv", op, arch=arch)
    vn = network.network
    y = _batch(small_mri)
    tv = TVReconstructor(op, 1e-3, num_iter=50, step_ratio=10.0)
    x_tv = torch.stack([torch.as_tensor(tv(yi).asarray()) for yi, _ in small_mri.pairs])
    with torch.no_grad():
        vn.data_weights.zero_()
        assert torch.allclose(vn(y).reshape(x_tv.shape), x_tv)
        vn.data_weights.fill_(1.0)
        x = vn(y).reshape(x_tv.shape)
    mask = op.mask.expand_as(y)
    k = centred_fft2(x).reshape(y.shape)
    k_tv = centred_fft2(x_tv).reshape(y.shape)
    assert torch.allclose(k[mask], y[mask], atol=1e-5)
    assert torch.allclose(k[~mask], k_tv[~mask], atol=1e-5)


def test_varnet_tv_starts_from_the_benchmark_tv():
    """The default TV start is the MRI benchmark's TV (parameter, iterations, step ratio)."""
    from odl_learned.evaluation.methods import METHODS, NUM_ITER, STEP_RATIO

    arch = LEARNED_METHODS["varnet-tv"].arch
    assert (arch["tv_lam"], arch["tv_iter"], arch["tv_step_ratio"]) == (
        METHODS["tv"].default_param["mri"], NUM_ITER, STEP_RATIO["mri"])


def test_shipped_varnet_tv_beats_tv():
    assert has_weights("varnet-tv"), "the varnet-tv weights ship with the package"
    problem = mri_problem(num_images=2)
    reco = load_pretrained("varnet-tv", problem.op)
    info = reco.training_info["arch"]
    tv = TVReconstructor(problem.op, info["tv_lam"], num_iter=info["tv_iter"], step_ratio=info["tv_step_ratio"],
                         magnitude=True)
    for y, x_true in problem.pairs:
        assert psnr(reco(y), x_true) > psnr(tv(y), x_true)
