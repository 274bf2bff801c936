"""coursekit.checkpoint: one gradient under every policy (and JAX's), measured counts against closed forms and brute force."""

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit import checkpoint

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")

POLICY_SETTINGS = [("store_all", None), ("sqrt", None), ("revolve", 1), ("revolve", 2), ("revolve", 3), ("revolve", 99)]


# --- chains -------------------------------------------------------------------------


def chain_weights(num_layers, width, seed):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((width, width)) / np.sqrt(width), rng.standard_normal(width)) for _ in range(num_layers)]


def layer_function(weight, bias, xp):
    """x -> tanh(W x + b) written with the array namespace ``xp`` (numpy for coursekit.ad, jax.numpy for JAX)."""
    return lambda x: xp.tanh(weight @ x + bias)


def jax_pair(weight, bias):
    """A layer as (forward, pullback) pair, both from JAX."""
    f = layer_function(weight, bias, jnp)
    return lambda x: np.asarray(f(x)), lambda x, y_bar: np.asarray(jax.vjp(f, x)[1](y_bar)[0])


def numpy_pair(scale):
    """A cheap elementwise layer x -> sin(x) + scale x with its hand-written pullback."""
    return lambda x: np.sin(x) + scale * x, lambda x, y_bar: y_bar * (np.cos(x) + scale)


def jax_chain_gradient(layer_functions, x0, cotangent, segment_length=None):
    r"""The input cotangent of the chain written in JAX, each segment of ``segment_length`` layers under jax.checkpoint.

    ``jax.checkpoint`` (remat) makes JAX keep only each segment's input in the
    forward pass and recompute the inside during the backward pass: the
    ``"sqrt"`` policy of coursekit.checkpoint with segments of that length.
    ``None``: no checkpointing at all (JAX keeps every residual).
    """
    length = len(layer_functions) if segment_length is None else segment_length
    segments = [layer_functions[i : i + length] for i in range(0, len(layer_functions), length)]

    def run(functions):
        def segment(x):
            for f in functions:
                x = f(x)
            return x

        return segment if segment_length is None else jax.checkpoint(segment)

    def chain(x):
        for functions in segments:
            x = run(functions)(x)
        return x

    with jax.enable_x64(True):
        return np.asarray(jax.vjp(chain, x0)[1](cotangent)[0])


# --- gradients ----------------------------------------------------------------------


@pytest.mark.parametrize("num_layers", [1, 2, 5, 9, 16])
def test_every_policy_gives_jax_grad_of_the_composed_chain(num_layers):
    weights = chain_weights(num_layers, width=4, seed=num_layers)
    layers = [jax_pair(W, b) for W, b in weights]
    rng = np.random.default_rng(0)
    x0, cotangent = rng.standard_normal(4), rng.standard_normal(4)
    composed = jax_chain_gradient([layer_function(W, b, jnp) for W, b in weights], x0, cotangent)
    # a scalar loss: the gradient of <cotangent, chain(x)> by jax.grad
    with jax.enable_x64(True):
        loss = lambda x: jnp.vdot(cotangent, jax_chain_forward(weights, x))  # noqa: E731
        gradient = np.asarray(jax.grad(loss)(x0))
    np.testing.assert_allclose(composed, gradient, rtol=1e-13, atol=1e-15)
    for policy, snapshots in POLICY_SETTINGS:
        run = checkpoint.backprop_chain(layers, x0, cotangent, policy, snapshots)
        np.testing.assert_allclose(run.input_gradient, gradient, rtol=1e-12, atol=1e-14, err_msg=f"{policy}")
        assert run.policy == policy


def jax_chain_forward(weights, x):
    for W, b in weights:
        x = jnp.tanh(W @ x + b)
    return x


