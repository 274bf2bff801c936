"""The checks behind the test cells of the exercises.

Every check draws its inputs from a seed, computes the expected answer with the
library's reference implementation *out of process* (:mod:`.reference`) before
the student's function ever runs, then calls the student's function on copies
and compares. Test cells only call these functions, so intermediate values live
in this module's frames, never in the notebook's globals where an answer could
read them.

Tolerances. The student's code and the reference evaluate the same formula on
bit-identical inputs; they may differ only in the order of the last few
floating-point operations. The difference is therefore a few ulps of the
*terms before cancellation* (e.g. f(x+h)/h for a difference quotient), and the
tolerance is ``64 eps`` times that scale plus ``1e-8`` times the size of the
answer. A wrong formula (forward instead of central, a missing factor d or 2)
is off by O(h) or O(1) relative, many orders of magnitude above.
"""

import copy
import functools
import warnings

import numpy as np

from .reference import reference_many
from .testfunctions import (ARITHMETIC, FORWARD_OPS, REVERSE_OPS, affine, program_bounds, program_output,
                            quadratic_tanh, random_function, random_program, relu, run_program,
                            softmax_cross_entropy, two_layer_loss)

EPS = np.finfo(np.float64).eps


def _as_result(name, value, shape):
    got = np.asarray(value)
    if got.dtype.kind not in "fiu":
        raise AssertionError(f"{name} must return a float array, got dtype {got.dtype}")
    if got.shape != tuple(shape):
        raise AssertionError(f"{name} returned shape {got.shape}, expected {tuple(shape)}")
    return got.astype(np.float64)


def _assert_close(name, got, expected, cancellation_scale, where):
    error = np.max(np.abs(got - expected), initial=0.0)
    tolerance = 1e-8 * np.max(np.abs(expected), initial=0.0) + 64 * EPS * cancellation_scale
    if not error <= tolerance:  # also catches NaN
        raise AssertionError(
            f"{name}: wrong result for {where}: max abs error {error:.3e} > tolerance {tolerance:.3e}")


def _call(answer, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return answer(*copy.deepcopy(args))


def _random_unit(rng, shape):
    z = rng.standard_normal(shape)
    return z / np.linalg.norm(z)


def check_central_difference(answer, shapes, seed, h=1e-4):
    """``answer(f, x, h)`` against ``coursekit.fd.gradient(f, x, "central", step=h)``."""
    rng = np.random.default_rng(seed)
    cases = []
    for shape in shapes:
        f, _ = random_function(rng, int(np.prod(shape)))
        cases.append((f, rng.standard_normal(shape)))
    expected = reference_many("coursekit.fd.gradient",
                              [((f, x, "central"), {"step": h}) for f, x in cases])
    for (f, x), want in zip(cases, expected):
        got = _as_result("central_difference_gradient", _call(answer, f, x, h), x.shape)
        scale = (abs(f(x)) + 1.0) / h
        _assert_close("central_difference_gradient", got, want, scale, f"x of shape {x.shape}")


def check_two_point_estimate(answer, shapes, seed, tau=1e-3):
    """``answer(f, x, u, tau)`` against ``coursekit.zo.two_point_estimate`` (central, scale d)."""
    rng = np.random.default_rng(seed)
    cases = []
    for shape in shapes:
        f, _ = random_function(rng, int(np.prod(shape)))
        cases.append((f, rng.standard_normal(shape), _random_unit(rng, shape)))
    expected = reference_many(
        "coursekit.zo.two_point_estimate",
        [((f, x, u, tau), {"scale": x.size, "scheme": "central"}) for f, x, u in cases])
    for (f, x, u), want in zip(cases, expected):
        got = _as_result("two_point_estimate", _call(answer, f, x, u, tau), x.shape)
        scale = x.size * (abs(f(x + tau * u)) + abs(f(x - tau * u))) / (2 * tau)
        _assert_close("two_point_estimate", got, want, scale, f"x of shape {x.shape}")


def check_two_point_unbiased(answer, size, seed, directions=20_000, tau=1e-4):
    """The mean of ``answer`` over many random unit directions approaches the gradient.

    E[d (u.g) u] = g for u uniform on the unit sphere (E[u u^T] = I/d), and the
    mean of N estimates has relative error about sqrt((d-1)/N); we allow five
    times that (plus the O(tau^2) bias, negligible here).
    """
    rng = np.random.default_rng(seed)
    f, gradient = random_function(rng, size)
    x = rng.standard_normal(size)
    g = gradient(x)
    total = np.zeros(size)
    for _ in range(directions):
        u = _random_unit(rng, size)
        total += _as_result("two_point_estimate", answer(f, x.copy(), u, tau), (size,))
    error = np.linalg.norm(total / directions - g) / np.linalg.norm(g)
    allowed = 5 * np.sqrt((size - 1) / directions)
    if not error <= allowed:
        raise AssertionError(
            f"two_point_estimate: the mean over {directions} directions is off the gradient by "
            f"{error:.3f} (relative); an unbiased estimator stays below {allowed:.3f}")


def _squared_distances(W):
    diff = W[:, None, :] - W[None, :, :]
    return np.sum(diff**2, axis=-1)


def mds_loss(W, D):
    """L(W) = sum_ij (||W_i - W_j||^2 - D_ij)^2."""
    return np.sum((_squared_distances(W) - D) ** 2)


def _random_mds_problem(rng, n, dim):
    W = rng.standard_normal((n, dim))
    D = _squared_distances(rng.standard_normal((n, dim)))
    return W, D


def _mds_scale(W, D):
    # the size of the terms 8 r_ij (W_i - W_j) summed into the gradient
    r = np.abs(_squared_distances(W) - D)
    spread = np.max(np.abs(W[:, None, :] - W[None, :, :]), axis=-1)
    return 8 * np.max(np.sum(r * spread, axis=1))


def check_mds_gradient(answer, sizes, seed):
    """``answer(W, D)`` against ``coursekit.mds.gradient(W, D)`` for (n, dim) in ``sizes``."""
    rng = np.random.default_rng(seed)
    cases = [_random_mds_problem(rng, n, dim) for n, dim in sizes]
    expected = reference_many("coursekit.mds.gradient", [((W, D), {}) for W, D in cases])
    for (W, D), want in zip(cases, expected):
        got = _as_result("mds_gradient", _call(answer, W, D), W.shape)
        _assert_close("mds_gradient", got, want, _mds_scale(W, D), f"W of shape {W.shape}")


def classical_mds(D, dim):
    """Points whose squared distances are D when D is Euclidean: top eigenpairs of -J D J / 2."""
    n = len(D)
    J = np.eye(n) - np.ones((n, n)) / n
    values, vectors = np.linalg.eigh(-0.5 * J @ D @ J)
    top = np.argsort(values)[::-1][:dim]
    return vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0))


