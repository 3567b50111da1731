"""Group actions: group laws, adjoints, equivariance of CT, MRI and proximal operators."""

from __future__ import annotations

import itertools

import numpy as np
import odl
import pytest
import torch
from odl.applications import tomo
from odl.core.operator.operator import OpNotImplementedError

from odl_learned.operators import ct, groups, mri
from odl_learned.operators.groups import (
    CyclicGroup,
    DihedralGroup,
    KSpaceRotation90,
    Reflection,
    Rotation,
    Rotation90,
    RotoTranslation,
    SinogramRotation,
    Translation,
    equivariance_check,
    interpolation_error,
    kspace_rotation90,
    rotation_invariant_mask,
    sinogram_rotation,
    smooth_test_image,
)
from odl_learned.reconstructors import TVReconstructor
from odl_learned.testing import dot_test, random_element


def image_space(n: int = 8, impl: str = "numpy", dtype: str = "float64", shape=None) -> odl.DiscretizedSpace:
    shape = (n, n) if shape is None else shape
    return odl.uniform_discr([-s / 2 for s in shape], [s / 2 for s in shape], shape, impl=impl, dtype=dtype)


def arr(x) -> np.ndarray:
    data = x.data
    return data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)


# --- the abstract groups ----------------------------------------------------------------------


@pytest.mark.parametrize("group", [CyclicGroup(m) for m in (1, 4, 5)] + [DihedralGroup(m) for m in (1, 3, 4)])
def test_group_axioms(group):
    elements = group.elements()
    assert len(elements) == group.order == len(set(elements))
    e = group.identity
    for g in elements:
        assert group.compose(e, g) == g == group.compose(g, e)
        assert group.compose(g, group.inverse(g)) == e == group.compose(group.inverse(g), g)
    for g, h, k in itertools.product(elements, repeat=3):
        assert group.compose(group.compose(g, h), k) == group.compose(g, group.compose(h, k))
    assert all(group.compose(g, h) in group for g in elements for h in elements)


def test_dihedral_relations():
    d4 = DihedralGroup(4)
    r, s = (1, 0), (0, 1)
    assert d4.compose(s, d4.compose(r, s)) == d4.inverse(r)  # s r s = r^-1
    assert d4.compose(s, s) == d4.identity
    assert d4.compose(r, d4.compose(r, d4.compose(r, r))) == d4.identity
    assert d4.compose(r, s) != d4.compose(s, r)  # not abelian


def test_group_element_checks():
    with pytest.raises(ValueError, match="not an element"):
        CyclicGroup(4).compose(4, 0)
    with pytest.raises(TypeError, match="pair"):
        DihedralGroup(4).inverse(1)
    with pytest.raises(ValueError, match="positive"):
        CyclicGroup(0)
    assert 5 not in CyclicGroup(4) and (3, 1) in DihedralGroup(4)


# --- exact actions: group laws on images ------------------------------------------------------


@pytest.mark.parametrize("group", [CyclicGroup(4), DihedralGroup(4), CyclicGroup(2), DihedralGroup(2)])
@pytest.mark.parametrize("impl", ["numpy", "pytorch"])
def test_exact_actions_are_homomorphisms(group, impl):
    space = image_space(6, impl=impl)
    x = random_element(space, seed=3)
    act = {g: group.action(space, g) for g in group.elements()}
    assert all(group.is_exact(g) for g in group.elements())
    assert np.array_equal(arr(act[group.identity](x)), arr(x))
    for g, h in itertools.product(group.elements(), repeat=2):
        assert np.array_equal(arr(act[g](act[h](x))), arr(act[group.compose(g, h)](x))), (g, h)
    for g in group.elements():
        assert np.array_equal(arr(act[group.inverse(g)](act[g](x))), arr(x))
        assert np.array_equal(arr(act[g].inverse(x)), arr(act[group.inverse(g)](x)))
        assert np.array_equal(arr(act[g].adjoint(x)), arr(act[group.inverse(g)](x)))  # orthogonal


def test_rotation90_convention():
    """Counter-clockwise from axis 0 to axis 1: the point (1, 0) goes to (0, 1)."""
    space = image_space(5)
    x = np.zeros((5, 5))
    x[4, 2] = 1.0  # p = (+2, 0)
    y = arr(Rotation90(space, 1)(space.element(x)))
    assert y[2, 4] == 1.0  # p = (0, +2)
    assert np.array_equal(y, np.rot90(x))
    d4 = DihedralGroup(4)
    assert np.array_equal(arr(d4.action(space, (3, 1))(space.element(x))), x.T)  # diagonal reflection