@pytest.mark.parametrize("num_layers", [3, 10, 17])
def test_jax_checkpoint_on_each_segment_agrees_with_every_policy(num_layers):
    weights = chain_weights(num_layers, width=3, seed=10 + num_layers)
    functions = [layer_function(W, b, jnp) for W, b in weights]
    rng = np.random.default_rng(1)
    x0, cotangent = rng.standard_normal(3), rng.standard_normal(3)
    remat = jax_chain_gradient(functions, x0, cotangent, segment_length=checkpoint.segment_length(num_layers))
    layers = [jax_pair(W, b) for W, b in weights]
    for policy, snapshots in POLICY_SETTINGS:
        run = checkpoint.backprop_chain(layers, x0, cotangent, policy, snapshots)
        np.testing.assert_allclose(run.input_gradient, remat, rtol=1e-12, atol=1e-14, err_msg=f"{policy}")


@pytest.mark.parametrize("num_layers", [1, 4, 11])
def test_plain_numpy_layers_are_reversed_by_coursekit_ad(num_layers):
    # layers as callables written in NumPy: each reverse step is coursekit.ad.vjp at the stored input
    weights = chain_weights(num_layers, width=5, seed=20 + num_layers)
    rng = np.random.default_rng(3)
    x0, cotangent = rng.standard_normal(5), rng.standard_normal(5)
    expected = jax_chain_gradient([layer_function(W, b, jnp) for W, b in weights], x0, cotangent)
    layers = [layer_function(W, b, np) for W, b in weights]
    for policy, snapshots in POLICY_SETTINGS:
        run = checkpoint.backprop_chain(layers, x0, cotangent, policy, snapshots)
        np.testing.assert_allclose(run.input_gradient, expected, rtol=1e-12, atol=1e-14, err_msg=f"{policy}")
        assert (run.peak_stored, run.recomputations) == checkpoint.expected_counts(num_layers, policy, snapshots)


def test_layers_may_take_and_return_matrices():
    rng = np.random.default_rng(2)
    scales = rng.uniform(0.5, 1.5, 7)
    layers = [numpy_pair(c) for c in scales]
    x0, cotangent = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    runs = [checkpoint.backprop_chain(layers, x0, cotangent, p, s) for p, s in POLICY_SETTINGS]
    for run in runs:
        assert run.input_gradient.shape == (2, 3)
        np.testing.assert_allclose(run.input_gradient, runs[0].input_gradient, rtol=1e-14)


# --- counts: measured = closed form ----------------------------------------------------


