"""coursekit.ad refuses what it cannot differentiate, loudly and by name; it never drops a derivative."""

import numpy as np
import pytest

from coursekit import ad


def grad_of(f):
    return ad.grad(lambda x: np.sum(f(x)))(np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("name, f", [
    ("numpy.cumsum", np.cumsum),
    ("numpy.sort", np.sort),
    ("numpy.prod", np.prod),
    ("numpy.arctan", np.arctan),
    ("numpy.linalg.det", lambda x: np.linalg.det(x[:, None] * x)),
    ("numpy.einsum", lambda x: np.einsum("i->", x)),
])
def test_unsupported_operation_names_itself(name, f):
    with pytest.raises(ad.UnsupportedOperationError, match=name.replace(".", r"\.") + " is not supported") as info:
        grad_of(f)
    assert isinstance(info.value, TypeError)
    assert "supported: " in str(info.value) and "numpy.sin" in str(info.value)
    with pytest.raises(ad.UnsupportedOperationError, match=name.replace(".", r"\.")):  # forward mode too
        ad.jvp(f, (np.ones(3),), (np.ones(3),))


@pytest.mark.parametrize("name, f", [
    ("numpy.add.reduce", lambda x: np.add.reduce(x)),
    ("numpy.multiply.accumulate", lambda x: np.multiply.accumulate(x)),
    ("numpy.add.outer", lambda x: np.add.outer(x, x)),
])
def test_ufunc_methods_are_refused(name, f):
    with pytest.raises(ad.UnsupportedOperationError, match=name.replace(".", r"\.")):
        grad_of(f)


def test_add_at_on_a_traced_value_is_refused():
    def f(x):
        np.add.at(x, [0, 0], 1.0)
        return x

    with pytest.raises(ad.UnsupportedOperationError, match=r"numpy\.add\.at"):
        grad_of(f)


def test_out_arguments_and_in_place_updates_are_refused():
    def with_out(x):
        out = np.empty(3)
        np.sin(x, out=out)
        return out

    def in_place(x):
        x *= 2
        return x

    def into_array(x):
        y = np.zeros(3)
        y[:] = x
        return y

    def set_item(x):
        x[0] = 1.0
        return x

    with pytest.raises(ad.UnsupportedOperationError, match="out="):
        grad_of(with_out)
    with pytest.raises(ad.UnsupportedOperationError, match="in-place"):
        grad_of(in_place)
    with pytest.raises(ad.UnsupportedOperationError, match="drop its derivative"):
        grad_of(into_array)
    with pytest.raises(ad.UnsupportedOperationError, match="item assignment"):
        grad_of(set_item)


def test_unsupported_keyword_arguments_are_refused():
    with pytest.raises(ad.UnsupportedOperationError, match="dtype="):
        grad_of(lambda x: np.sum(x, dtype=np.float32))
    with pytest.raises(ad.UnsupportedOperationError, match="where="):
        grad_of(lambda x: np.exp(x, where=x > 1))


@pytest.mark.parametrize("convert", [float, np.asarray, np.array, lambda x: x.tolist(), lambda x: complex(x)])
def test_conversions_that_drop_the_derivative_are_refused(convert):
    with pytest.raises((ad.UnsupportedOperationError, AttributeError)):
        ad.grad(lambda x: convert(x) * 2)(1.0)
    with pytest.raises((ad.UnsupportedOperationError, AttributeError)):
        ad.jvp(lambda x: convert(x) * 2, (1.0,), (1.0,))


def test_conversion_error_says_why():
    with pytest.raises(ad.UnsupportedOperationError, match="would drop its derivative"):
        ad.grad(lambda x: float(x) * 2)(1.0)


def test_grad_of_a_non_scalar_names_the_shape():
    with pytest.raises(TypeError, match=r"scalar.*shape \(3,\)"):
        ad.grad(np.sin)(np.ones(3))
    with pytest.raises(TypeError, match=r"shape \(1,\)"):
        ad.value_and_grad(lambda x: x[:1])(np.ones(3))


def test_jvp_tangent_must_match_its_primal():
    with pytest.raises(ValueError, match=r"tangent 0 has shape \(2,\) but its primal has shape \(3,\)"):
        ad.jvp(np.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(TypeError, match="dtype float32 but its primal has dtype float64"):
        ad.jvp(np.sin, (np.ones(3),), (np.ones(3, np.float32),))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        ad.jvp(np.add, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError, match="tuples"):
        ad.jvp(np.sin, np.ones(3), np.ones(3))


def test_vjp_cotangent_must_match_the_output():
    _, vjp_fn = ad.vjp(np.sin, np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        vjp_fn(np.ones(2))


def test_integer_inputs_are_refused():
    with pytest.raises(TypeError, match="floating-point"):
        ad.grad(lambda x: x * 2.0)(3)
    with pytest.raises(TypeError, match="floating-point"):
        ad.jvp(np.sin, (np.arange(3),), (np.ones(3),))


def test_dot_of_higher_dimensional_arrays_is_refused():
    with pytest.raises(ad.UnsupportedOperationError, match="numpy.dot"):
        ad.grad(lambda x: np.sum(np.dot(x, np.ones((2, 2, 2)))))(np.ones((2, 2, 2)))


def test_operations_without_derivative_work_on_traced_values():
    def f(x):
        assert np.shape(x) == (3,) and np.ndim(x) == 1 and np.size(x) == 3 and len(x) == 3
        assert np.argmax(x) == 2 and bool(x[0] < x[1])
        return np.sum(x * np.sign(x) * np.zeros_like(x)) + np.sum(np.where(np.isfinite(x), x, 0.0))

    np.testing.assert_array_equal(grad_of(f), np.ones(3))


def test_unsupported_norm_order_is_refused():
    with pytest.raises(ad.UnsupportedOperationError, match=r"numpy\.linalg\.norm with ord=2 on matrices"):
        ad.grad(lambda x: np.linalg.norm(x, ord=2))(np.ones((2, 2)))
    with pytest.raises(ad.UnsupportedOperationError, match="out="):
        ad.grad(lambda x: np.sum(np.clip(x, 0, 1, out=np.empty(2))))(np.ones(2))


def test_supported_operations_lists_the_rule_table():
    names = ad.supported_operations()
    assert names == sorted(names)
    for name in ["numpy.sin", "numpy.matmul", "numpy.sum", "numpy.where", "numpy.concatenate", "getitem",
                 "numpy.clip", "numpy.linalg.norm"]:
        assert name in names
    assert "numpy.cumsum" not in names
