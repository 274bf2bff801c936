"""Test functions for the exercises, defined at module level so that
``functools.partial`` objects built from them pickle (see ``reference.py``).

- Exercise 1: smooth functions of ``x`` of any shape (read flattened; the
  parameters are arrays of matching size). ``*_gradient`` gives the exact
  gradient, an oracle independent of every finite-difference code.
- Exercises 2 and 3: random straight-line programs on scalars, which run on a
  student's ``Dual`` or ``Value`` objects and on coursekit.ad's traced arrays
  alike, with a first-order bound on their rounding errors (the tolerances).
- Exercises 3 and 4: the layers and loss of a small network, and a quadratic
  plus a tanh layer whose Hessian has a closed form.
- The ``reference_*`` helpers run in the reference process only: they call
  coursekit.ad or coursekit.curvature and return plain arrays.
"""

import functools
import math

import numpy as np


def quadratic(x, A, b):
    """f(x) = 1/2 x^T A x + b^T x, with A symmetric."""
    v = np.ravel(x)
    return 0.5 * v @ A @ v + b @ v


def quadratic_gradient(x, A, b):
    return np.reshape(A @ np.ravel(x) + b, np.shape(x))


def sine_sum(x, a, c):
    """f(x) = sum_i c_i sin(a_i x_i) + (sum_i x_i)^2 / 2."""
    v = np.ravel(x)
    return np.sum(c * np.sin(a * v)) + 0.5 * np.sum(v) ** 2


def sine_sum_gradient(x, a, c):
    v = np.ravel(x)
    return np.reshape(a * c * np.cos(a * v) + np.sum(v), np.shape(x))


def log_sum_exp(x, w):
    """f(x) = log sum_i exp(w_i x_i)."""
    z = w * np.ravel(x)
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def log_sum_exp_gradient(x, w):
    z = w * np.ravel(x)
    p = np.exp(z - np.max(z))
    return np.reshape(w * p / np.sum(p), np.shape(x))


def random_function(rng, size):
    """A random smooth function of ``size`` variables and its exact gradient."""
    kind = rng.integers(3)
    if kind == 0:
        M = rng.standard_normal((size, size))
        params = dict(A=(M + M.T) / 2, b=rng.standard_normal(size))
        return functools.partial(quadratic, **params), functools.partial(quadratic_gradient, **params)
    if kind == 1:
        params = dict(a=rng.uniform(0.5, 2.0, size), c=rng.standard_normal(size))
        return functools.partial(sine_sum, **params), functools.partial(sine_sum_gradient, **params)
    params = dict(w=rng.uniform(-2.0, 2.0, size))
    return functools.partial(log_sum_exp, **params), functools.partial(log_sum_exp_gradient, **params)


# --- random programs for the automatic-differentiation exercises --------------------------
#
# A program is a straight-line computation on scalars, stored as plain tuples so it
# pickles: ``(num_inputs, steps, outputs)``. Step k is ``(op, a, b)`` and defines node
# k; an operand is ``("x", i)`` (input i), ``("n", j)`` (node j < k) or ``("c", value)``
# (a Python float). Unary steps have ``b = None``; ``pow`` takes a constant exponent.
# ``run_program`` evaluates it with Python's operators and the functions in ``ops``, so
# the same program runs on floats, on a student's Dual or Value objects, and on the
# traced arrays of coursekit.ad (with ``NUMPY_OPS``).

ARITHMETIC = ("add", "sub", "mul", "div", "pow", "neg")
FORWARD_OPS = ARITHMETIC + ("sin", "cos", "exp", "log")
REVERSE_OPS = ("add", "sub", "mul", "pow", "neg", "tanh", "exp", "relu")
UNARY = ("neg", "sin", "cos", "exp", "log", "tanh", "relu")


def relu(x):
    """max(x, 0), elementwise."""
    return np.maximum(x, 0.0)


NUMPY_OPS = {"sin": np.sin, "cos": np.cos, "exp": np.exp, "log": np.log, "tanh": np.tanh, "relu": relu}


