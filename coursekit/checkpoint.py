r"""Checkpointing: reverse mode over a long chain of layers with less memory, paid for in recomputation.

The chain is :math:`x_{i+1} = F_i(x_i)`, :math:`i = 0, \dots, N-1`. Given the
cotangent :math:`\bar x_N = \partial L / \partial x_N`, reverse mode returns
:math:`\bar x_0` by the reverse steps

.. math::

    \bar x_i = \bar x_{i+1}^\top \frac{\partial F_i}{\partial x_i}(x_i), \qquad i = N-1, \dots, 0,

and reverse step :math:`i` needs the layer input :math:`x_i`, in the opposite
order to the one in which the forward pass produced them. A policy decides
which inputs to keep and which to recompute from an earlier one:

- ``"store_all"``: keep every input :math:`x_0, \dots, x_{N-1}`; no recomputation, :math:`N` stored;
- ``"sqrt"``: keep only the inputs of segments of :math:`k = \lceil\sqrt N\rceil` layers and
  recompute each segment's inside during the backward pass (Chen, Xu, Zhang &
  Guestrin 2016, "Training deep nets with sublinear memory cost"): about
  :math:`2\sqrt N` stored, fewer than :math:`N` extra forward steps;
- ``"revolve"``: the binomial schedule of Griewank (1992) and Griewank & Walther
  (2000, "Algorithm 799: revolve"), which for a given number :math:`s` of
  snapshots needs the fewest forward steps possible.

How things are counted (the model of Griewank & Walther):

- a *forward step* is one plain call :math:`x_{i+1} = F_i(x_i)`. The reverse step
  of layer :math:`i` linearises :math:`F_i` at :math:`x_i` and so evaluates it once
  more inside itself; that evaluation belongs to the reverse step and is not
  counted. The output :math:`x_N` is never needed, so a single sweep takes
  :math:`N - 1` forward steps;
- a *recomputation* is a forward step that produces an :math:`x_i` computed
  before; every policy computes each of :math:`x_1, \dots, x_{N-1}` at least once, so
  ``recomputations = forward_steps - (N - 1)``;
- ``peak_stored`` is the largest number of activations in the checkpoint store
  at once (:math:`x_0` included). Not counted: the one working activation being
  advanced and the intermediates of the single layer being reversed.

:func:`backprop_chain` measures these counts by instrumenting the store and the
layers; :func:`expected_counts` gives them in closed form.

The course's source slides say that :math:`K` checkpoints cut memory by about
:math:`K/N` and multiply the time by about :math:`N/K`. Neither holds for
segment checkpointing: memory is about :math:`K + N/K` activations (the
checkpoints plus one segment), least at :math:`K = \sqrt N`, and the extra work
is at most one more forward pass, whatever :math:`K` is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from coursekit._checks import check_choice, check_count

POLICIES = ("store_all", "sqrt", "revolve")

Forward = Callable[[np.ndarray], np.ndarray]
Pullback = Callable[[np.ndarray, np.ndarray], np.ndarray]
Layer = Forward | tuple[Forward, Pullback]


class CheckpointRun(NamedTuple):
    """The input gradient of a chain and what computing it cost, as measured."""

    input_gradient: np.ndarray
    peak_stored: int
    forward_steps: int
    recomputations: int
    policy: str


class ExpectedCounts(NamedTuple):
    """The closed-form counts of a policy (see :func:`expected_counts`)."""

    peak_stored: int
    recomputations: int


def backprop_chain(
    layers: Sequence[Layer],
    x0: npt.ArrayLike,
    cotangent: npt.ArrayLike,
    policy: str,
    snapshots: int | None = None,
) -> CheckpointRun:
    r"""Reverse mode through the chain :math:`x_{i+1} = F_i(x_i)` under a checkpointing ``policy``.

    Returns :math:`\bar x_0 = \bar x_N^\top J_{F_{N-1}} \cdots J_{F_0}` for ``cotangent``
    :math:`= \bar x_N`, and the counts of the module docstring, measured by
    counting the forward steps and the activations in the store while the
    schedule runs.

    Each layer is either a callable ``x -> y`` differentiable by
    :mod:`coursekit.ad` (its reverse step is ``coursekit.ad.vjp``), or a pair
    ``(forward, pullback)`` with ``pullback(x, y_bar)`` returning
    :math:`\bar y^\top \partial F / \partial x` at ``x`` (for instance built with
    ``jax.vjp``). ``snapshots`` is the number :math:`s \ge 1` of activations the
    ``"revolve"`` schedule may store (:math:`x_0` included); the other policies
    take none.

    The gradient is the same under every policy: only the order of the
    operations and the memory change.
    """
    chain = _Chain(_checked_layers(layers))
    _check_policy_arguments(policy, snapshots)
    x0 = _activation(x0, "x0")
    cotangent = _activation(cotangent, "cotangent")
    num_layers = len(chain.layers)
    if policy == "store_all":
        gradient = _store_all(chain, x0, cotangent)
    elif policy == "sqrt":
        gradient = _segments(chain, x0, cotangent, segment_length(num_layers))
    else:
        chain.save(0, x0)
        gradient = _revolve(chain, num_layers, snapshots, cotangent)
        chain.drop(0)
    assert chain.reversed == list(range(num_layers - 1, -1, -1)) and not chain.store
    return CheckpointRun(
        gradient, chain.peak_stored, chain.forward_steps, chain.forward_steps - len(chain.computed), policy
    )


def expected_counts(num_layers: int, policy: str, snapshots: int | None = None) -> ExpectedCounts:
    r"""The ``(peak_stored, recomputations)`` that :func:`backprop_chain` measures, in closed form.

    With :math:`N` layers:

    - ``"store_all"``: :math:`(N, 0)`;
    - ``"sqrt"`` with :math:`k = \lceil\sqrt N\rceil` and :math:`J = \lceil N/k\rceil - 1`
      full segments before the last one: the forward sweep stops at the last
      segment's input :math:`x_{Jk}`, so only the insides of the first :math:`J`
      segments are computed twice: :math:`J(k - 1)` recomputations. While
      segment :math:`j` is reversed, :math:`j + 1` segment inputs and its
      :math:`\ell_j - 1` inner activations are stored, so the peak is
      :math:`\max(J - 1 + k,\; J + N - Jk)` (:math:`N` if :math:`J = 0`), about :math:`2\sqrt N`;
    - ``"revolve"`` with :math:`s` snapshots: :func:`revolve_forward_steps`
      :math:`- (N - 1)` recomputations, and peak :math:`\min(s, N - 1)` (1 if
      :math:`N = 1`): an optimal schedule uses every snapshot it may, except
      that :math:`N - 1` already suffice for no recomputation (the last input
      goes from its forward step straight into its reverse step).
    """
    check_count("num_layers", num_layers, minimum=1)
    _check_policy_arguments(policy, snapshots)
    if policy == "store_all":
        return ExpectedCounts(num_layers, 0)
    if policy == "sqrt":
        k = segment_length(num_layers)
        full = math.ceil(num_layers / k) - 1
        if full == 0:
            return ExpectedCounts(num_layers, 0)
        peak = max(full - 1 + k, full + num_layers - full * k)
        return ExpectedCounts(peak, full * (k - 1))
    recomputations = revolve_forward_steps(num_layers, snapshots) - (num_layers - 1)
    return ExpectedCounts(max(1, min(snapshots, num_layers - 1)), recomputations)


def segment_length(num_layers: int) -> int:
    r""":math:`k = \lceil\sqrt N\rceil`, the segment length of the ``"sqrt"`` policy.

    Storing every :math:`k`-th activation plus one segment holds about
    :math:`N/k + k` activations, least at :math:`k = \sqrt N` (Chen et al. 2016).
    """
    check_count("num_layers", num_layers, minimum=1)
    return math.isqrt(num_layers - 1) + 1


def revolve_forward_steps(num_layers: int, snapshots: int) -> int:
    r"""The fewest forward steps that reverse :math:`N` layers with :math:`s` snapshots (Griewank 1992).

    Let :math:`\beta(s, r) = \binom{s + r}{s}`, the largest number of layers that
    :math:`s` snapshots can reverse when every layer is advanced at most
    :math:`r` times, and let :math:`r` be the smallest integer with
    :math:`\beta(s, r) \ge N` (the *repetition number*). Then

    .. math::

        t(N, s) = r N - \beta(s + 1, r - 1) = r N - \binom{s + r}{r - 1}.

    Forward steps are counted as in the module docstring: the evaluation
    inside each reverse step is not one, so with :math:`s \ge N - 1` snapshots
    (:math:`r = 1`) :math:`t = N - 1`, a single sweep, and with one snapshot
    (:math:`r = N - 1`) :math:`t = N(N-1)/2`, every input recomputed from :math:`x_0`.
    Counting the evaluation inside every reverse step as well adds :math:`N`.
    The test suite checks the formula against a shortest-path search over all
    schedules (:math:`N \le 9`, :math:`s \le 4`), against the recursive dynamic
    program over first splits (:math:`N \le 60`, :math:`s \le 6`) and against the
    forward steps counted while :func:`backprop_chain` executes the schedule.

    References: Griewank (1992), "Achieving logarithmic growth of temporal and
    spatial complexity in reverse automatic differentiation"; Griewank &
    Walther (2000), "Algorithm 799: revolve"; Griewank & Walther, *Evaluating
    Derivatives*, 2nd ed. (SIAM 2008), ch. 12.
    """
    check_count("num_layers", num_layers, minimum=1)
    check_count("snapshots", snapshots, minimum=1)
    repetitions = repetition_number(num_layers, snapshots)
    return repetitions * num_layers - math.comb(snapshots + repetitions, repetitions - 1) if repetitions else 0


def repetition_number(num_layers: int, snapshots: int) -> int:
    r"""The smallest :math:`r \ge 0` with :math:`\binom{s + r}{s} \ge N`: how often the busiest layer is advanced."""
    check_count("num_layers", num_layers, minimum=1)
    check_count("snapshots", snapshots, minimum=1)
    repetitions = 0
    while math.comb(snapshots + repetitions, snapshots) < num_layers:
        repetitions += 1
    return repetitions


# --- the schedules ----------------------------------------------------------------


def _store_all(chain, x0, cotangent):
    x = x0
    chain.save(0, x)
    for i in range(len(chain.layers) - 1):
        x = chain.advance(i, x)
        chain.save(i + 1, x)
    for i in reversed(range(len(chain.layers))):
        cotangent = chain.reverse(i, chain.load(i), cotangent)
        chain.drop(i)
    return cotangent


def _segments(chain, x0, cotangent, length):
    """Chen et al.: keep segment inputs in the forward sweep; store a segment's inside only while reversing it."""
    num_layers = len(chain.layers)
    starts = list(range(0, num_layers, length))
    x = x0
    chain.save(0, x)
    for i in range(starts[-1]):
        x = chain.advance(i, x)
        if (i + 1) % length == 0:
            chain.save(i + 1, x)
    for start in reversed(starts):
        stop = min(start + length, num_layers)
        x = chain.load(start)
        for i in range(start, stop - 1):
            x = chain.advance(i, x)
            chain.save(i + 1, x)
        for i in reversed(range(start, stop)):
            cotangent = chain.reverse(i, chain.load(i), cotangent)
            chain.drop(i)
    return cotangent


