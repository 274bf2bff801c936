r"""Multidimensional scaling: recover points from their squared pairwise distances.

The test problem of the course: given :math:`D \in \mathbb R^{N \times N}`, find
:math:`W \in \mathbb R^{N \times d}` (row :math:`W_i` is point :math:`i`) minimising

.. math::

    L(W) = \sum_{i,j} \left(\|W_i - W_j\|^2 - D_{ij}\right)^2 .

:math:`D_{ij}` are **squared** distances: the loss compares squared distances
(the S-stress of Takane, Young & de Leeuw 1977). The source slides call
:math:`D` "the distance matrix"; feeding plain distances fits the wrong
configuration. The minimiser is defined only up to a rotation, reflection and
translation, which is why :func:`procrustes_align` exists.

References: Borg & Groenen, *Modern Multidimensional Scaling*, 2nd ed.
(2005), chapters 11-12; Torgerson (1952).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def squared_distances(W: npt.ArrayLike) -> np.ndarray:
    r""":math:`S_{ij} = \|W_i - W_j\|^2` for the rows of ``W`` (shape ``(N, d)``), an ``(N, N)`` matrix.

    Computed from the differences rather than as :math:`\|W_i\|^2 + \|W_j\|^2 -
    2 W_i^\top W_j`, which cancels catastrophically for close points and can
    come out negative.
    """
    W = _points(W)
    differences = W[:, np.newaxis, :] - W[np.newaxis, :, :]
    return np.sum(differences**2, axis=-1)


def loss(W: npt.ArrayLike, D: npt.ArrayLike) -> float:
    r""":math:`L(W) = \sum_{i,j} (\|W_i - W_j\|^2 - D_{ij})^2` with :math:`D` the SQUARED distances."""
    W, D = _problem(W, D)
    return float(np.sum((squared_distances(W) - D) ** 2))


def gradient(W: npt.ArrayLike, D: npt.ArrayLike) -> np.ndarray:
    r"""Closed-form :math:`\nabla L(W)`, shape ``(N, d)``.

    With residuals :math:`r_{ij} = \|W_i - W_j\|^2 - D_{ij}` and
    :math:`\partial \|W_i - W_j\|^2 / \partial W_k = 2 (W_i - W_j)(\delta_{ik} - \delta_{jk})`,

    .. math::

        \nabla_{W_k} L = 4 \sum_j (r_{kj} + r_{jk}) (W_k - W_j),

    which is :math:`8 \sum_j r_{kj} (W_k - W_j)` for symmetric :math:`D`. In
    matrix form, with :math:`C = r + r^\top`:
    :math:`\nabla L = 4 (\operatorname{diag}(C \mathbf 1) W - C W)`.
    """
    W, D = _problem(W, D)
    residuals = squared_distances(W) - D
    weights = residuals + residuals.T
    return 4 * (weights.sum(axis=1)[:, np.newaxis] * W - weights @ W)


def random_problem(
    num_points: int, dim: int = 2, seed: int | np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Points :math:`W^{true} \sim \mathcal N(0, I)` of shape ``(num_points, dim)`` and their squared distances :math:`D`.

    Returns ``(W_true, D)``; :math:`L(W^{true}) = 0`.
    """
    for name, value in (("num_points", num_points), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    W_true = np.random.default_rng(seed).standard_normal((num_points, dim))
    return W_true, squared_distances(W_true)


def classical_mds(D: npt.ArrayLike, dim: int) -> np.ndarray:
    r"""Classical (Torgerson) scaling: a centred ``(N, dim)`` configuration from squared distances.

    Double centring :math:`B = -\frac12 J D J` with :math:`J = I - \frac1N
    \mathbf 1 \mathbf 1^\top` recovers the Gram matrix :math:`B = X X^\top` of
    the centred points when :math:`D` holds Euclidean squared distances. With
    the top ``dim`` eigenpairs :math:`B v_k = \lambda_k v_k`, the points are
    :math:`W = [\sqrt{\lambda_1} v_1, \dots, \sqrt{\lambda_{dim}} v_{dim}]`
    (negative eigenvalues, from non-Euclidean :math:`D`, are clipped to 0). Exact,
    hence zero :func:`loss`, for squared distances of points in
    :math:`\mathbb R^{dim}`.

    References: Torgerson (1952); Gower (1966); Borg & Groenen (2005), ch. 12.
    """
    D = _squared_distance_matrix(D)
    num_points = D.shape[0]
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= num_points:
        raise ValueError(f"dim must be an integer in [1, N = {num_points}], got {dim!r}")
    if not np.allclose(D, D.T, rtol=1e-10, atol=1e-12 * np.max(np.abs(D), initial=0.0)):
        raise ValueError("classical_mds needs a symmetric D (squared distances); got a non-symmetric matrix")
    centring = np.eye(num_points) - 1.0 / num_points
    gram = -0.5 * centring @ D @ centring
    eigenvalues, eigenvectors = np.linalg.eigh((gram + gram.T) / 2)
    top = np.argsort(eigenvalues)[::-1][:dim]
    return eigenvectors[:, top] * np.sqrt(np.clip(eigenvalues[top], 0.0, None))


def procrustes_align(W: npt.ArrayLike, W_reference: npt.ArrayLike) -> np.ndarray:
    r"""``W`` moved by the rotation/reflection and translation that best matches ``W_reference``.

    Solves :math:`\min_{Q^\top Q = I,\, t} \|(W - \bar W) Q + t - W^{ref}\|_F`:
    with the SVD :math:`(W - \bar W)^\top (W^{ref} - \bar W^{ref}) = U \Sigma V^\top`,
    :math:`Q = U V^\top` and :math:`t = \bar W^{ref}` (bars are row means). No
    scaling, so distances are preserved. Use it to plot a recovered
    configuration on top of the true one.

    Reference: Schönemann (1966), "A generalized solution of the orthogonal
    Procrustes problem"; Borg & Groenen (2005), ch. 20.
    """
    W, W_reference = _points(W), _points(W_reference, name="W_reference")
    if W.shape != W_reference.shape:
        raise ValueError(f"W has shape {W.shape}, but W_reference has shape {W_reference.shape}; they must match")
    centred, reference_mean = W - W.mean(axis=0), W_reference.mean(axis=0)
    u, _, vt = np.linalg.svd(centred.T @ (W_reference - reference_mean))
    return centred @ (u @ vt) + reference_mean


def _points(W, name="W"):
    W = np.asarray(W)
    if W.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {W.dtype}")
    if W.ndim != 2 or W.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, d) with N >= 1 points as rows, got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"{name} must be finite")
    return W.astype(np.float64)


def _squared_distance_matrix(D):
    D = np.asarray(D)
    if D.dtype.kind not in "iuf":
        raise TypeError(f"D must hold real numbers, got dtype {D.dtype}")
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square (N, N) matrix of squared distances, got shape {D.shape}")
    if not np.all(np.isfinite(D)):
        raise ValueError("D must be finite")
    return D.astype(np.float64)


def _problem(W, D):
    W, D = _points(W), _squared_distance_matrix(D)
    if D.shape[0] != W.shape[0]:
        raise ValueError(f"D has shape {D.shape}, but W has {W.shape[0]} points; D must be ({W.shape[0]}, {W.shape[0]})")
    return W, D
