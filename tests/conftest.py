"""Shared test configuration: JAX as a float64 oracle, bounded hypothesis runs, loud numpy errors."""

import os

import jax
import numpy as np
import pytest
from hypothesis import settings

# JAX is the independent oracle for derivatives; in float32 it would be less
# accurate than the finite differences it checks.
jax.config.update("jax_enable_x64", True)

# deadline=None: the first example of a test pays for JAX tracing and compiling.
settings.register_profile("fast", deadline=None, max_examples=15)
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture
def loud_floating_point_errors():
    """Overflow, division by zero and invalid operations raise instead of leaving inf/nan behind.

    Underflow stays quiet: it is the expected fate of tiny terms and never a bug here.
    Numerical modules opt in with ``pytestmark = pytest.mark.usefixtures("loud_floating_point_errors")``;
    plotting code legitimately computes with nan, so it is not forced on every test.
    """
    with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
        yield