def check_mds_properties(answer, n, dim, seed, epsilon=1e-5):
    """Two oracles independent of coursekit.mds.

    1. At the classical-MDS embedding of an exactly Euclidean D every residual
       vanishes, so the gradient is zero up to rounding.
    2. At a random W the directional derivative <grad, V> matches the central
       difference (L(W + eps V) - L(W - eps V)) / (2 eps), whose error is
       O(eps^2) relative.
    """
    rng = np.random.default_rng(seed)
    D = _squared_distances(rng.standard_normal((n, dim)))
    W = classical_mds(D, dim)
    got = _as_result("mds_gradient", _call(answer, W, D), W.shape)
    scale = 8 * n * np.max(D) * np.max(np.abs(W))
    if not np.max(np.abs(got)) <= 1e-9 * scale:
        raise AssertionError(
            f"mds_gradient: not zero at an exact embedding (max |grad| {np.max(np.abs(got)):.3e})")

    W, D = _random_mds_problem(rng, n, dim)
    V = rng.standard_normal(W.shape)
    got = _as_result("mds_gradient", _call(answer, W, D), W.shape)
    directional = np.sum(got * V)
    difference = (mds_loss(W + epsilon * V, D) - mds_loss(W - epsilon * V, D)) / (2 * epsilon)
    if not abs(directional - difference) <= 1e-6 * np.sum(np.abs(got * V)) + 1e-6:
        raise AssertionError(
            f"mds_gradient: <gradient, V> = {directional:.6e} but the loss changes at rate "
            f"{difference:.6e} along V")


# --- exercise 2: forward mode with dual numbers ---------------------------------------------
#
# Random programs (testfunctions.random_program) run on the student's Dual objects;
# the reference is coursekit.ad.jvp of the same program on NumPy's functions, out of
# process. Tolerance: testfunctions.program_bounds propagates a first-order bound B on
# the rounding error of the value and of the tangent (in units of eps) through the
# program (every operation adds one rounding of its result and passes its inputs'
# errors on through its partial derivatives). Any evaluation of the same operations,
# in any order, lands within eps B of the exact result: over 700 random programs,
# the reference solution and coursekit.ad differed by at most 0.4 eps B. We allow
# 64 eps B. A wrong derivative rule is off by the size of that step's contribution,
# typically 10^10 times more.