def run_program(program, inputs, ops):
    """The outputs (a list) of ``program`` on ``inputs`` (a sequence of scalars)."""
    _, steps, outputs = program
    nodes = []

    def operand(ref):
        kind, value = ref
        return inputs[value] if kind == "x" else nodes[value] if kind == "n" else value

    for op, a, b in steps:
        a = operand(a)
        if op in UNARY:
            nodes.append(-a if op == "neg" else ops[op](a))
            continue
        b = operand(b)
        nodes.append(a + b if op == "add" else a - b if op == "sub" else a * b if op == "mul"
                     else a / b if op == "div" else a**b)
    return [nodes[k] for k in outputs]


def program_output(x, program, output=0):
    """Output ``output`` of ``program`` on the entries of the 1-D array ``x``, with NumPy's functions.

    The function of one array that coursekit.ad differentiates in the reference process.
    """
    return run_program(program, [x[i] for i in range(program[0])], NUMPY_OPS)[output]


# first and second derivatives of the unary functions, for the error bounds below
_DERIVATIVES = {
    "neg": (lambda a: -1.0, lambda a: 0.0),
    "sin": (math.cos, lambda a: -math.sin(a)),
    "cos": (lambda a: -math.sin(a), lambda a: -math.cos(a)),
    "exp": (math.exp, math.exp),
    "log": (lambda a: 1.0 / a, lambda a: -1.0 / a**2),
    "tanh": (lambda a: 1.0 - math.tanh(a) ** 2, lambda a: -2.0 * math.tanh(a) * (1.0 - math.tanh(a) ** 2)),
    "relu": (lambda a: float(a > 0), lambda a: 0.0),
}
_FLOAT_OPS = {"sin": math.sin, "cos": math.cos, "exp": math.exp, "log": math.log, "tanh": math.tanh,
              "relu": lambda a: max(a, 0.0)}


class _Bounded:
    """A value and a tangent with first-order bounds on their rounding errors, in units of eps.

    ``value_bound`` and ``tangent_bound`` bound the absolute error that evaluating the
    program in floating point, in any order of the same operations, leaves in the
    value and in the tangent: each operation adds one rounding of its result and
    propagates its inputs' errors through its partial derivatives (for the tangent
    also through the second derivative, which the value's error perturbs).
    """

    def __init__(self, value, tangent, value_bound, tangent_bound):
        self.value, self.tangent = value, tangent
        self.value_bound, self.tangent_bound = value_bound, tangent_bound


def _lift(a):
    return a if isinstance(a, _Bounded) else _Bounded(a, 0.0, 0.0, 0.0)


def _bounded_binary(op, a, b):
    a, b = _lift(a), _lift(b)
    if op in ("add", "sub"):
        sign = 1.0 if op == "add" else -1.0
        value, tangent = a.value + sign * b.value, a.tangent + sign * b.tangent
        return _Bounded(value, tangent, a.value_bound + b.value_bound + abs(value),
                        a.tangent_bound + b.tangent_bound + abs(tangent))
    if op == "mul":
        value = a.value * b.value
        tangent = a.tangent * b.value + a.value * b.tangent
        vb = abs(b.value) * a.value_bound + abs(a.value) * b.value_bound + abs(value)
        tb = (abs(b.value) * a.tangent_bound + abs(a.tangent) * b.value_bound + abs(a.value) * b.tangent_bound
              + abs(b.tangent) * a.value_bound + 2 * (abs(a.tangent * b.value) + abs(a.value * b.tangent)))
        return _Bounded(value, tangent, vb, tb)
    if op == "div":
        inverse = _bounded_unary_fn(b, 1.0 / b.value, -1.0 / b.value**2, 2.0 / b.value**3)
        return _bounded_binary("mul", a, inverse)
    # pow with a constant exponent p
    p, x = b.value, a.value
    return _bounded_unary_fn(a, x**p, p * x ** (p - 1), p * (p - 1) * x ** (p - 2), extra=abs(p * math.log(x))
                             if x > 0 else 0.0)


def _bounded_unary_fn(a, value, first, second, extra=0.0, first_error=None):
    """``first_error``: the absolute rounding error of computing the derivative itself,
    in eps (default: a few ulps of it; 1 - tanh^2 near saturation loses more)."""
    tangent = first * a.tangent
    first_error = (2.0 + extra) * abs(first) if first_error is None else first_error
    vb = abs(first) * a.value_bound + (1.0 + extra) * abs(value)
    tb = (abs(first) * a.tangent_bound + abs(second * a.tangent) * a.value_bound
          + first_error * abs(a.tangent) + abs(tangent))
    return _Bounded(value, tangent, vb, tb)