def test_rotation90_grid_checks():
    with pytest.raises(ValueError, match="square grid"):
        Rotation90(image_space(shape=(4, 6)), 1)
    half_turn = Rotation90(image_space(shape=(4, 6)), 2)  # a half turn needs no square grid
    x = random_element(half_turn.domain)
    assert np.array_equal(arr(half_turn(x)), arr(x)[::-1, ::-1])
    with pytest.raises(ValueError, match="square cells"):
        Rotation90(odl.uniform_discr([0, 0], [1, 2], (4, 4)), 1)


# --- translations -------------------------------------------------------------------------------


def test_integer_translation_is_roll():
    space = image_space(shape=(6, 5))
    x = random_element(space)
    t = Translation(space, (2, -1))
    assert t.is_integer
    assert np.array_equal(arr(t(x)), np.roll(arr(x), (2, -1), axis=(0, 1)))
    assert np.array_equal(arr(t.inverse(t(x))), arr(x))


@pytest.mark.parametrize("shape", [(8, 8), (9, 7), (8, 7)])
def test_subpixel_translation_exact_for_band_limited(shape):
    """A trigonometric polynomial below Nyquist is shifted exactly."""
    space = image_space(shape=shape)
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")

    def wave(di, dj):
        return np.cos(2 * np.pi * 3 * (i - di) / shape[0]) + np.sin(2 * np.pi * 2 * (j - dj) / shape[1] + 0.3)

    t = Translation(space, (0.3, -1.7))
    out = t(space.element(wave(0, 0)))
    assert out.space == space  # real stays real
    np.testing.assert_allclose(arr(out), wave(0.3, -1.7), atol=1e-12)


def test_subpixel_translation_group_law_and_inverse():
    odd = image_space(shape=(9, 7))
    x = random_element(odd)
    half = Translation(odd, (0.5, 0.25))
    np.testing.assert_allclose(arr(half(half(x))), arr(Translation(odd, (1.0, 0.5))(x)), atol=1e-12)
    np.testing.assert_allclose(arr(half.inverse(half(x))), arr(x), atol=1e-12)
    even = image_space(8)
    with pytest.raises(OpNotImplementedError, match="Nyquist"):
        Translation(even, (0.5, 0)).inverse
    assert Translation(even, (0.5, 0)).adjoint.shift == (-0.5, 0.0)


def test_translation_complex_space():
    space = image_space(8, impl="pytorch", dtype="complex128")
    x = random_element(space, seed=2)
    t = Translation(space, (0.4, 1.5))
    assert t(x).space == space
    dot_test(t, rtol=1e-12)


# --- interpolated rotations -----------------------------------------------------------------


def test_rotation_quarter_turn_is_exact():
    space = image_space(16)
    x = random_element(space)
    for k in range(4):
        np.testing.assert_allclose(arr(Rotation(space, k * np.pi / 2)(x)), arr(Rotation90(space, k)(x)), atol=1e-12)


def test_interpolation_error_is_second_order():
    """||R_{-t} R_t x - x|| / ||x|| on the smooth test image (bilinear): O(h^2)."""
    errors = {n: interpolation_error(image_space(n), 2 * np.pi / 32) for n in (32, 64, 128)}
    # measured: 7.2e-2 (32), 1.9e-2 (64), 4.7e-3 (128)
    assert errors[64] < 0.025 and errors[128] < 0.006
    assert 3.5 < errors[32] / errors[64] < 4.5 and 3.5 < errors[64] / errors[128] < 4.5
    assert interpolation_error(image_space(64), 0.3, interpolation="nearest") > errors[64]


def test_interpolated_group_law_approximately():
    """C_8 acts by interpolated rotations: the group law holds up to interpolation error."""
    space = image_space(64)
    c8 = CyclicGroup(8)
    x = smooth_test_image(space)
    assert not c8.is_exact(1) and c8.is_exact(2)
    twice = c8.action(space, 1)(c8.action(space, 1)(x))
    error = float((twice - c8.action(space, 2)(x)).norm() / x.norm())
    assert error < 0.02


def test_rotation_batches_and_autograd_match_adjoint():
    space = image_space(shape=(12, 10))  # rectangular grid
    rot = Rotation(space, 0.4)
    batch = torch.randn(3, 2, 12, 10, dtype=torch.float64)
    out = rot.torch_call(batch)
    np.testing.assert_allclose(out[1, 0].numpy(), arr(rot(space.element(batch[1, 0].numpy()))), atol=1e-14)
    x = batch.clone().requires_grad_(True)
    g = torch.randn_like(batch)
    (grad,) = torch.autograd.grad(rot.torch_call(x), x, g)
    np.testing.assert_allclose(grad.numpy(), rot.adjoint.torch_call(g).numpy(), atol=1e-12)
    with pytest.raises(OpNotImplementedError, match="approximate"):
        rot.inverse


