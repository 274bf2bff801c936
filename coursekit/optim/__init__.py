"""Optimizers as optax-compatible gradient transformations, schedules and state memory.

``init(params) -> state`` and ``update(grads, state, params=None) -> (updates, state)``
over JAX pytrees, pure and jit-able; coursekit transforms mix with optax's in
``optax.chain``. The step is ``params + updates`` (``optax.apply_updates``).

Named optimizers (optax's names, signatures and defaults): :func:`sgd` (with
``momentum``/``nesterov``), :func:`heavy_ball`, :func:`nesterov`, :func:`adagrad`,
:func:`rmsprop`, :func:`adam`, :func:`adamw`, :func:`amsgrad`, :func:`lion`. They
are chains of small transforms: :func:`trace` (momentum), ``scale_by_*`` (the
direction), :func:`add_decayed_weights`, :func:`scale_by_learning_rate`.
:mod:`coursekit.optim.schedules` has the learning-rate schedules;
:func:`state_bytes_per_parameter` reads the memory of any member off its state.

>>> import jax, jax.numpy as jnp
>>> from coursekit import optim
>>> params = {"w": jnp.array([1.0, -2.0])}
>>> optimizer = optim.adam(0.1)
>>> state = optimizer.init(params)
>>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
>>> updates, state = optimizer.update(grads, state, params)
>>> [round(float(u), 4) for u in updates["w"]]  # the first Adam step is -lr * sign(g)
[-0.1, 0.1]
>>> optim.state_bytes_per_parameter(optimizer)  # m and nu in float32
8.0
"""

from coursekit.optim import schedules
from coursekit.optim._adaptive import (
    ScaleByAdamState,
    ScaleByAmsgradState,
    ScaleByLionState,
    ScaleByRmsState,
    ScaleByRssState,
    scale_by_adam,
    scale_by_amsgrad,
    scale_by_lion,
    scale_by_rms,
    scale_by_rss,
)
from coursekit.optim._alias import adagrad, adam, adamw, amsgrad, heavy_ball, lion, nesterov, rmsprop, sgd
from coursekit.optim._memory import state_bytes, state_bytes_per_parameter
from coursekit.optim._transform import (
    EmptyState,
    GradientTransformation,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    chain,
    check_finite,
    heavy_ball_momentum,
    identity,
    nesterov_momentum,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
    trace,
)

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByLionState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "amsgrad",
    "chain",
    "check_finite",
    "heavy_ball",
    "heavy_ball_momentum",
    "identity",
    "lion",
    "nesterov",
    "nesterov_momentum",
    "rmsprop",
    "scale",
    "scale_by_adam",
    "scale_by_amsgrad",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "schedules",
    "sgd",
    "state_bytes",
    "state_bytes_per_parameter",
    "trace",
]