def _bounded_unary(op, a):
    first, second = _DERIVATIVES[op]
    value = -a.value if op == "neg" else _FLOAT_OPS[op](a.value)
    # 1 - tanh(a)^2 is computed from tanh(a), near 1 when a is large: an absolute error of 3 eps
    first_error = 3.0 if op == "tanh" else None
    return _bounded_unary_fn(a, value, first(a.value), second(a.value), first_error=first_error)


def program_bounds(program, x, v):
    """Value, tangent along ``v`` and their rounding-error bounds (in units of eps) of every output.

    Returns four float arrays of shape ``(num_outputs,)``. Evaluated in float64
    with Python's math; an independent oracle for the value and the tangent, and
    the scale of the tolerances in :mod:`.checks`.
    """
    num_inputs, steps, outputs = program
    inputs = [_Bounded(float(x[i]), float(v[i]), abs(float(x[i])), 0.0) for i in range(num_inputs)]
    nodes = []

    def operand(ref):
        kind, value = ref
        return inputs[value] if kind == "x" else nodes[value] if kind == "n" else _lift(float(value))

    for op, a, b in steps:
        if op in UNARY:
            nodes.append(_bounded_unary(op, operand(a)))
        else:
            nodes.append(_bounded_binary(op, operand(a), operand(b)))
    picked = [nodes[k] for k in outputs]
    return tuple(np.array([getattr(n, name) for n in picked])
                 for name in ("value", "tangent", "value_bound", "tangent_bound"))


def _float_step(op, a, b):
    if op in UNARY:
        return -a if op == "neg" else _FLOAT_OPS[op](a)
    return a + b if op == "add" else a - b if op == "sub" else a * b if op == "mul" else a / b if op == "div" else a**b


def _allowed(op, a, b, value):
    """Keep every operation well inside its domain and every value moderate, at this point."""
    if op == "log" and not a > 0.1:
        return False
    if op == "div" and not abs(b) > 0.2:
        return False
    if op == "pow" and ((b != int(b) and not a > 0.2) or (b < 0 and not abs(a) > 0.2)):
        return False
    if op == "exp" and not a < 3.0:
        return False
    if op == "relu" and not abs(a) > 0.05:
        return False
    return math.isfinite(value) and abs(value) < 100.0


EXPONENTS = (2, 3, -1, 0.5, -2, 1.5)


def _inputs_used(steps, output):
    """The inputs that node ``output`` depends on."""
    used, stack, seen = set(), [output], set()
    while stack:
        k = stack.pop()
        if k not in seen:
            seen.add(k)
            for kind, value in (ref for ref in steps[k][1:] if ref is not None):
                if kind == "x":
                    used.add(value)
                elif kind == "n":
                    stack.append(value)
    return used


