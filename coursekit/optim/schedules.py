r"""Learning-rate schedules ``step -> lr`` and batch-size scaling rules.

A schedule takes the update count :math:`t = 0, 1, \dots` (a Python int or a
JAX integer array, so it runs under ``jax.jit``) and returns the learning rate.
Names, signatures and formulas are optax's where optax has the schedule.
Integer steps are turned into floats by a Python-float factor, so the value is
computed in JAX's default float (float32, float64 under ``jax_enable_x64``), not
in float32 because the step is an int32: near the end of a cosine decay
:math:`1 + \cos` cancels, and float32 there loses 4 digits.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from coursekit.optim._transform import Schedule


def _positive(name, value):
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def _nonnegative_int(name, value):
    if int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def constant_schedule(value: float) -> Schedule:
    r""":math:`\eta_t = \eta`."""
    return lambda count: value


def linear_schedule(init_value: float, end_value: float, transition_steps: int, transition_begin: int = 0) -> Schedule:
    r"""Linear ramp from :math:`I` to :math:`E` over :math:`T` steps starting at :math:`B`:

    :math:`\eta_t = I + (E - I)\,\mathrm{clip}((t - B)/T, 0, 1)`. As warmup
    (:math:`I = 0`, :math:`E = \eta`) it is Goyal et al. (2017)'s gradual warmup.
    ``transition_steps <= 0`` gives the constant :math:`I` (as optax).
    """
    _nonnegative_int("transition_begin", transition_begin)
    if transition_steps <= 0:
        return constant_schedule(init_value)

    def schedule(count):
        fraction = 1.0 * jnp.clip(count - transition_begin, 0, transition_steps) / transition_steps
        return (init_value - end_value) * (1 - fraction) + end_value

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0, exponent: float = 1.0) -> Schedule:
    r"""Cosine decay (Loshchilov & Hutter 2017, SGDR without restarts):

    :math:`\eta_t = I\left[\alpha + (1 - \alpha)\left(\tfrac12(1 + \cos(\pi \min(t, T)/T))\right)^p\right]`,
    so :math:`\eta_0 = I` and :math:`\eta_t = \alpha I` for :math:`t \ge T`.
    """
    _positive("decay_steps", decay_steps)

    def schedule(count):
        cosine = (0.5 * (1 + jnp.cos(jnp.pi * jnp.minimum(count, decay_steps) / decay_steps))) ** exponent
        return init_value * ((1 - alpha) * cosine + alpha)

    return schedule


def warmup_cosine_decay_schedule(
    init_value: float,
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    end_value: float = 0.0,
    exponent: float = 1.0,
) -> Schedule:
    r"""Linear warmup from :math:`I` to the peak :math:`P` over :math:`W` steps, then cosine decay to :math:`E`.

    ``decay_steps`` :math:`D` counts the WHOLE schedule, warmup included (optax's
    convention): the cosine runs over :math:`D - W` steps, reaching :math:`E` at :math:`t = D`.
    """
    _nonnegative_int("warmup_steps", warmup_steps)
    if not decay_steps > warmup_steps:
        raise ValueError(f"decay_steps ({decay_steps}) must exceed warmup_steps ({warmup_steps})")
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)
    return lambda count: jnp.where(count < warmup_steps, warmup(count), decay(count - warmup_steps))


def warmup_stable_decay_schedule(
    peak_value: float,
    warmup_steps: int,
    stable_steps: int,
    decay_steps: int,
    init_value: float = 0.0,
    end_value: float = 0.0,
    decay_shape: str = "linear",
) -> Schedule:
    r"""Warmup-stable-decay ("trapezoidal", cooldown) schedule; optax has no counterpart.

    With :math:`W, S, D` the three phase lengths and :math:`s = \min(t - W - S, D)/D`
    the cooldown fraction:

    - warmup, :math:`t < W`: linear from :math:`I` to the peak :math:`P`;
    - stable, :math:`W \le t < W + S`: :math:`P`;
    - cooldown, :math:`t \ge W + S`: :math:`E + (P - E)\,c(s)` with
      :math:`c(s) = 1 - s` (``"linear"``), :math:`1 - \sqrt{s}` (``"1-sqrt"``, the
      best shape in Hägele et al. 2024) or :math:`\tfrac12(1 + \cos\pi s)` (``"cosine"``);
      after the cooldown it stays at :math:`E`.

    >>> wsd = warmup_stable_decay_schedule(1.0, warmup_steps=2, stable_steps=2, decay_steps=4)
    >>> [round(float(wsd(t)), 2) for t in range(9)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]

    References: Hu et al. 2024 (MiniCPM, "WSD"); Hägele et al. 2024, "Scaling
    laws and compute-optimal training beyond fixed training durations".
    """
    for name, value in (("warmup_steps", warmup_steps), ("stable_steps", stable_steps)):
        _nonnegative_int(name, value)
    _positive("decay_steps", decay_steps)
    shapes = {
        "linear": lambda s: 1 - s,
        "1-sqrt": lambda s: 1 - jnp.sqrt(s),
        "cosine": lambda s: 0.5 * (1 + jnp.cos(jnp.pi * s)),
    }
    if decay_shape not in shapes:
        raise ValueError(f"decay_shape must be one of {sorted(shapes)}, got {decay_shape!r}")
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    cooldown_start = warmup_steps + stable_steps

    def schedule(count):
        fraction = 1.0 * jnp.clip(count - cooldown_start, 0, decay_steps) / decay_steps
        cooldown = end_value + (peak_value - end_value) * shapes[decay_shape](fraction)
        return jnp.where(count < warmup_steps, warmup(count), cooldown)

    return schedule


def piecewise_constant_schedule(init_value: float, boundaries_and_scales: dict[int, float] | None = None) -> Schedule:
    r"""Step decay: :math:`\eta_t = I \prod_{b_i \le t} f_i` for ``{b_i: f_i}`` (e.g. ``{30: 0.1, 60: 0.1}``).

    A factor applies FROM its boundary on (:math:`t \ge b_i`), as in optax;
    ``torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)`` counts epochs
    the same way.
    """
    boundaries_and_scales = dict(boundaries_and_scales or {})
    if any(scale < 0 for scale in boundaries_and_scales.values()):
        raise ValueError("piecewise_constant_schedule expects non-negative scale factors")

    def schedule(count):
        value = jnp.asarray(init_value)
        for boundary, factor in sorted(boundaries_and_scales.items()):
            value = value * jnp.where(count < boundary, 1.0, factor)
        return value

    return schedule


def linear_scaling_rule(base_learning_rate: float, base_batch_size: int, batch_size: int) -> float:
    r""":math:`\eta = \eta_0 \cdot B / B_0` (Goyal et al. 2017): :math:`k` times the batch, :math:`k` times the step.

    The rule for SGD, where :math:`k` small steps approximate one step :math:`k` times as large.
    Meant with a warmup; it breaks down past a critical batch size.
    """
    _positive("base_batch_size", base_batch_size)
    _positive("batch_size", batch_size)
    return base_learning_rate * batch_size / base_batch_size


def sqrt_scaling_rule(base_learning_rate: float, base_batch_size: int, batch_size: int) -> float:
    r""":math:`\eta = \eta_0 \sqrt{B / B_0}`: keeps the gradient-noise variance of a step fixed (Krizhevsky 2014);

    the rule for Adam/RMSprop-type methods from their SDE limit (Malladi et al. 2022).
    """
    _positive("base_batch_size", base_batch_size)
    _positive("batch_size", batch_size)
    return base_learning_rate * math.sqrt(batch_size / base_batch_size)