ROUNDING_UNITS = 64


def _program_cases(rng, num_programs, ops, inputs, outputs=(1, 1)):
    """``num_programs`` (program, x, v) triples; ``inputs`` and ``outputs`` are (low, high) ranges."""
    cases = []
    for _ in range(num_programs):
        n = int(rng.integers(inputs[0], inputs[1] + 1))
        m = int(rng.integers(outputs[0], outputs[1] + 1))
        x = rng.uniform(-2.0, 2.0, n)
        program = random_program(rng, x, ops, size=3 * n + 6, num_outputs=m)
        cases.append((program, x, rng.standard_normal(n)))
    return cases


def _reference_jvps(cases):
    """coursekit.ad.jvp of every output of every program: a list of (values, tangents) arrays."""
    calls = [((functools.partial(program_output, program=p, output=j), (x,), (v,)), {})
             for p, x, v in cases for j in range(len(p[2]))]
    results = iter(reference_many("coursekit.ad.jvp", calls))
    found = []
    for p, _, _ in cases:
        pairs = [next(results) for _ in p[2]]
        found.append((np.array([float(out) for out, _ in pairs]), np.array([float(t) for _, t in pairs])))
    return found


def _assert_within_bound(name, got, expected, bound, where):
    error = np.abs(np.asarray(got, dtype=float) - expected)
    tolerance = ROUNDING_UNITS * EPS * np.asarray(bound) + 1e-300
    if not np.all(error <= tolerance):  # also catches NaN
        k = int(np.argmax(np.where(np.isnan(error), np.inf, error / tolerance)))
        raise AssertionError(
            f"{name}: wrong result for {where}: got {float(np.ravel(got)[k])!r}, "
            f"expected {float(np.ravel(expected)[k])!r} "
            f"(error {np.ravel(error)[k]:.3e} > tolerance {np.ravel(tolerance)[k]:.3e})")


def _describe_program(program):
    names = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}
    used = sorted({names.get(op, op) for op, _, _ in program[1]})
    return f"a program of {len(program[1])} steps on {program[0]} input(s) using {', '.join(used)}"


def _dual_parts(result, name):
    """The (primal, tangent) floats of what the student's code returned as a Dual."""
    try:
        primal, tangent = result.primal, result.tangent
    except AttributeError:
        raise AssertionError(f"{name}: the result {result!r} is not a Dual (no .primal and .tangent)") from None
    return (float(_as_result(f"{name}: the primal", primal, ())),
            float(_as_result(f"{name}: the tangent", tangent, ())))


