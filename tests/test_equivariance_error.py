"""metrics.equivariance_error: zero for equivariant reconstructors, large for ones that are not."""

import numpy as np
import odl
import pytest

from odl_learned.data import random_ellipses
from odl_learned.metrics import data_rotation, equivariance_error
from odl_learned.operators import ct, groups, mri
from odl_learned.reconstructors import LinearReconstructor, ZeroFilledReconstructor


@pytest.fixture(scope="module")
def ct_setup():
    space = odl.uniform_discr([-16, -16], [16, 16], (32, 32), dtype="float32")
    ray_trafo = ct.ray_transform(space, 16, full_turn=True)
    ys = [ray_trafo(random_ellipses(space, 2, index=i)) for i in range(2)]
    return space, ray_trafo, ys


def test_fbp_is_c4_equivariant_on_a_full_turn(ct_setup):
    space, ray_trafo, ys = ct_setup
    fbp = LinearReconstructor(ct.fbp(ray_trafo), op=ray_trafo)
    assert equivariance_error(fbp, groups.CyclicGroup(4), ys) < 1e-4


def test_a_non_equivariant_reconstructor_is_caught(ct_setup):
    space, ray_trafo, ys = ct_setup
    ramp = space.element(np.linspace(0, 2, 32)[:, None] * np.ones((1, 32)))
    weighted = odl.MultiplyOperator(ramp) * ct.fbp(ray_trafo)  # favours one side of the image
    reco = LinearReconstructor(weighted, op=ray_trafo)
    assert equivariance_error(reco, groups.CyclicGroup(4), ys) > 0.2


def test_mri_zero_filled_is_equivariant_for_invariant_masks():
    space = odl.uniform_discr([-1, -1], [1, 1], (16, 16), dtype="complex64")
    mask = groups.rotation_invariant_mask(mri.cartesian_mask((16, 16), 4, seed=0))
    op = mri.subsampled_fourier(space, mask)
    x = space.element(random_ellipses(space.real_space, 0).asarray().astype(np.complex64))
    assert equivariance_error(ZeroFilledReconstructor(op), groups.CyclicGroup(4), [op(x)]) < 1e-5


def test_sampled_elements_and_bad_input(ct_setup):
    space, ray_trafo, ys = ct_setup
    fbp = LinearReconstructor(ct.fbp(ray_trafo), op=ray_trafo)
    assert equivariance_error(fbp, groups.CyclicGroup(4), ys[:1], num_samples=1, seed=3) < 1e-4
    with pytest.raises(ValueError, match="not a multiple of the angle step"):
        data_rotation(ray_trafo, 0.1)
    with pytest.raises(TypeError, match="pass op="):
        equivariance_error(lambda y: y, groups.CyclicGroup(4), ys)
    with pytest.raises(ValueError, match="at least one data item"):
        equivariance_error(fbp, groups.CyclicGroup(4), [])