def random_program(rng, x, ops, size, num_outputs=1):
    """A random program of about ``size`` steps on the inputs ``x`` (1-D), using the operations ``ops``.

    Every operation is chosen so that it is smooth and well-conditioned at ``x``
    (logarithms of values above 0.1, denominators above 0.2 in size, ...), so a
    program and its point go together. Binary operations take a constant on the
    left or on the right one time in four each (so reflected operators are
    exercised) and, for + and *, the same operand on both sides one time in ten (``x * x``);
    operands are recent nodes half of the time, which makes the graphs deep, and
    nodes are reused (fan-out). Nodes that nothing uses are added into the last one,
    so every step contributes to the first output, which also depends on every input
    (steps are appended until it does); the other outputs depend on at least two.
    """
    x = [float(t) for t in x]
    binary = [op for op in ops if op in ("add", "sub", "mul")] or ["add"]
    for _ in range(100):
        values, steps = [], []

        def value_of(ref):
            kind, value = ref
            return x[value] if kind == "x" else values[value] if kind == "n" else value

        def pick():
            draw = rng.random()
            if values and draw < 0.5:
                return ("n", len(values) - 1 - int(rng.integers(min(3, len(values)))))
            if values and draw > 0.75:
                return ("n", int(rng.integers(len(values))))
            return ("x", int(rng.integers(len(x))))

        def constant():
            return ("c", float(np.round(rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]), 3)))

        def append(op, a, b):
            try:
                value = _float_step(op, value_of(a), None if b is None else value_of(b))
            except (ValueError, ZeroDivisionError, OverflowError):
                return False
            if not _allowed(op, value_of(a), None if b is None else value_of(b), value):
                return False
            steps.append((op, a, b))
            values.append(value)
            return True

        while len(steps) < size:
            op = str(rng.choice(ops))
            a = pick()
            if op in UNARY:
                b = None
            elif op == "pow":
                b = ("c", EXPONENTS[int(rng.integers(len(EXPONENTS)))])
            else:
                b, side = pick(), rng.random()
                if side < 0.25:
                    a = constant()
                elif side < 0.5:
                    b = constant()
                elif side < 0.6 and op in ("add", "mul"):
                    b = a  # the same value on both sides: x * x, x + x

            append(op, a, b)
        # fold every node that nothing uses into the output, so that every step counts
        used = {ref[1] for step in steps for ref in step[1:] if ref is not None and ref[0] == "n"}
        for k in [k for k in range(len(steps) - 1) if k not in used]:
            steps.append(("add", ("n", len(steps) - 1), ("n", k)))
            values.append(values[-1] + values[k])
        for i in sorted(set(range(len(x))) - _inputs_used(steps, len(steps) - 1)):
            for _ in range(100):
                if append(str(rng.choice(binary)), ("n", len(steps) - 1), ("x", i)):
                    break
        last = len(steps) - 1
        if len(_inputs_used(steps, last)) < len(x):
            continue
        others = [k for k in range(last) if len(_inputs_used(steps, k)) >= min(2, len(x))]
        if len(others) < num_outputs - 1:
            continue
        outputs = [last] + [int(k) for k in rng.choice(others, num_outputs - 1, replace=False)]
        return (len(x), tuple(steps), tuple(outputs))
    raise RuntimeError(f"could not draw a program of {size} steps on {len(x)} inputs with {num_outputs} outputs")


# --- functions for the reverse-mode and curvature exercises -------------------------------

def affine(x, W, b):
    """y = x @ W + b: a dense layer, x of shape (batch, n_in), W (n_in, n_out), b (n_out,)."""
    return x @ W + b


def softmax_cross_entropy(logits, labels):
    """The mean over the batch of -log softmax(logits)[label]; labels are class indices."""
    onehot = np.eye(logits.shape[1])[labels]
    shifted = logits - np.max(logits, axis=1, keepdims=True)  # its derivative cancels: sum softmax = 1
    return np.mean(np.log(np.sum(np.exp(shifted), axis=1)) - np.sum(onehot * shifted, axis=1))


def two_layer_loss(W1, b1, W2, b2, x, labels):
    """softmax_cross_entropy(relu(x @ W1 + b1) @ W2 + b2, labels)."""
    return softmax_cross_entropy(affine(relu(affine(x, W1, b1)), W2, b2), labels)


def quadratic_tanh(x, A, B, c):
    """f(x) = 1/2 x^T A x + c^T tanh(B x): a quadratic plus a layer of tanh units."""
    return 0.5 * x @ (A @ x) + c @ np.tanh(B @ x)


# --- run in the reference process only (each calls coursekit.ad or coursekit.curvature) ---

def reference_gradient(f, *args, argnums=0):
    """``coursekit.ad.grad(f, argnums)(*args)``."""
    from coursekit import ad

    return ad.grad(f, argnums=argnums)(*args)


def reference_vjp(f, primals, cotangent):
    """``(f(*primals), vjp_fn(cotangent))`` with ``coursekit.ad.vjp``."""
    from coursekit import ad

    out, vjp_fn = ad.vjp(f, *primals)
    return out, vjp_fn(cotangent)


def reference_hessian_trace(f, x):
    """The exact trace of the Hessian of f at x (1-D): the sum of e_k^T H e_k over coordinates."""
    from coursekit import curvature

    return sum(curvature.hvp(f, x, e)[k] for k, e in enumerate(np.eye(len(x))))


def reference_hutchinson(A, num_samples, seed, distribution):
    """``coursekit.curvature.hutchinson`` on the matrix A, and the probes it drew (rows)."""
    from coursekit import curvature

    probes = []

    def matvec(z):
        probes.append(np.array(z, dtype=np.float64))
        return A @ z

    estimate = curvature.hutchinson(matvec, len(A), num_samples, seed=seed, distribution=distribution)
    return tuple(estimate), np.array(probes)