def _check_dual_programs(Dual, functions, seed, num_programs, ops, name):
    rng = np.random.default_rng(seed)
    cases = _program_cases(rng, num_programs, ops, inputs=(1, 4))
    expected = _reference_jvps(cases)
    for (program, x, v), (values, tangents) in zip(cases, expected):
        _, _, value_bound, tangent_bound = program_bounds(program, x, v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = run_program(program, [Dual(float(a), float(b)) for a, b in zip(x, v)], functions)[0]
        primal, tangent = _dual_parts(out, name)
        where = _describe_program(program)
        _assert_within_bound(f"{name} (primal)", primal, values[0], value_bound[0], where)
        _assert_within_bound(f"{name} (tangent)", tangent, tangents[0], tangent_bound[0], where)


def check_dual_arithmetic(Dual, seed, num_programs=6):
    """Programs of + - * / ** and negation (constants on either side) on ``Dual(x_i, v_i)``:
    the result's primal and tangent against ``coursekit.ad.jvp``."""
    _check_dual_programs(Dual, {}, seed, num_programs, ARITHMETIC, "Dual arithmetic")


def check_dual_functions(Dual, functions, seed, num_programs=6):
    """As :func:`check_dual_arithmetic`, with the student's ``sin, cos, exp, log`` (the dict ``functions``)."""
    _check_dual_programs(Dual, functions, seed, num_programs, FORWARD_OPS, "Dual functions")


def check_derivative(derivative, functions, seed, num_programs=6):
    """``derivative(f, x)`` for random programs f of one variable, against ``coursekit.ad.jvp`` along 1."""
    rng = np.random.default_rng(seed)
    cases = _program_cases(rng, num_programs, FORWARD_OPS, inputs=(1, 1))
    cases = [(p, x, np.ones(1)) for p, x, _ in cases]
    expected = _reference_jvps(cases)
    for (program, x, v), (_, tangents) in zip(cases, expected):
        _, _, _, bound = program_bounds(program, x, v)

        def f(t, program=program):
            return run_program(program, [t], functions)[0]

        got = _as_result("derivative", _call(derivative, f, float(x[0])), ())
        _assert_within_bound("derivative", got, tangents[0], bound[0], f"x = {x[0]:.4g} in " + _describe_program(program))


def check_jvp_dual(jvp_dual, functions, seed, num_programs=5):
    """``jvp_dual(f, x, v)`` for random programs f: R^n -> R^m (lists of numbers in and out),
    against ``coursekit.ad.jvp`` of each output."""
    rng = np.random.default_rng(seed)
    cases = _program_cases(rng, num_programs, FORWARD_OPS, inputs=(2, 5), outputs=(1, 3))
    expected = _reference_jvps(cases)
    for (program, x, v), (values, tangents) in zip(cases, expected):
        _, _, value_bound, tangent_bound = program_bounds(program, x, v)

        def f(xs, program=program):
            return run_program(program, xs, functions)

        result = _call(jvp_dual, f, x, v)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise AssertionError(f"jvp_dual must return a pair (y, y_dot), got {type(result).__name__}")
        shape = (len(program[2]),)
        y, y_dot = _as_result("jvp_dual: y", result[0], shape), _as_result("jvp_dual: y_dot", result[1], shape)
        where = f"{len(program[2])} output(s) of " + _describe_program(program)
        _assert_within_bound("jvp_dual (y)", y, values, value_bound, where)
        _assert_within_bound("jvp_dual (y_dot)", y_dot, tangents, tangent_bound, where)


def check_dual_properties(Dual, functions, seed, num_programs=6):
    """Two properties, with no reference implementation.

    1. The primal part is the plain value: the program on floats (math's functions), and a
       zero tangent stays exactly zero (constants have derivative 0).
    2. The tangent is linear in the input tangent: t(a u + b w) = a t(u) + b t(w), up to
       the rounding bound of the three evaluations.
    """
    rng = np.random.default_rng(seed)
    for program, x, u in _program_cases(rng, num_programs, FORWARD_OPS, inputs=(1, 4)):
        w, (a, b) = rng.standard_normal(len(x)), rng.uniform(-2.0, 2.0, 2)
        where = _describe_program(program)

        def run(v):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = run_program(program, [Dual(float(p), float(t)) for p, t in zip(x, v)], functions)[0]
            return _dual_parts(out, "Dual")

        value, _, value_bound, _ = program_bounds(program, x, np.zeros(len(x)))
        primal, tangent = run(np.zeros(len(x)))
        _assert_within_bound("Dual (primal)", primal, value[0], value_bound[0], where)
        if tangent != 0.0:
            raise AssertionError(f"Dual: the tangent should stay 0 when every input tangent is 0, got "
                                 f"{tangent!r} for {where}")
        bounds = [program_bounds(program, x, t)[3][0] for t in (u, w, a * u + b * w)]
        combined = run(a * u + b * w)[1]
        _assert_within_bound("Dual (linearity of the tangent)", combined, a * run(u)[1] + b * run(w)[1],
                             abs(a) * bounds[0] + abs(b) * bounds[1] + bounds[2], where)


# --- exercise 3: reverse mode -------------------------------------------------------------

VALUE_METHODS = {"tanh": lambda a: a.tanh(), "exp": lambda a: a.exp(), "relu": lambda a: a.relu()}


def _value_gradients(Value, program, x):
    """Build the program on ``Value`` leaves, call backward() on the output; (data, [grads])."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaves = [Value(float(t)) for t in x]
        out = run_program(program, leaves, VALUE_METHODS)[0]
        out.backward()
    data = float(_as_result("Value.data", getattr(out, "data", None), ()))
    grads = np.array([float(_as_result("Value.grad", getattr(leaf, "grad", None), ())) for leaf in leaves])
    return data, grads


def check_value_gradients(Value, seed, num_programs=8):
    """``.grad`` of the leaves after ``out.backward()`` on random programs of + - * **, negation,
    tanh, exp and relu, against ``coursekit.ad.grad`` (out of process); ``out.data`` against
    the program on floats. Tolerances as for the Dual checks (the bound of each partial
    derivative is the forward-mode bound along that coordinate)."""
    rng = np.random.default_rng(seed)
    cases = _program_cases(rng, num_programs, REVERSE_OPS, inputs=(1, 4))
    expected = reference_many("coursekit.grading.testfunctions.reference_gradient",
                              [((functools.partial(program_output, program=p), x), {}) for p, x, _ in cases])
    for (program, x, _), want in zip(cases, expected):
        value, _, value_bound, _ = program_bounds(program, x, np.zeros(len(x)))
        bounds = np.array([program_bounds(program, x, e)[3][0] for e in np.eye(len(x))])
        data, grads = _value_gradients(Value, program, x)
        where = _describe_program(program)
        _assert_within_bound("Value (data)", data, value[0], value_bound[0], where)
        _assert_within_bound("Value (grad of the inputs)", grads, np.asarray(want, dtype=float), bounds, where)


def _ladder(depth):
    """z_0 = x0 * x1, z_1 = z_0 + x0, then z_k = tanh(0.9 z_{k-1} + 0.5 z_{k-2}) * x1 + x0.

    Every node feeds the next two, so there are about 1.6^depth paths from the output to
    the inputs: backward() must visit each node once, after all the nodes that use it.
    """
    steps = [("mul", ("x", 0), ("x", 1)), ("add", ("n", 0), ("x", 0))]
    previous, current = 0, 1
    for _ in range(depth):
        k = len(steps)
        steps += [("mul", ("c", 0.9), ("n", current)), ("mul", ("n", previous), ("c", 0.5)),
                  ("add", ("n", k), ("n", k + 1)), ("tanh", ("n", k + 2), None),
                  ("mul", ("n", k + 3), ("x", 1)), ("add", ("n", k + 4), ("x", 0))]
        previous, current = current, k + 5
    return (2, tuple(steps), (len(steps) - 1,))


def check_value_shared_nodes(Value, seed, depth=60):
    """Gradients through shared nodes add up, and backward visits each node once.

    No reference implementation: the exact gradient of a "ladder" in which every node is
    used twice comes from forward-mode evaluation of the same program along each
    coordinate (testfunctions.program_bounds). At depth 60 the ladder has 362 nodes and
    ~10^12 paths, so a backward pass that follows paths instead of a topological order
    never ends; its longest path (~360 nodes) leaves a recursive topological sort well
    inside Python's recursion limit (1000).
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.3, 1.0, 2)
    program = _ladder(depth)
    value, _, value_bound, _ = program_bounds(program, x, np.zeros(2))
    exact = [program_bounds(program, x, e) for e in np.eye(2)]
    data, grads = _value_gradients(Value, program, x)
    where = f"a ladder of depth {depth} (every node used twice)"
    _assert_within_bound("Value (data)", data, value[0], value_bound[0], where)
    _assert_within_bound("Value (grad of the inputs)", grads, np.array([t[1][0] for t in exact]),
                         np.array([t[3][0] for t in exact]), where)


