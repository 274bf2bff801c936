"""coursekit.ad forward mode (jvp) against JAX, op by op."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

from coursekit import ad
from tests.ad_helpers import CASES, REDUCTIONS, assert_all_close, assert_close, axes_for

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_jvp_matches_jax(case):
    args = case.args(seed=5)
    tangents = tuple(np.random.default_rng(6).standard_normal(np.shape(a)) for a in args)
    value, tangent = ad.jvp(case.numpy, args, tangents)
    jax_value, jax_tangent = jax.jvp(case.jax, args, tangents)
    assert_close(value, jax_value)
    assert_close(tangent, jax_tangent)


@pytest.mark.parametrize("case", CASES[1::4], ids=lambda c: c.name)
def test_jvp_in_one_argument_leaves_the_others_constant(case):
    args = case.args(seed=7)
    t = np.random.default_rng(8).standard_normal(np.shape(args[0]))

    def only_first(xp):
        return lambda x: case.fn(xp, x, *args[1:])

    assert_all_close(ad.jvp(only_first(np), args[:1], (t,)), jax.jvp(only_first(jax.numpy), args[:1], (t,)))


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@settings(max_examples=4)
@given(shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), seed=st.integers(0, 2**16))
def test_reductions_every_axis(name, shape, seed):
    reduce = REDUCTIONS[name]
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    settings_ = [(axis, keepdims) for axis in axes_for(len(shape)) for keepdims in (False, True)]

    def all_reductions(x, xp):
        return [reduce(xp, x, axis=axis, keepdims=keepdims) for axis, keepdims in settings_]

    values, tangents = ad.jvp(lambda x: tuple(all_reductions(x, np)), (x,), (t,))
    jax_values, jax_tangents = jax.jit(lambda x, t: jax.jvp(lambda x: all_reductions(x, jax.numpy), (x,), (t,)))(x, t)
    assert_all_close(values, jax_values)
    assert_all_close(tangents, jax_tangents)


def test_jvp_output_independent_of_input_has_zero_tangent():
    value, tangent = ad.jvp(lambda x: np.ones(3) * 2.0, (np.array(1.0),), (np.array(1.0),))
    assert_close(value, np.full(3, 2.0))
    assert_close(tangent, np.zeros(3))


def test_jvp_of_tuple_outputs():
    (a, b), (ta, tb) = ad.jvp(lambda x: (np.sin(x), x**2), (np.array(0.5),), (np.array(2.0),))
    assert_close(ta, 2 * np.cos(0.5)) and assert_close(tb, 2.0)


def test_jvp_python_number_tangents_take_the_primal_dtype():
    x = np.float32(0.5)
    value, tangent = ad.jvp(np.exp, (x,), (1.0,))
    assert tangent.dtype == np.float32