def test_operator_module_batch_and_gradient():
    """The actions run natively in the torch bridge: one call per batch, autograd = adjoint."""
    from odl_learned.bridge import OperatorModule

    space = image_space(16, impl="pytorch", dtype="float32")
    op = RotoTranslation(space, (0.5, -1), angle=0.3)
    module = OperatorModule(op)
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    y = module(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y[2, 0], op.torch_call(x[2, 0]))
    g = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(grad, op.adjoint.torch_call(g), rtol=1e-5, atol=1e-5)


# --- adjoints of every action ---------------------------------------------------------------


def _all_actions():
    sq, rect, odd = image_space(8), image_space(shape=(8, 6)), image_space(7)
    torch_sq = image_space(8, impl="pytorch", dtype="float32")
    sino = odl.uniform_discr([0, -1], [1, 1], (8, 5))
    kspace = odl.tensor_space((8, 8), dtype="complex128", impl="pytorch")
    kspace_odd = odl.tensor_space((2, 7, 7), dtype="complex128", impl="pytorch")
    ops = [Rotation90(sq, k) for k in range(4)] + [Rotation90(rect, 2), Rotation90(torch_sq, 1)]
    ops += [Reflection(sq, 0), Reflection(rect, 1)]
    ops += [Translation(rect, (1, -2)), Translation(rect, (0.5, 1.25)), Translation(odd, (0.3, 0.7))]
    ops += [Rotation(sq, 0.3), Rotation(rect, -1.0), Rotation(sq, 2.0, interpolation="nearest")]
    ops += [Rotation(torch_sq, 0.7)]
    ops += [RotoTranslation(sq, (1, 2), k=3), RotoTranslation(sq, (0.5, 0), angle=0.2)]
    ops += [DihedralGroup(4).action(sq, g) for g in DihedralGroup(4).elements()]
    ops += [DihedralGroup(8).action(sq, (3, 1)), CyclicGroup(6).action(sq, 1)]
    ops += [SinogramRotation(sino, 3), SinogramRotation(sino, 11, half_turn=True)]
    ops += [KSpaceRotation90(kspace, k) for k in (1, 2, 3)] + [KSpaceRotation90(kspace_odd, 1)]
    return ops


@pytest.mark.parametrize("op", _all_actions(), ids=repr)
def test_dot_test_every_action(op):
    rtol = 1e-5 if "float32" in repr(op.domain) else 1e-12
    dot_test(op, rtol=rtol)


@pytest.mark.parametrize("op", [op for op in _all_actions() if not isinstance(op, Rotation)], ids=repr)
def test_exact_inverse(op):
    try:
        inverse = op.inverse
    except OpNotImplementedError:
        assert isinstance(op, Translation) or "Rotation(" in repr(op)  # documented non-invertible cases
        return
    x = random_element(op.domain, seed=5)
    np.testing.assert_allclose(arr(inverse(op(x))), arr(x), atol=1e-5 if "float32" in repr(op.domain) else 1e-12)


def test_half_turn_sinogram_shift_wraps_with_reversal():
    sino = odl.uniform_discr([0, -1], [1, 1], (4, 3))
    y = random_element(sino)
    one = SinogramRotation(sino, 1, half_turn=True)
    four = SinogramRotation(sino, 4, half_turn=True)
    np.testing.assert_array_equal(arr(four(y)), arr(y)[:, ::-1])  # phi + pi: s -> -s
    z = y
    for _ in range(8):
        z = one(z)
    np.testing.assert_array_equal(arr(z), arr(y))  # 8 steps of pi / 4: a full turn


# --- CT: A R = S A ------------------------------------------------------------------------------


def test_ct_full_turn_quarter_turns_exact():
    """num_angles = 32 over [0, 2 pi): a shift by 8 angles is a rotation by 90 degrees."""
    space = image_space(32)
    ray_trafo = ct.ray_transform(space, num_angles=32, full_turn=True)
    x = odl.core.phantom.shepp_logan(space, modified=True) + smooth_test_image(space)
    for k in (1, 2, 3):
        S = sinogram_rotation(ray_trafo, 8 * k)
        assert np.isclose(S.angle, k * np.pi / 2)
        # the projection matrix is single precision: agreement to rounding (measured 2e-6)
        assert equivariance_check(ray_trafo, Rotation90(space, k), S, x) < 1e-5
    # the wrong direction is far off
    assert equivariance_check(ray_trafo, Rotation90(space, 1), sinogram_rotation(ray_trafo, -8), x) > 0.1


