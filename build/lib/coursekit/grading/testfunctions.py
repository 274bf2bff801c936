"""Smooth test functions for the exercises, defined at module level so that
``functools.partial`` objects built from them pickle (see ``reference.py``).

Each takes ``x`` of any shape and reads it flattened; the parameters are arrays
of matching size. ``*_gradient`` gives the exact gradient, an oracle independent
of every finite-difference code.
"""

import functools

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