def check_linear_backward(linear_backward, shapes, seed):
    """``linear_backward(x, W, b, grad_out) -> (dx, dW, db)`` for y = x @ W + b, against
    ``coursekit.ad.vjp`` of ``testfunctions.affine``; shapes are (batch, n_in, n_out)."""
    rng = np.random.default_rng(seed)
    cases = [tuple(rng.standard_normal(s) for s in [(n, i), (i, o), (o,), (n, o)]) for n, i, o in shapes]
    expected = reference_many("coursekit.grading.testfunctions.reference_vjp",
                              [((affine, (x, W, b), g), {}) for x, W, b, g in cases])
    for (x, W, b, g), (_, want) in zip(cases, expected):
        result = _call(linear_backward, x, W, b, g)
        if not (isinstance(result, tuple) and len(result) == 3):
            raise AssertionError(f"linear_backward must return a tuple (dx, dW, db), got {type(result).__name__}")
        where = f"x {x.shape}, W {W.shape}"
        # each entry sums n_out (dx) or batch (dW, db) products: rounding ~ that many ulps of their sum
        scales = [W.shape[1] * np.max(np.abs(g) @ np.abs(W).T), x.shape[0] * np.max(np.abs(x).T @ np.abs(g)),
                  x.shape[0] * np.max(np.abs(g))]
        for name, got, wanted, scale in zip(("dx", "dW", "db"), result, want, scales):
            got = _as_result(f"linear_backward: {name}", got, np.shape(wanted))
            _assert_close(f"linear_backward: {name}", got, np.asarray(wanted), scale, where)


