r"""Curvature without the Hessian: Hessian-vector products and stochastic trace and diagonal estimators.

For :math:`f: \mathbb R^n \to \mathbb R` the Hessian :math:`H = \nabla^2 f(x)` has
:math:`n^2` entries, but one product :math:`Hv` costs about as much as one gradient
(Pearlmutter 1994). It is the derivative of the gradient along :math:`v`:

.. math::

    H(x)\,v = \frac{d}{dt}\, \nabla f(x + t v)\Big|_{t=0},

which forward mode computes by pushing the tangent :math:`v` through the program
that computes :math:`\nabla f` (forward-over-reverse).

Everything else here uses only a ``matvec`` :math:`v \mapsto Av`:

- Hutchinson's estimator (Girard 1989; Hutchinson 1990): for a random probe
  :math:`z` with :math:`\mathbb E[z z^\top] = I`, :math:`\mathbb E[z^\top A z] =
  \operatorname{tr}(A)`, so :math:`\operatorname{tr}(A) \approx \frac1m \sum_k z_k^\top A z_k`;
- Hutch++ (Meyer, Musco, Musco & Woodruff 2021): the top of the spectrum is
  taken exactly from a sketch :math:`Q` and Hutchinson is applied only to the
  deflated rest, so its error decays like :math:`1/m` instead of
  :math:`1/\sqrt m` for positive semidefinite :math:`A`;
- the diagonal estimator of Bekas, Kokiopoulou & Saad (2007):
  :math:`\operatorname{diag}(A) \approx \sum_k z_k \odot A z_k \,/\, \sum_k z_k \odot z_k`.

Every ``matvec`` takes a vector of shape ``(dim,)`` and must return a finite real
vector of shape ``(dim,)``; anything else raises an error naming the problem.
Randomness comes only from ``seed``, an int or a ``np.random.Generator``.

References: Pearlmutter (1994), "Fast exact multiplication by the Hessian";
Girard (1989), "A fast 'Monte-Carlo cross-validation' procedure for large least
squares problems with noisy data"; Hutchinson (1990), "A stochastic estimator
of the trace of the influence matrix for Laplacian smoothing splines"; Meyer,
Musco, Musco & Woodruff (2021), "Hutch++: Optimal stochastic trace
estimation"; Bekas, Kokiopoulou & Saad (2007), "An estimator for the diagonal
of a matrix".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from coursekit import fd
from coursekit._checks import check_choice, check_count

DISTRIBUTIONS = ("rademacher", "gaussian")
BACKENDS = ("coursekit", "jax")

Seed = int | np.random.Generator
Matvec = Callable[[np.ndarray], npt.ArrayLike]


class TraceEstimate(NamedTuple):
    """A stochastic trace estimate, its standard error and the number of matrix-vector products it used."""

    estimate: float
    standard_error: float
    num_matvecs: int


class DiagonalEstimate(NamedTuple):
    """A stochastic estimate of ``diag(A)`` and the standard error of each entry."""

    diagonal: np.ndarray
    standard_error: np.ndarray


# --- Hessian-vector products ----------------------------------------------------


def hvp(
    f: Callable[[np.ndarray], float], x: npt.ArrayLike, v: npt.ArrayLike, backend: str = "coursekit"
) -> np.ndarray:
    r"""The Hessian-vector product :math:`\nabla^2 f(x)\, v`, without forming the Hessian.

    Forward-over-reverse: the JVP of :math:`x \mapsto \nabla f(x)` along :math:`v`,

    .. math::

        \nabla^2 f(x)\, v = \frac{d}{dt}\, \nabla f(x + t v)\Big|_{t=0}.

    Reverse mode computes :math:`\nabla f` at a small constant multiple of the
    cost of :math:`f`; forward mode through that computation multiplies the
    cost by another small constant. So :math:`Hv` costs a few gradients,
    independently of :math:`n`, whereas the full Hessian needs :math:`n` such
    products (Pearlmutter 1994, "Fast exact multiplication by the Hessian").
    Reverse-over-reverse, :math:`\nabla_x (\nabla f(x)^\top v)`, gives the same
    vector but keeps a second tape.

    ``backend="coursekit"`` uses :func:`coursekit.ad.hvp` (``f`` written for
    coursekit.ad); ``backend="jax"`` uses ``jax.jvp(jax.grad(f), (x,), (v,))``
    in float64 (``f`` written with ``jax.numpy``). ``x`` and ``v`` are finite
    real arrays of the same shape; the result has that shape.
    """
    x = fd._real_point(x)
    v = fd._real_point(v, name="direction v")
    fd._check_same_shape("direction v", v.shape, "x", x.shape)
    check_choice("backend", backend, BACKENDS)
    if backend == "jax":
        product = _jax_hvp(f, x.astype(np.float64), v.astype(np.float64))
    else:
        from coursekit import ad

        product = ad.hvp(f, x, v)
    product = np.asarray(product, dtype=np.float64)
    if product.shape != x.shape:
        raise ValueError(f"the {backend} Hessian-vector product has shape {product.shape}, but x has {x.shape}")
    if not np.all(np.isfinite(product)):
        raise ValueError(f"the Hessian-vector product at x = {fd._describe(x)} is not finite: {fd._describe(product)}")
    return product


def hessian_matvec(f: Callable[[np.ndarray], float], x: npt.ArrayLike, backend: str = "coursekit") -> Matvec:
    r"""The closure :math:`v \mapsto \nabla^2 f(x)\, v` (see :func:`hvp`), a ``matvec`` for the estimators."""
    x = fd._real_point(x)
    check_choice("backend", backend, BACKENDS)
    return lambda v: hvp(f, x, v, backend=backend)


def matvec_from_matrix(A: npt.ArrayLike) -> Matvec:
    """The closure ``v -> A @ v`` for a finite real square matrix ``A``: an explicit matrix as a ``matvec``."""
    A = _square_matrix(A)
    return lambda v: A @ v


def _jax_hvp(f, x, v):
    import jax

    with jax.enable_x64(True):
        _, tangent = jax.jvp(jax.grad(f), (x,), (v,))
        return np.asarray(tangent)


# --- trace estimators -----------------------------------------------------------


def hutchinson(
    matvec: Matvec, dim: int, num_samples: int, *, seed: Seed, distribution: str = "rademacher"
) -> TraceEstimate:
    r"""Hutchinson's trace estimator :math:`\frac1m \sum_{k=1}^m z_k^\top A z_k`.

    The probes :math:`z_k` have i.i.d. entries, Rademacher (:math:`\pm 1` with
    probability 1/2; Hutchinson 1990) or standard Gaussian (Girard 1989).
    Either way :math:`\mathbb E[z z^\top] = I`, hence :math:`\mathbb E[z^\top A z] =
    \sum_{ij} A_{ij} \mathbb E[z_i z_j] = \operatorname{tr}(A)`: unbiased for any
    square :math:`A`. One probe's variance is :func:`hutchinson_variance`;
    the mean of :math:`m` probes has :math:`1/m` of it.

    ``standard_error`` is the sample standard deviation of the :math:`m` values
    :math:`z_k^\top A z_k` over :math:`\sqrt m` (``nan`` for :math:`m = 1`).
    Uses exactly ``num_samples`` matvecs.
    """
    check_count("dim", dim, minimum=1)
    check_count("num_samples", num_samples, minimum=1)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    apply, _ = _counted(matvec, dim)
    probes = _probes(_generator(seed), num_samples, dim, distribution)
    values = np.array([z @ apply(z) for z in probes])
    return TraceEstimate(float(values.mean()), _standard_error(values), num_samples)


def hutchpp(
    matvec: Matvec, dim: int, num_matvecs: int, *, seed: Seed, distribution: str = "rademacher"
) -> TraceEstimate:
    r"""Hutch++ (Meyer, Musco, Musco & Woodruff 2021, Algorithm 1): exact top part plus Hutchinson on the rest.

    With a budget of :math:`m` matvecs (Algorithm 1 splits it in three equal parts):

    1. sketch: :math:`S` with :math:`k = \lfloor m/3 \rfloor` random columns, :math:`Y = AS`
       (:math:`k` matvecs), :math:`Q` an orthonormal basis of the range of :math:`Y`;
    2. the trace on that range exactly: :math:`\operatorname{tr}(Q^\top A Q)`
       (:math:`q = \operatorname{rank} Y \le k` matvecs, one per column of :math:`Q`);
    3. Hutchinson on the deflated matrix with the :math:`g = m - k - q` remaining
       matvecs: :math:`\frac1g \operatorname{tr}(G^\top (I - QQ^\top) A (I - QQ^\top) G)`.

    The estimate is the sum of 2 and 3. Since :math:`\operatorname{tr}(QQ^\top A QQ^\top) +
    \operatorname{tr}((I - QQ^\top) A (I - QQ^\top)) = \operatorname{tr}(A)` and :math:`G`
    is independent of :math:`Q`, it is unbiased for any square :math:`A`. For
    :math:`m` divisible by 3 and a full-rank sketch this is the paper's
    :math:`\operatorname{tr}(Q^\top A Q) + \frac3m \operatorname{tr}(G^\top (I - QQ^\top) A (I - QQ^\top) G)`;
    otherwise the remainder of :math:`m`, and any columns of :math:`Q` a rank-deficient
    sketch does not need, go to :math:`G`, so that exactly ``num_matvecs`` are used.

    If :math:`A` has rank :math:`r \le k` (so :math:`m \ge 3r`), the sketch captures
    its whole range with probability one for Gaussian probes (and almost
    always for Rademacher ones), the deflated matrix is zero, and the estimate
    is exact up to round-off. For positive semidefinite :math:`A` the error is
    :math:`O(\operatorname{tr}(A)/m)` instead of Hutchinson's :math:`O(\operatorname{tr}(A)/\sqrt m)`.

    ``standard_error`` is that of the Hutchinson part (step 3; ``nan`` if
    :math:`g = 1`). Needs ``num_matvecs >= 3``.
    """
    check_count("dim", dim, minimum=1)
    check_count("num_matvecs", num_matvecs, minimum=3)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    apply, matvecs_used = _counted(matvec, dim)
    rng = _generator(seed)
    sketch = _probes(rng, num_matvecs // 3, dim, distribution)
    basis = _orthonormal_basis(np.column_stack([apply(s) for s in sketch]))
    top = sum(q @ apply(q) for q in basis.T)
    remaining = num_matvecs - matvecs_used()
    probes = _probes(rng, remaining, dim, distribution)
    deflated = probes - (probes @ basis) @ basis.T
    values = np.array([r @ apply(r) for r in deflated])
    assert matvecs_used() == num_matvecs
    return TraceEstimate(float(top + values.mean()), _standard_error(values), num_matvecs)


def hutchinson_variance(A: npt.ArrayLike, distribution: str = "rademacher") -> float:
    r"""The variance of one Hutchinson probe, :math:`\operatorname{Var}[z^\top A z]`, in closed form.

    Only the symmetric part :math:`S = (A + A^\top)/2` matters, since
    :math:`z^\top A z = z^\top S z`; for symmetric :math:`A`, :math:`S = A`:

    - Gaussian: :math:`2\|S\|_F^2` (for symmetric :math:`A`, :math:`2\|A\|_F^2 = 2\sum_i \lambda_i^2`);
    - Rademacher: :math:`2(\|S\|_F^2 - \sum_i A_{ii}^2) = 2\sum_{i \ne j} S_{ij}^2`, since
      :math:`z^\top S z = \operatorname{tr}(A) + 2\sum_{i<j} S_{ij} z_i z_j` and the
      products :math:`z_i z_j` are uncorrelated signs. The diagonal costs nothing.

    For a non-symmetric :math:`A`, :math:`\|S\|_F^2 = (\|A\|_F^2 + \operatorname{tr}(A^2))/2`,
    not :math:`\|A\|_F^2`. Reference: Avron & Toledo (2011), "Randomized
    algorithms for estimating the trace of an implicit symmetric positive
    semi-definite matrix".
    """
    A = _square_matrix(A)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    symmetric = (A + A.T) / 2
    frobenius = float(np.sum(symmetric**2))
    if distribution == "gaussian":
        return 2 * frobenius
    return 2 * (frobenius - float(np.sum(np.diag(A) ** 2)))


# --- diagonal estimator -----------------------------------------------------------


def diagonal_estimate(
    matvec: Matvec, dim: int, num_samples: int, *, seed: Seed, distribution: str = "rademacher"
) -> DiagonalEstimate:
    r"""Estimate :math:`\operatorname{diag}(A)` as :math:`\sum_k z_k \odot A z_k \,\oslash\, \sum_k z_k \odot z_k`.

    Bekas, Kokiopoulou & Saad (2007), "An estimator for the diagonal of a
    matrix". Entry :math:`i` is :math:`A_{ii} + \sum_{j \ne i} A_{ij} \sum_k z_{ki} z_{kj} / \sum_k z_{ki}^2`;
    the second term has mean zero (it is odd in the independent :math:`z_{\cdot j}`),
    so the estimator is unbiased for Rademacher and Gaussian probes. With
    Rademacher probes the denominator is just :math:`m`.

    ``standard_error`` per entry is the ratio estimator's (linearisation)
    standard error :math:`\sqrt{\sum_k (y_k - \hat d\, x_k)^2 / (m(m-1))} \,/\, \bar x`
    with :math:`y_k = z_{ki}(Az_k)_i`, :math:`x_k = z_{ki}^2`; for Rademacher probes it is
    exactly the sample standard deviation of :math:`y_k` over :math:`\sqrt m`
    (``nan`` for :math:`m = 1`). Uses ``num_samples`` matvecs.
    """
    check_count("dim", dim, minimum=1)
    check_count("num_samples", num_samples, minimum=1)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    apply, _ = _counted(matvec, dim)
    probes = _probes(_generator(seed), num_samples, dim, distribution)
    products = np.array([z * apply(z) for z in probes])
    squares = probes**2
    diagonal = products.sum(axis=0) / squares.sum(axis=0)
    if num_samples == 1:
        return DiagonalEstimate(diagonal, np.full(dim, np.nan))
    residuals = products - diagonal * squares
    spread = np.sqrt(np.sum(residuals**2, axis=0) / (num_samples * (num_samples - 1)))
    return DiagonalEstimate(diagonal, spread / squares.mean(axis=0))


# --- helpers ----------------------------------------------------------------------


def _probes(rng, num, dim, distribution):
    """``num`` probe vectors as rows, i.i.d. Rademacher or standard Gaussian entries."""
    if distribution == "gaussian":
        return rng.standard_normal((num, dim))
    return rng.integers(0, 2, size=(num, dim)) * 2.0 - 1.0


def _orthonormal_basis(Y):
    """Orthonormal columns spanning range(Y), dropping directions below round-off (an SVD with a rank cut)."""
    if Y.shape[1] == 0:
        return Y
    U, singular_values, _ = np.linalg.svd(Y, full_matrices=False)
    cutoff = max(Y.shape) * np.finfo(Y.dtype).eps * singular_values[0]
    return U[:, singular_values > cutoff]


def _standard_error(values):
    if len(values) < 2:
        return float("nan")
    return float(values.std(ddof=1) / np.sqrt(len(values)))


def _counted(matvec, dim):
    """``matvec`` checked (shape ``(dim,)``, finite, real) and counted; returns it and a reader of the count."""
    if not callable(matvec):
        raise TypeError(f"matvec must be a callable v -> A v, got {type(matvec).__name__}")
    calls = 0

    def apply(v):
        nonlocal calls
        calls += 1
        product = np.asarray(matvec(v))
        if product.shape != (dim,):
            raise ValueError(f"matvec must return a vector of shape ({dim},), got shape {product.shape}")
        if product.dtype.kind not in "iuf":
            raise TypeError(f"matvec must return real numbers, got dtype {product.dtype}")
        if not np.all(np.isfinite(product)):
            raise ValueError(f"matvec returned a non-finite vector {fd._describe(product)}")
        return product.astype(np.float64)

    return apply, lambda: calls


def _square_matrix(A):
    A = fd._real_point(A, name="A")
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"A must be a non-empty square matrix, got shape {A.shape}")
    return A


def _generator(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int or a np.random.Generator, got {seed!r}")



