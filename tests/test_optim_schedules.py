"""coursekit.optim.schedules: values against optax over whole runs, WSD against its definition, scaling rules."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.optim import schedules

STEPS = np.arange(0, 400)
values = st.floats(0.0, 1.0)
positive = st.floats(1e-4, 1.0)


def assert_schedules_equal(ours, oracle, steps=STEPS):
    """Equal to 1e-6 relative at every step, called eagerly on Python ints and jitted on int32 arrays."""
    expected = np.array([float(oracle(int(t))) for t in steps])
    eager = np.array([float(ours(int(t))) for t in steps])
    jitted = np.asarray(jax.jit(jax.vmap(ours))(jnp.asarray(steps, jnp.int32)))
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(eager, expected, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(jitted, expected, rtol=1e-6, atol=1e-6 * scale)


@given(value=values)
def test_constant(value):
    assert_schedules_equal(schedules.constant_schedule(value), optax.constant_schedule(value), STEPS[:5])


@given(init=values, end=values, transition=st.integers(-5, 300), begin=st.integers(0, 100))
def test_linear(init, end, transition, begin):
    assert_schedules_equal(
        schedules.linear_schedule(init, end, transition, begin), optax.linear_schedule(init, end, transition, begin)
    )


@given(init=positive, decay_steps=st.integers(1, 300), alpha=values, exponent=st.floats(0.5, 3.0))
def test_cosine_decay(init, decay_steps, alpha, exponent):
    assert_schedules_equal(
        schedules.cosine_decay_schedule(init, decay_steps, alpha, exponent),
        optax.cosine_decay_schedule(init, decay_steps, alpha, exponent),
    )


@given(
    init=values,
    peak=positive,
    warmup=st.integers(0, 100),
    decay=st.integers(1, 300),
    end=values,
    exponent=st.floats(0.5, 2.0),
)
def test_warmup_cosine_decay(init, peak, warmup, decay, end, exponent):
    decay_steps = warmup + decay
    end = end * peak
    assert_schedules_equal(
        schedules.warmup_cosine_decay_schedule(init, peak, warmup, decay_steps, end, exponent),
        optax.warmup_cosine_decay_schedule(init, peak, warmup, decay_steps, end, exponent),
    )


@given(
    init=positive,
    boundaries=st.dictionaries(st.integers(0, 350), st.floats(0.0, 2.0), max_size=4),
)
def test_piecewise_constant(init, boundaries):
    assert_schedules_equal(
        schedules.piecewise_constant_schedule(init, boundaries), optax.piecewise_constant_schedule(init, boundaries)
    )


def wsd_reference(t, peak, warmup, stable, decay, init, end, shape):
    """The definition in the docstring, phase by phase, in plain Python."""
    if t < warmup:
        return init + (peak - init) * t / warmup
    s = min(max(t - warmup - stable, 0), decay) / decay
    c = {"linear": 1 - s, "1-sqrt": 1 - math.sqrt(s), "cosine": 0.5 * (1 + math.cos(math.pi * s))}[shape]
    return end + (peak - end) * c


@given(
    peak=positive,
    warmup=st.integers(0, 100),
    stable=st.integers(0, 150),
    decay=st.integers(1, 150),
    init=values,
    end=values,
    shape=st.sampled_from(["linear", "1-sqrt", "cosine"]),
)
def test_warmup_stable_decay_matches_definition(peak, warmup, stable, decay, init, end, shape):
    ours = schedules.warmup_stable_decay_schedule(peak, warmup, stable, decay, init, end, shape)
    assert_schedules_equal(ours, lambda t: wsd_reference(t, peak, warmup, stable, decay, init, end, shape))


@given(
    peak=positive,
    warmup=st.integers(1, 100),
    stable=st.integers(0, 150),
    decay=st.integers(1, 150),
    init=values,
    end=values,
)
def test_warmup_stable_decay_linear_is_a_join_of_optax_schedules(peak, warmup, stable, decay, init, end):
    oracle = optax.join_schedules(
        [
            optax.linear_schedule(init, peak, warmup),
            optax.constant_schedule(peak),
            optax.linear_schedule(peak, end, decay),
        ],
        [warmup, warmup + stable],
    )
    assert_schedules_equal(schedules.warmup_stable_decay_schedule(peak, warmup, stable, decay, init, end), oracle)


def test_warmup_stable_decay_phases():
    wsd = schedules.warmup_stable_decay_schedule(1.0, 10, 20, 10, decay_shape="1-sqrt")
    assert float(wsd(0)) == 0.0 and float(wsd(10)) == 1.0 and float(wsd(29)) == 1.0
    assert float(wsd(40)) == 0.0 and float(wsd(1000)) == 0.0
    assert float(wsd(35)) == pytest.approx(1 - math.sqrt(0.5))


@pytest.mark.parametrize(
    "make",
    [
        lambda: schedules.cosine_decay_schedule(1.0, 0),
        lambda: schedules.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
        lambda: schedules.warmup_stable_decay_schedule(1.0, 10, 10, 0),
        lambda: schedules.warmup_stable_decay_schedule(1.0, -1, 10, 10),
        lambda: schedules.warmup_stable_decay_schedule(1.0, 10, 10, 10, decay_shape="exp"),
        lambda: schedules.piecewise_constant_schedule(1.0, {10: -0.1}),
        lambda: schedules.linear_scaling_rule(0.1, 0, 256),
        lambda: schedules.sqrt_scaling_rule(0.1, 256, -1),
    ],
)
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_batch_size_scaling_rules():
    # Goyal et al. 2017: lr 0.1 at batch 256 -> 3.2 at batch 8192
    assert schedules.linear_scaling_rule(0.1, 256, 8192) == pytest.approx(3.2)
    # square root: 4x the batch, 2x the step
    assert schedules.sqrt_scaling_rule(1e-3, 256, 1024) == pytest.approx(2e-3)
    assert schedules.linear_scaling_rule(0.1, 256, 256) == schedules.sqrt_scaling_rule(0.1, 256, 256) == 0.1


@given(base=positive, b0=st.integers(1, 4096), k=st.integers(1, 64))
def test_scaling_rules_compose(base, b0, k):
    """Scaling twice by k equals scaling once by k^2 (both rules are power laws in the batch)."""
    for rule in (schedules.linear_scaling_rule, schedules.sqrt_scaling_rule):
        twice = rule(rule(base, b0, k * b0), k * b0, k * k * b0)
        assert twice == pytest.approx(rule(base, b0, k * k * b0), rel=1e-12)
