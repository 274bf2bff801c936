"""Optimizer-state memory read off the state the optimizer really creates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from coursekit.optim._transform import GradientTransformation


def state_bytes(optimizer: GradientTransformation, params) -> int:
    """Bytes of ``optimizer.init(params)``, from ``jax.eval_shape`` (nothing is allocated)."""
    state = jax.eval_shape(optimizer.init, params)
    return sum(np.dtype(leaf.dtype).itemsize * int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(state))


def state_bytes_per_parameter(
    optimizer: GradientTransformation, params_dtype=jnp.float32, num_params: int = 1 << 20
) -> float:
    """Bytes of optimizer state per parameter, e.g. 8 for Adam in float32, 0 for plain SGD.

    Derived from the real state: ``jax.eval_shape(optimizer.init, ...)`` on two
    sample pytrees of ``params_dtype`` leaves with ``num_params`` and
    ``2 * num_params`` parameters; the difference of their state bytes divided
    by ``num_params`` drops what does not grow with the model (step counters).
    State dtypes other than ``params_dtype`` come from the optimizer's own
    arguments (``mu_dtype``, ``accumulator_dtype``).

    >>> from coursekit import optim
    >>> optim.state_bytes_per_parameter(optim.sgd(0.1)), optim.state_bytes_per_parameter(optim.amsgrad(0.1))
    (0.0, 12.0)
    """
    if num_params < 4:
        raise ValueError(f"num_params must be at least 4, got {num_params}")

    def sample(n):
        quarter = n // 4
        shapes = {"w": (quarter, 3), "b": (n - 3 * quarter,)}
        return {k: jax.ShapeDtypeStruct(s, params_dtype) for k, s in shapes.items()}

    small, large = state_bytes(optimizer, sample(num_params)), state_bytes(optimizer, sample(2 * num_params))
    return (large - small) / num_params