def test_ct_full_turn_one_angle_step_interpolated():
    """A shift by 1 of 32 angles is a rotation by 2 pi / 32: interpolated, error reported."""
    space = image_space(64)
    ray_trafo = ct.ray_transform(space, num_angles=32, full_turn=True)
    x = smooth_test_image(space)
    error = equivariance_check(ray_trafo, Rotation(space, 2 * np.pi / 32), sinogram_rotation(ray_trafo, 1), x)
    # measured: 4.8e-3 at 64 x 64 (1.9e-2 at 32 x 32), the bilinear interpolation error
    assert error < 0.01


def test_ct_half_turn_and_fan_beam():
    space = image_space(32)
    x = smooth_test_image(space)
    half = ct.ray_transform(space, num_angles=30)  # [0, pi): wrap-around reverses the detector
    assert equivariance_check(half, Rotation90(space, 1), sinogram_rotation(half, 15), x) < 1e-5
    assert equivariance_check(half, Rotation90(space, 3), sinogram_rotation(half, 45), x) < 1e-5
    fan = ct.ray_transform(space, num_angles=32, geometry="fan")
    assert equivariance_check(fan, Rotation90(space, 1), sinogram_rotation(fan, 8), x) < 1e-5


def test_sinogram_rotation_rejects_non_equivariant_geometries():
    space = image_space(16)
    det = ct.make_geometry(space, 10).det_partition
    partial = tomo.Parallel2dGeometry(odl.uniform_partition(0, 3, 10), det)
    with pytest.raises(ValueError, match="cover"):
        sinogram_rotation(ct.ray_transform(space, geometry=partial), 1)
    shifted = odl.uniform_discr([0, 0], [16, 16], (16, 16))
    with pytest.raises(ValueError, match="rotates about"):
        sinogram_rotation(ct.ray_transform(shifted, num_angles=8, full_turn=True), 2)
    with pytest.raises(TypeError, match="RayTransform"):
        sinogram_rotation(odl.IdentityOperator(space), 1)


# --- MRI: A R = K A -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [8, 9])
@pytest.mark.parametrize("dtype", ["complex128", "float64"])
def test_mri_full_sampling(n, dtype):
    space = image_space(n, impl="pytorch", dtype=dtype)
    op = mri.subsampled_fourier(space, np.ones((n, n), dtype=bool))
    x = random_element(space, seed=1)
    for k in range(4):
        assert equivariance_check(op, Rotation90(space, k), kspace_rotation90(op, k), x) < 1e-13


def test_mri_even_size_needs_the_dc_centred_rotation():
    """For even n, plain rot90 of k-space is off by one pixel and a phase."""
    n = 8
    space = image_space(n, impl="pytorch", dtype="complex128")
    x = random_element(space, seed=2)
    y = mri.centred_fft2(x.data)
    naive = torch.rot90(y, 1, dims=(-2, -1))
    assert float((naive - mri.centred_fft2(torch.rot90(x.data))).abs().max()) > 0.1
    exact = KSpaceRotation90(odl.tensor_space((n, n), dtype="complex128", impl="pytorch"), 1).torch_call(y)
    assert torch.allclose(exact, mri.centred_fft2(torch.rot90(x.data)), atol=1e-13)


