"""Argument checks shared by the library's modules, so every module words its errors alike."""

from collections.abc import Sequence

import numpy as np


def check_choice(kind: str, value, choices: Sequence[str]) -> None:
    """Raise ``ValueError("unknown <kind> 'x'; choose one of a, b, c")`` unless ``value`` is in ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of {', '.join(choices)}")


def check_count(name: str, value, minimum: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
