r"""Numerically stable log-sum-exp and softmax, written with differentiable NumPy.

.. math::

    \operatorname{logsumexp}(x) = m + \log \sum_i e^{x_i - m}, \qquad
    \operatorname{softmax}(x)_i = e^{x_i - \operatorname{logsumexp}(x)},

with :math:`m = \max_i x_i`, so that no exponential overflows and the largest
term is :math:`e^0 = 1`. The identity holds for *any* constant :math:`m`, so
:math:`m` is taken from the plain values and not differentiated: the
derivatives of every order are those of the exact formula
(:math:`\nabla \operatorname{logsumexp} = \operatorname{softmax}`).

Reference: Blanchard, Higham & Higham, "Accurately computing the log-sum-exp
and softmax functions", IMA J. Numer. Anal. 41 (2021).
"""

from __future__ import annotations

import numpy as np

from coursekit.ad.boxes import Box, raw


def logsumexp(x, axis=None, keepdims=False):
    r""":math:`\log \sum e^{x}` over ``axis`` (``None``: all), computed as :math:`m + \log\sum e^{x - m}`."""
    if not isinstance(x, Box):
        x = np.asarray(x)
    shift = np.max(raw(x), axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, np.zeros((), shift.dtype))  # all -inf: log 0 = -inf, not nan
    total = np.sum(np.exp(x - shift), axis=axis, keepdims=keepdims)
    return np.log(total) + (shift if keepdims else np.squeeze(shift, axis=axis))


def softmax(x, axis=-1):
    r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``axis``, computed as :math:`e^{x - \operatorname{logsumexp}(x)}`."""
    return np.exp(x - logsumexp(x, axis=axis, keepdims=True))