@given(num_layers=st.integers(1, 40), snapshots=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_measured_counts_equal_the_closed_forms(num_layers, snapshots, seed):
    scales = np.random.default_rng(seed).uniform(0.5, 1.5, num_layers)
    layers = [numpy_pair(c) for c in scales]
    x0, cotangent = np.linspace(-1, 1, 3), np.ones(3)
    gradients = []
    for policy, s in [("store_all", None), ("sqrt", None), ("revolve", snapshots)]:
        run = checkpoint.backprop_chain(layers, x0, cotangent, policy, s)
        assert (run.peak_stored, run.recomputations) == checkpoint.expected_counts(num_layers, policy, s)
        assert run.forward_steps == num_layers - 1 + run.recomputations
        gradients.append(run.input_gradient)
    assert run.forward_steps == checkpoint.revolve_forward_steps(num_layers, snapshots)
    assert run.peak_stored <= snapshots
    # the gradient itself, by the product rule of the elementwise layers
    x, derivative = x0, np.ones(3)
    for c in scales:
        derivative, x = derivative * (np.cos(x) + c), np.sin(x) + c * x
    for gradient in gradients:
        np.testing.assert_allclose(gradient, derivative * cotangent, rtol=1e-12)


def test_store_all_stores_every_layer_input_and_recomputes_nothing():
    run = checkpoint.backprop_chain([numpy_pair(1.0)] * 12, np.ones(2), np.ones(2), "store_all")
    assert (run.peak_stored, run.forward_steps, run.recomputations) == (12, 11, 0)


@pytest.mark.parametrize("num_layers", [1, 2, 4, 10, 16, 17, 50, 100, 101, 400])
def test_sqrt_policy_stores_about_two_sqrt_n_and_recomputes_less_than_one_pass(num_layers):
    run = checkpoint.backprop_chain([numpy_pair(0.5)] * num_layers, np.ones(2), np.ones(2), "sqrt")
    assert 2 * math.sqrt(num_layers) - 2 <= run.peak_stored <= 2 * math.sqrt(num_layers)
    assert run.recomputations < num_layers
    # closed form over many more N: peak within 2 of 2 sqrt(N)
    peaks = np.array([checkpoint.expected_counts(n, "sqrt").peak_stored for n in range(1, 3000)])
    assert np.all(np.abs(peaks - 2 * np.sqrt(np.arange(1, 3000))) <= 2)


def test_segment_length_is_the_ceiling_of_sqrt_n():
    assert [checkpoint.segment_length(n) for n in (1, 2, 4, 5, 9, 10, 16, 17)] == [1, 2, 2, 3, 3, 4, 4, 5]


# --- revolve: the closed form is the optimum ---------------------------------------------


def brute_force_forward_steps(num_layers, snapshots):
    """The fewest forward steps over ALL schedules, by a shortest-path search over the machine's states.

    A state is (layers left to reverse l, position w of the working activation or -1, stored positions S).
    Free moves: store w (at most ``snapshots`` stored), drop a stored one, restore w from a stored one,
    reverse layer l-1 when w = l-1. Advancing w by one layer costs 1. Start (N, 0, {}); goal l = 0.
    """
    start = (num_layers, 0, frozenset())
    distance = {start: 0}
    queue = collections.deque([(0, start)])
    while queue:  # 0-1 breadth-first search: free moves go to the front
        steps, state = queue.popleft()
        if steps > distance[state]:
            continue
        left, working, stored = state
        if left == 0:
            return steps
        moves = []
        if 0 <= working < left - 1:
            moves.append(((left, working + 1, stored), 1))
        if working >= 0 and working not in stored and len(stored) < snapshots:
            moves.append(((left, working, stored | {working}), 0))
        for position in stored:
            moves += [((left, working, stored - {position}), 0), ((left, position, stored), 0)]
        if working == left - 1:
            moves.append(((left - 1, -1, frozenset(p for p in stored if p < left - 1)), 0))
        for successor, cost in moves:
            if steps + cost < distance.get(successor, math.inf):
                distance[successor] = steps + cost
                (queue.appendleft if cost == 0 else queue.append)((steps + cost, successor))
    raise AssertionError("the search never reversed the whole chain")


@pytest.mark.parametrize("num_layers", range(1, 10))
@pytest.mark.parametrize("snapshots", range(1, 5))
def test_revolve_closed_form_equals_the_brute_force_optimum_and_the_executed_schedule(num_layers, snapshots):
    optimum = brute_force_forward_steps(num_layers, snapshots)
    assert checkpoint.revolve_forward_steps(num_layers, snapshots) == optimum
    run = checkpoint.backprop_chain([numpy_pair(0.3)] * num_layers, np.ones(2), np.ones(2), "revolve", snapshots)
    assert run.forward_steps == optimum and run.peak_stored <= snapshots


def test_revolve_closed_form_equals_the_recursive_dynamic_program_for_larger_chains():
    # T(l, s) = min over the first split m of m + T(l - m, s - 1) + T(m, s); T(1, s) = 0; T(l >= 2, 0) = inf
    best = {}
    for s in range(0, 7):
        for l in range(1, 61):
            if l == 1:
                best[l, s] = 0
            elif s == 0:
                best[l, s] = math.inf
            else:
                best[l, s] = min(m + best[l - m, s - 1] + best[m, s] for m in range(1, l))
    for s in range(1, 7):
        for l in range(1, 61):
            assert checkpoint.revolve_forward_steps(l, s) == best[l, s], (l, s)


def test_binomial_split_is_optimal():
    def cost(layers, snapshots):
        if layers == 1:
            return 0
        return math.inf if snapshots == 0 else checkpoint.revolve_forward_steps(layers, snapshots)

    for s in range(1, 13):
        for length in range(2, 1500):
            m = checkpoint.binomial_split(length, s)
            assert 1 <= m < length and m + cost(length - m, s - 1) + cost(m, s) == cost(length, s), (length, s)
    assert checkpoint.binomial_split(10, 1) == 9 and checkpoint.binomial_split(10, 9) == 1


def test_long_chains_do_not_hit_the_recursion_limit():
    layers = [(lambda x: 0.99 * x, lambda x, y_bar: 0.99 * y_bar)] * 3000
    for snapshots in (2, 3000):
        run = checkpoint.backprop_chain(layers, np.ones(1), np.ones(1), "revolve", snapshots)
        np.testing.assert_allclose(run.input_gradient, 0.99**3000, rtol=1e-9)
        assert run.forward_steps == checkpoint.revolve_forward_steps(3000, snapshots)


def test_revolve_known_cases():
    # one snapshot: every input recomputed from x_0, N(N-1)/2; N - 1 snapshots: one sweep, N - 1
    for n in range(1, 30):
        assert checkpoint.revolve_forward_steps(n, 1) == n * (n - 1) // 2
        assert checkpoint.revolve_forward_steps(n, max(1, n - 1)) == n - 1
    # r = 2 covers up to C(s + 2, 2) layers at t = 2N - (s + 2)
    assert checkpoint.repetition_number(10, 3) == 2 and checkpoint.revolve_forward_steps(10, 3) == 2 * 10 - 5
    # logarithmic growth: C(14, 10) = 1001 >= 1000, so 10 snapshots reverse 1000 layers advancing each at
    # most 4 times: 4 * 1000 - C(14, 3) = 3636 forward steps
    assert checkpoint.repetition_number(1000, 10) == 4 and checkpoint.revolve_forward_steps(1000, 10) == 3636


# --- bad input -----------------------------------------------------------------------------


def test_bad_arguments_are_named():
    layers = [numpy_pair(1.0)] * 3
    x0 = np.ones(2)
    with pytest.raises(ValueError, match="snapshots must be an integer >= 1, got 0"):
        checkpoint.backprop_chain(layers, x0, x0, "revolve", 0)
    with pytest.raises(ValueError, match="needs snapshots"):
        checkpoint.backprop_chain(layers, x0, x0, "revolve")
    with pytest.raises(ValueError, match="only used by policy 'revolve'"):
        checkpoint.backprop_chain(layers, x0, x0, "sqrt", 2)
    with pytest.raises(ValueError, match="unknown policy 'binomial'"):
        checkpoint.backprop_chain(layers, x0, x0, "binomial")
    with pytest.raises(ValueError, match="at least one layer"):
        checkpoint.backprop_chain([], x0, x0, "store_all")
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1, got 0"):
        checkpoint.expected_counts(0, "store_all")
    with pytest.raises(ValueError, match="snapshots must be an integer >= 1"):
        checkpoint.revolve_forward_steps(5, 0)
    with pytest.raises(TypeError, match="layer 1 must be a callable or a pair"):
        checkpoint.backprop_chain([numpy_pair(1.0), 3.0], x0, x0, "store_all")
    with pytest.raises(TypeError, match="layer 0"):
        checkpoint.backprop_chain([(np.sin,)], x0, x0, "store_all")
    with pytest.raises(ValueError, match="x0 is not finite"):
        checkpoint.backprop_chain(layers, np.array([1.0, np.nan]), x0, "store_all")


def test_bad_layer_outputs_are_named():
    x0 = np.ones(2)
    exploding = (lambda x: x * np.inf, lambda x, y_bar: y_bar)
    with np.errstate(invalid="ignore", over="ignore"):
        with pytest.raises(ValueError, match="the output of layer 0 is not finite"):
            checkpoint.backprop_chain([exploding, numpy_pair(1.0)], x0, x0, "store_all")
    wrong_shape = (lambda x: x, lambda x, y_bar: y_bar[:1])
    with pytest.raises(ValueError, match="layer 0's pullback returned shape"):
        checkpoint.backprop_chain([wrong_shape], x0, x0, "store_all")
    with pytest.raises(ValueError, match=r"the cotangent has shape \(3,\), but layer 1 returns shape \(2,\)"):
        checkpoint.backprop_chain([np.tanh, np.sin], x0, np.ones(3), "sqrt")