@pytest.mark.parametrize("n", [16, 15])
def test_mri_rotation_invariant_masks(n):
    space = image_space(n, impl="pytorch", dtype="complex128")
    x = random_element(space, seed=4)
    kappa = np.arange(n) - n // 2
    disc = kappa[:, None] ** 2 + kappa[None, :] ** 2 <= (n // 3) ** 2  # low-pass disc about DC
    lines = mri.cartesian_mask((n, n), acceleration=4, center_fraction=0.125, seed=0)
    symmetric = rotation_invariant_mask(lines)  # lines and their quarter turns about DC
    assert symmetric.mean() < 0.6
    for mask in (disc, symmetric):
        op = mri.subsampled_fourier(space, mask)
        for k in range(4):
            assert equivariance_check(op, Rotation90(space, k), kspace_rotation90(op, k), x) < 1e-13
    with pytest.raises(ValueError, match="not invariant"):
        kspace_rotation90(mri.subsampled_fourier(space, lines), 1)
    if n % 2 == 0:  # symmetric under numpy.rot90 (about the array centre) is not enough for even n
        rot90_symmetric = lines | np.rot90(lines)
        with pytest.raises(ValueError, match="not invariant"):
            kspace_rotation90(mri.subsampled_fourier(space, rot90_symmetric | np.rot90(rot90_symmetric, 2)), 1)


def test_mri_multicoil_rejected():
    space = image_space(8, impl="pytorch", dtype="complex128")
    maps = mri.coil_sensitivities((8, 8), 2, dtype="complex128")
    with pytest.raises(ValueError, match="coil maps"):
        kspace_rotation90(mri.subsampled_fourier(space, np.ones((8, 8), dtype=bool), maps), 1)


# --- the proximal operator of an invariant functional is equivariant --------------------------


def test_l1_prox_is_equivariant_exactly():
    """L1 is invariant under every pixel permutation, so its (pointwise) prox is equivariant."""
    space = image_space(16)
    x = random_element(space, seed=6)
    prox = (0.3 * odl.functionals.L1Norm(space)).proximal(1.0)
    d4 = DihedralGroup(4)
    for g in d4.elements():
        act = d4.action(space, g)
        assert equivariance_check(prox, act, act, x) == 0.0
    shift = Translation(space, (3, -5))
    assert equivariance_check(prox, shift, shift, x) == 0.0


def test_tv_prox_equivariance():
    """TV-prox(g x) = g TV-prox(x): exact where the discrete TV is invariant, else a small error.

    ``TVReconstructor(I, lam)`` is the prox of ``lam * TV + i_{>=0}``. The
    continuum TV is invariant under all rotations and reflections, but the
    discrete isotropic TV with forward differences, ``sum |(D0 x, D1 x)|_2``,
    pairs the forward differences of both axes at one pixel. A quarter turn or
    an axis reflection turns forward into backward differences along one
    axis, so TV(g x) != TV(x) (here by about 0.1% to 0.5%) and the prox is
    equivariant only up to about 2% to 5% (measured on this image: 4.7e-2 for
    a quarter turn, 4.6e-2 for a half turn, 5.0e-2 for the axis reflection;
    independent of the iteration count, so not a solver effect). Only the
    reflection about the diagonal (the transpose, (3, 1) in D4) maps forward
    differences to forward differences: the discrete TV and every PDHG
    iterate are then exactly equivariant.
    """
    space = image_space(32)
    rng = np.random.default_rng(0)
    x = space.element(arr(odl.core.phantom.shepp_logan(space, modified=True)) + 0.1 * rng.standard_normal((32, 32)))
    prox = TVReconstructor(odl.IdentityOperator(space), 0.05, num_iter=100)
    d4 = DihedralGroup(4)
    transpose = d4.action(space, (3, 1))
    assert equivariance_check(prox, transpose, transpose, x) < 1e-12
    grad = odl.Gradient(space)
    tv = odl.functionals.GroupL1Norm(grad.range) * grad
    for g in [(1, 0), (2, 0), (0, 1)]:
        act = d4.action(space, g)
        assert abs(tv(act(x)) - tv(x)) > 1e-4 * tv(x)  # not invariant on the grid ...
        error = equivariance_check(prox, act, act, x)
        assert 1e-3 < error < 0.1  # ... so the prox is equivariant only approximately


# --- input checks -------------------------------------------------------------------------------


def test_bad_input():
    space = image_space(8)
    with pytest.raises(TypeError, match="DiscretizedSpace"):
        Rotation90(odl.rn((8, 8)), 1)
    with pytest.raises(ValueError, match="2D"):
        Rotation90(odl.uniform_discr(0, 1, 8), 1)
    with pytest.raises(ValueError, match="shift"):
        Translation(space, 1.0)
    with pytest.raises(ValueError, match="interpolation"):
        Rotation(space, 0.1, interpolation="cubic")
    with pytest.raises(ValueError, match="exactly one"):
        RotoTranslation(space, (0, 0), k=1, angle=0.1)
    with pytest.raises(ValueError, match="shape"):
        Rotation90(space, 1).torch_call(torch.zeros(3, 7, 8))
    other = image_space(6)
    with pytest.raises(ValueError, match="g_domain.domain"):
        equivariance_check(odl.IdentityOperator(space), Rotation90(space, 1), Rotation90(space, 1), other.one())
    with pytest.raises(ValueError, match="zero"):
        equivariance_check(odl.IdentityOperator(space), Rotation90(space, 1), Rotation90(space, 1), space.zero())
    assert set(groups.__all__) <= set(dir(groups))
