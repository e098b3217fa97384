"""Small, deterministic logistic regressions (Newton-Raphson with an offset and a ridge)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

MAX_ITERATIONS = 50
TOLERANCE = 1e-9


def fit_logistic(
    features: np.ndarray,
    outcomes: np.ndarray,
    *,
    offset: np.ndarray | None = None,
    l2: float = 0.0,
    intercept: bool = True,
) -> np.ndarray:
    """Return coefficients of logit P(y) = offset + b0 + X b, ridge l2 on b (not on b0).

    The first coefficient is the intercept when ``intercept`` is true.
    """
    n = outcomes.size
    design = np.column_stack([np.ones(n), features]) if intercept else np.asarray(features)
    design = design.reshape(n, -1)
    shift = np.zeros(n) if offset is None else offset
    penalty = np.full(design.shape[1], l2, dtype=np.float64)
    if intercept:
        penalty[0] = 0.0
    coefficients = np.zeros(design.shape[1])
    if n == 0:
        return coefficients
    for _ in range(MAX_ITERATIONS):
        p = expit(shift + design @ coefficients)
        gradient = design.T @ (outcomes - p) - penalty * coefficients
        curvature = (
            (design * (p * (1 - p))[:, None]).T @ design
            + np.diag(penalty)
            + 1e-9 * np.eye(design.shape[1])
        )
        step = np.linalg.solve(curvature, gradient)
        coefficients = coefficients + step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return coefficients


def logit(p: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Return log(p / (1 - p)) with p clipped away from 0 and 1."""
    q = np.clip(p, floor, 1 - floor)
    return np.log(q / (1 - q))
