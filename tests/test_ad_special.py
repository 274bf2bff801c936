"""coursekit.ad.logsumexp and softmax: stable for large inputs, equal to jax.nn, usable on plain arrays."""

import jax
import numpy as np
import pytest

from coursekit import ad
from tests.ad_helpers import assert_close

pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")


def test_large_inputs_do_not_overflow():
    x = np.array([[1000.0, 1000.0, -1000.0], [1e300, 0.0, -1e300]])
    assert_close(ad.logsumexp(x, axis=1), jax.nn.logsumexp(x, axis=1))
    assert_close(ad.logsumexp(x[0]), 1000 + np.log(2))
    assert_close(ad.softmax(x), jax.nn.softmax(x))
    assert_close(ad.grad(lambda x: ad.logsumexp(x))(x[0]), [0.5, 0.5, 0.0])


def test_minus_infinity_entries():
    x = np.array([-np.inf, 0.0, 1.0])
    assert_close(ad.logsumexp(x), jax.nn.logsumexp(x))
    assert_close(ad.softmax(x), jax.nn.softmax(x))
    with np.errstate(divide="ignore"):
        assert ad.logsumexp(np.full(2, -np.inf)) == -np.inf  # log 0, not nan


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_axes_and_gradient_is_softmax(axis, keepdims):
    x = 30 * np.random.default_rng(0).standard_normal((3, 4))
    assert_close(ad.logsumexp(x, axis=axis, keepdims=keepdims), jax.nn.logsumexp(x, axis=axis, keepdims=keepdims))
    if axis in (0, -1):
        g = ad.grad(lambda x: np.sum(ad.logsumexp(x, axis=axis, keepdims=keepdims)))(x)
        assert_close(g, jax.nn.softmax(x, axis=axis))


def test_plain_arrays_in_plain_arrays_out_and_float32_kept():
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    out = ad.logsumexp(x, axis=1)
    assert type(out) is np.ndarray and out.dtype == np.float32
    assert ad.softmax(x).dtype == np.float32
    assert_close(ad.softmax([1.0, 2.0]), jax.nn.softmax(np.array([1.0, 2.0])))