def check_relu_backward(relu_backward, shapes, seed):
    """``relu_backward(x, grad_out)`` against ``coursekit.ad.vjp`` of max(x, 0) (exact: no rounding)."""
    rng = np.random.default_rng(seed)
    cases = [(rng.standard_normal(s), rng.standard_normal(s)) for s in shapes]
    expected = reference_many("coursekit.grading.testfunctions.reference_vjp",
                              [((relu, (x,), g), {}) for x, g in cases])
    for (x, g), (_, (want,)) in zip(cases, expected):
        got = _as_result("relu_backward", _call(relu_backward, x, g), x.shape)
        _assert_close("relu_backward", got, np.asarray(want), 0.0, f"x of shape {x.shape}")


def _classification_batch(rng, batch, classes, offset=0.0):
    logits = 3.0 * rng.standard_normal((batch, classes)) + offset
    return logits, rng.integers(classes, size=batch)


def check_softmax_cross_entropy_backward(backward, shapes, seed, offsets=(0.0, 1000.0)):
    """``backward(logits, labels)``: the gradient of the batch-mean softmax cross-entropy
    with respect to the logits, against ``coursekit.ad.grad`` of
    ``testfunctions.softmax_cross_entropy``; shapes are (batch, classes), each tried with
    logits shifted by every offset (1000: exp overflows unless the maximum is subtracted).
    The entries are (softmax - onehot) / batch, sums of terms of size 1 / batch."""
    rng = np.random.default_rng(seed)
    cases = [_classification_batch(rng, n, k, offset) for n, k in shapes for offset in offsets]
    expected = reference_many(
        "coursekit.grading.testfunctions.reference_gradient",
        [((functools.partial(softmax_cross_entropy, labels=labels), logits), {}) for logits, labels in cases])
    for (logits, labels), want in zip(cases, expected):
        got = _as_result("softmax_cross_entropy_backward", _call(backward, logits, labels), logits.shape)
        where = f"logits of shape {logits.shape} around {np.mean(logits):.0f}"
        _assert_close("softmax_cross_entropy_backward", got, np.asarray(want), 1.0 / len(logits), where)


def check_two_layer_gradient(linear_backward, relu_backward, softmax_cross_entropy_backward, sizes, seed):
    """The three backward functions chained through a two-layer network,
    loss = softmax_cross_entropy(relu(x @ W1 + b1) @ W2 + b2, labels), against ``coursekit.ad.grad``
    of the whole loss with respect to (W1, b1, W2, b2). Sizes are (batch, n_in, hidden, classes)."""
    rng = np.random.default_rng(seed)
    cases = []
    for n, i, h, k in sizes:
        W1, b1 = rng.standard_normal((i, h)) / np.sqrt(i), 0.1 * rng.standard_normal(h)
        W2, b2 = rng.standard_normal((h, k)) / np.sqrt(h), 0.1 * rng.standard_normal(k)
        cases.append((W1, b1, W2, b2, rng.standard_normal((n, i)), rng.integers(k, size=n)))
    expected = reference_many("coursekit.grading.testfunctions.reference_gradient",
                              [((two_layer_loss, *case), {"argnums": (0, 1, 2, 3)}) for case in cases])
    for (W1, b1, W2, b2, x, labels), want in zip(cases, expected):
        pre = affine(x, W1, b1)
        hidden = relu(pre)
        logits = affine(hidden, W2, b2)
        d_logits = _call(softmax_cross_entropy_backward, logits, labels)
        d_hidden, dW2, db2 = _call(linear_backward, hidden, W2, b2, np.asarray(d_logits, dtype=float))
        d_pre = _call(relu_backward, pre, np.asarray(d_hidden, dtype=float))
        _, dW1, db1 = _call(linear_backward, x, W1, b1, np.asarray(d_pre, dtype=float))
        where = f"a network {x.shape[1]}-{W1.shape[1]}-{W2.shape[1]}, batch {len(x)}"
        # the same chain on absolute values bounds the terms summed into each entry
        # (|softmax - onehot| <= 1 per logit); each entry sums at most batch x (hidden + classes) of them
        d_logits_bound = np.ones(logits.shape) / len(x)
        d_pre_bound = d_logits_bound @ np.abs(W2).T
        terms = len(x) * (W1.shape[1] + W2.shape[1])
        scales = [terms * np.max(np.abs(x).T @ d_pre_bound), terms * np.max(np.sum(d_pre_bound, axis=0)),
                  terms * np.max(np.abs(hidden).T @ d_logits_bound), terms]
        for name, got, wanted, scale in zip(("dW1", "db1", "dW2", "db2"), (dW1, db1, dW2, db2), want, scales):
            wanted = np.asarray(wanted)
            got = _as_result(f"two-layer gradient: {name}", got, wanted.shape)
            _assert_close(f"two-layer gradient: {name}", got, wanted, scale, where)