def _revolve(chain, num_layers, snapshots, cotangent):
    r"""Execute the binomial schedule on layers ``0 .. num_layers-1``, with :math:`x_0` in the store.

    A task ``("reverse", start, length, slots)`` reverses layers ``start .. start+length-1``
    with :math:`x_{start}` stored and ``slots`` snapshots (that one included): advance
    :math:`m` = :func:`binomial_split` layers, store :math:`x_{start+m}`, reverse the right
    part with one slot fewer, drop :math:`x_{start+m}`, then reverse the left part with
    all the slots. A right part of one layer needs no slot: the working
    activation goes straight into its reverse step. A stack of tasks instead
    of recursion keeps long chains clear of Python's recursion limit.
    """
    tasks = [("reverse", 0, num_layers, snapshots)]
    while tasks:
        task = tasks.pop()
        if task[0] == "drop":
            chain.drop(task[1])
            continue
        _, start, length, slots = task
        if length == 1:
            cotangent = chain.reverse(start, chain.load(start), cotangent)
            continue
        split = binomial_split(length, slots)
        x = chain.load(start)
        for i in range(start, start + split):
            x = chain.advance(i, x)
        tasks.append(("reverse", start, split, slots))  # the left part, last
        if length - split == 1:
            cotangent = chain.reverse(start + split, x, cotangent)
        else:
            chain.save(start + split, x)
            tasks += [("drop", start + split), ("reverse", start + split, length - split, slots - 1)]
    return cotangent