# --- exercise 4: curvature ------------------------------------------------------------------

def _random_model(rng, n, k):
    M = rng.standard_normal((n, n))
    return (M + M.T) / 2, rng.standard_normal((k, n)) / np.sqrt(n), rng.standard_normal(k)


def _hvp_scale(A, B, c, v):
    # the entries of A v + B^T (c tanh'' (B v)) sum n and k products; |tanh''| <= 0.77
    n, k = B.shape[1], B.shape[0]
    return (n * np.max(np.abs(A) @ np.abs(v))
            + (n + k) * np.max(np.abs(B).T @ (np.abs(c) * (np.abs(B) @ np.abs(v)))))


def check_model_hvp(model_hvp, sizes, seed):
    """``model_hvp(A, B, c, x, v)`` for f(x) = x^T A x / 2 + c^T tanh(B x), against
    ``coursekit.curvature.hvp`` (forward-over-reverse in coursekit.ad); sizes are (n, k)."""
    rng = np.random.default_rng(seed)
    cases = [(*_random_model(rng, n, k), rng.standard_normal(n), rng.standard_normal(n)) for n, k in sizes]
    expected = reference_many(
        "coursekit.curvature.hvp",
        [((functools.partial(quadratic_tanh, A=A, B=B, c=c), x, v), {}) for A, B, c, x, v in cases])
    for (A, B, c, x, v), want in zip(cases, expected):
        got = _as_result("model_hvp", _call(model_hvp, A, B, c, x, v), x.shape)
        _assert_close("model_hvp", got, np.asarray(want), _hvp_scale(A, B, c, v), f"n = {len(x)}, k = {len(c)}")


def check_hvp_properties(model_hvp, n, k, seed):
    """Properties of a Hessian-vector product, with no reference implementation:
    symmetry u^T (H v) = v^T (H u), linearity H(a u + b v) = a Hu + b Hv, and H v = A v
    when c = 0 (the quadratic alone)."""
    rng = np.random.default_rng(seed)
    A, B, c = _random_model(rng, n, k)
    x, u, v = (rng.standard_normal(n) for _ in range(3))
    a, b = rng.uniform(-2.0, 2.0, 2)

    def hvp(w, c=c):
        return _as_result("model_hvp", _call(model_hvp, A, B, c, x, w), (n,))

    Hu, Hv = hvp(u), hvp(v)
    scale = _hvp_scale(A, B, c, np.abs(u) + np.abs(v)) * (np.sum(np.abs(u)) + np.sum(np.abs(v)))
    _assert_close("model_hvp (symmetry u.Hv = v.Hu)", np.array(u @ Hv), np.array(v @ Hu), scale, f"n = {n}")
    _assert_close("model_hvp (linearity in v)", hvp(a * u + b * v), a * Hu + b * Hv,
                  4 * _hvp_scale(A, B, c, np.abs(u) + np.abs(v)), f"n = {n}")
    _assert_close("model_hvp (c = 0 leaves A v)", hvp(v, c=np.zeros(k)), A @ v,
                  n * np.max(np.abs(A) @ np.abs(v)), f"n = {n}")


def check_model_hessian_trace(model_hessian_trace, sizes, seed):
    """``model_hessian_trace(A, B, c, x)``: the exact trace of the Hessian of f, against the
    sum of e_i^T H e_i from ``coursekit.curvature.hvp`` (out of process)."""
    rng = np.random.default_rng(seed)
    cases = [(*_random_model(rng, n, k), rng.standard_normal(n)) for n, k in sizes]
    expected = reference_many(
        "coursekit.grading.testfunctions.reference_hessian_trace",
        [((functools.partial(quadratic_tanh, A=A, B=B, c=c), x), {}) for A, B, c, x in cases])
    for (A, B, c, x), want in zip(cases, expected):
        got = _as_result("model_hessian_trace", _call(model_hessian_trace, A, B, c, x), ())
        scale = len(x) * (np.sum(np.abs(np.diag(A))) + np.sum(np.abs(c) * np.sum(B**2, axis=1)))
        _assert_close("model_hessian_trace", got, np.asarray(want), scale, f"n = {len(x)}, k = {len(c)}")