def binomial_split(num_layers: int, snapshots: int) -> int:
    r"""Where revolve puts its next snapshot: the first :math:`m` layers are left for later.

    Reversing :math:`\ell` layers with :math:`s` snapshots by advancing :math:`m`
    layers, storing, reversing the right :math:`\ell - m` layers with :math:`s - 1`
    snapshots and then the left :math:`m` with :math:`s` costs
    :math:`m + t(\ell - m, s - 1) + t(m, s)`. Since :math:`t(\cdot, s)` is piecewise
    linear with slope the repetition number, moving the split by one layer
    changes the cost by :math:`1 + r_{left} - r_{right}`: the split is optimal
    where the right part still needs :math:`r_{right} = r` repetitions and the
    left part :math:`r_{left} = r - 1`. The smallest such split is

    .. math::

        m = \max\bigl(1,\; \ell - \beta(s - 1, r),\; \beta(s, r - 2)\bigr),

    with :math:`\beta(s, r) = \binom{s + r}{s}` (0 for :math:`r < 0`) and :math:`r` the
    repetition number of :math:`(\ell, s)`. With one snapshot it is :math:`\ell - 1`
    (advance to the last input); with :math:`s \ge \ell - 1` it is 1 (a plain
    sweep). The test suite checks :math:`m + t(\ell - m, s - 1) + t(m, s) = t(\ell, s)`
    for every :math:`\ell < 1500`, :math:`s \le 12`.
    """
    check_count("num_layers", num_layers, minimum=2)
    check_count("snapshots", snapshots, minimum=1)
    repetitions = repetition_number(num_layers, snapshots)
    right_capacity = math.comb(snapshots - 1 + repetitions, repetitions)
    left_minimum = math.comb(snapshots + repetitions - 2, snapshots) if repetitions >= 2 else 0
    return max(1, num_layers - right_capacity, left_minimum)