def _trace_result(result, name="hutchinson_trace"):
    if not (isinstance(result, tuple) and len(result) == 2):
        raise AssertionError(f"{name} must return a pair (estimate, standard_error), got {type(result).__name__}")
    return (_as_result(f"{name}: the estimate", result[0], ()), _as_result(f"{name}: the standard error", result[1], ()))


def check_hutchinson_trace(hutchinson_trace, cases, seed):
    """``hutchinson_trace(matvec, probes)`` on the probes that ``coursekit.curvature.hutchinson``
    drew (recorded out of process), against its estimate and standard error. ``cases`` are
    (dim, num_probes, distribution); the matrices are random and not symmetric."""
    rng = np.random.default_rng(seed)
    matrices = [rng.standard_normal((dim, dim)) for dim, _, _ in cases]
    seeds = [int(s) for s in rng.integers(2**31, size=len(cases))]
    expected = reference_many(
        "coursekit.grading.testfunctions.reference_hutchinson",
        [((A, num, s, distribution), {}) for A, (_, num, distribution), s in zip(matrices, cases, seeds)])
    for A, (dim, num, distribution), ((estimate, standard_error, _), probes) in zip(matrices, cases, expected):
        got = _trace_result(_call(hutchinson_trace, lambda z, A=A: A @ z, probes))
        where = f"a {dim} x {dim} matrix and {num} {distribution} probes"
        # every value z^T A z sums dim^2 products of size |z_i A_ij z_j|
        scale = dim * np.max(np.einsum("ki,ij,kj->k", np.abs(probes), np.abs(A), np.abs(probes)))
        _assert_close("hutchinson_trace: the estimate", got[0], np.asarray(estimate), scale, where)
        _assert_close("hutchinson_trace: the standard error", got[1], np.asarray(standard_error), scale, where)


def check_hutchinson_exact_diagonal(hutchinson_trace, dim, seed, num=8):
    """No reference implementation: for a diagonal matrix and Rademacher probes (z_i^2 = 1)
    every value z^T A z equals tr(A), so the estimate is exact and its standard error 0."""
    rng = np.random.default_rng(seed)
    diagonal = rng.standard_normal(dim)
    probes = rng.integers(0, 2, size=(num, dim)) * 2.0 - 1.0
    estimate, standard_error = _trace_result(_call(hutchinson_trace, lambda z: diagonal * z, probes))
    scale = dim * np.sum(np.abs(diagonal))
    where = f"a diagonal {dim} x {dim} matrix and {num} Rademacher probes"
    _assert_close("hutchinson_trace: the estimate", estimate, np.sum(diagonal), scale, where)
    _assert_close("hutchinson_trace: the standard error", standard_error, 0.0, scale, where)


def check_hutchinson_calibrated(hutchinson_trace, dim, seed, batches=400, num=30):
    """No reference implementation: unbiased, with an honest standard error, for Gaussian probes.

    Over ``batches`` independent estimates of ``num`` probes each on a random symmetric A,
    the mean is within 4 of its standard errors of tr(A) (Var z^T A z = 2 ||A||_F^2), and
    the mean squared z-score ((estimate - tr A) / standard error)^2 is between 0.7 and 1.6.
    For num = 30, dim = 10 and 400 batches it is 1.08 +- 0.08 (0.90 to 1.38 in 200
    simulated runs); a standard error off by a factor sqrt(num) puts it near 0.04 or 30.
    The probes come from the seed, so a correct answer always gets the same verdict.
    """
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((dim, dim))
    A = (M + M.T) / 2
    trace = np.trace(A)
    estimates, z_scores = [], []
    for _ in range(batches):
        e, s = _trace_result(_call(hutchinson_trace, lambda z: A @ z, rng.standard_normal((num, dim))))
        estimates.append(float(e))
        z_scores.append(float((e - trace) / s) if s > 0 else np.inf)
    spread = np.sqrt(2 * np.sum(A**2) / (num * batches))
    if not abs(np.mean(estimates) - trace) <= 4 * spread:
        raise AssertionError(
            f"hutchinson_trace: the mean of {batches} estimates is {np.mean(estimates):.4f}, but tr(A) = "
            f"{trace:.4f} (an unbiased estimator stays within {4 * spread:.4f})")
    mean_square = float(np.mean(np.square(z_scores)))
    if not 0.7 <= mean_square <= 1.6:
        raise AssertionError(
            f"hutchinson_trace: the standard error is miscalibrated: the mean of ((estimate - tr A) / "
            f"standard_error)^2 over {batches} batches is {mean_square:.3f}, expected about 1")