# --- instrumentation ----------------------------------------------------------------


class _Chain:
    """The layers with a counting store: every forward step, stored activation and reverse step is recorded."""

    def __init__(self, layers):
        self.layers = layers
        self.store = {}
        self.peak_stored = 0
        self.forward_steps = 0
        self.computed = set()
        self.reversed = []

    def advance(self, i, x):
        self.forward_steps += 1
        self.computed.add(i + 1)
        return _activation(self.layers[i][0](x), f"the output of layer {i}")

    def save(self, i, x):
        assert i not in self.store, f"x_{i} is stored twice"
        self.store[i] = x
        self.peak_stored = max(self.peak_stored, len(self.store))

    def load(self, i):
        return self.store[i]

    def drop(self, i):
        del self.store[i]

    def reverse(self, i, x, cotangent):
        self.reversed.append(i)
        x_bar = _activation(self.layers[i][1](x, cotangent), f"the cotangent of layer {i}'s input")
        if x_bar.shape != x.shape:
            raise ValueError(f"layer {i}'s pullback returned shape {x_bar.shape} for an input of shape {x.shape}")
        return x_bar


def _checked_layers(layers):
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of layers, got {type(layers).__name__}")
    if len(layers) == 0:
        raise ValueError("layers is empty: a chain needs at least one layer (N >= 1)")
    return [_forward_and_pullback(layer, i) for i, layer in enumerate(layers)]


def _forward_and_pullback(layer, i):
    if isinstance(layer, tuple):
        if len(layer) != 2 or not all(callable(part) for part in layer):
            raise TypeError(f"layer {i} must be a callable or a pair (forward, pullback) of callables, got {layer!r}")
        return layer
    if not callable(layer):
        raise TypeError(f"layer {i} must be a callable or a pair (forward, pullback), got {type(layer).__name__}")
    return layer, _ad_pullback(layer, i)


def _ad_pullback(layer, i):
    """The reverse step of a plain callable: coursekit.ad's VJP, evaluated at x and applied to the cotangent."""

    def pullback(x, cotangent):
        from coursekit import ad

        y, vjp_fn = ad.vjp(layer, x)
        if np.shape(y) != cotangent.shape:
            raise ValueError(f"the cotangent has shape {cotangent.shape}, but layer {i} returns shape {np.shape(y)}")
        (x_bar,) = vjp_fn(cotangent.astype(np.result_type(y), copy=False))
        return x_bar

    return pullback


def _activation(value, name):
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real array, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} is not finite: {np.array2string(array, threshold=8)}")
    return array.astype(np.float64) if array.dtype.kind in "iu" else array


def _check_policy_arguments(policy, snapshots):
    check_choice("policy", policy, POLICIES)
    if policy == "revolve":
        if snapshots is None:
            raise ValueError("policy 'revolve' needs snapshots, the number s >= 1 of activations it may store")
        check_count("snapshots", snapshots, minimum=1)
    elif snapshots is not None:
        raise ValueError(f"snapshots is only used by policy 'revolve', not by {policy!r}; leave it None")

