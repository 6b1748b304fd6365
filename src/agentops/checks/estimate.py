"""A version's violation rate from reviews plus flags: PPI++ with a tuned λ (pure numpy).

Prediction-powered inference (Angelopoulos, Duchi, Zrnic 2023, "PPI++"): the flags on all
N conversations give a cheap, biased estimate; the n reviewed conversations, where both
the verdict Y and the flag Ŷ are known, measure and remove the bias:

    θ̂(λ) = λ·mean(Ŷ_all) + mean(Y - λ·Ŷ)

λ = 0 is the reviews alone, λ = 1 is plain PPI; the tuned λ minimises the variance (clipped
to [0, 1]), so adding flags never widens the interval beyond the reviews-only one in large
samples. The interval is the normal one, θ̂ ± z·√(var(λŶ_all)/N + var(Y - λŶ)/n).
"""

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class PPIEstimate:
    """A mean with its interval and the λ used."""

    estimate: float
    lower: float
    upper: float
    lam: float
    reviewed: int
    flagged_population: int


def _weights(count: int, weights: ArrayLike | None) -> np.ndarray:
    # Weights are rescaled to sum to the count, as ppi_py does, so they only reweight.
    if weights is None:
        return np.ones(count)
    given = np.asarray(weights, dtype=float)
    scaled: np.ndarray = given / given.sum() * count
    return scaled


def tuned_lambda(
    labels: np.ndarray,
    predicted: np.ndarray,
    predicted_all: np.ndarray,
    weights: np.ndarray,
    weights_all: np.ndarray,
) -> float:
    """The variance-minimising λ for a mean, clipped to [0, 1] (PPI++, eq. for M-estimation)."""
    n, big_n = labels.size, predicted_all.size
    centre = (weights_all * predicted_all).mean() + (weights * (labels - predicted)).mean()
    grads = weights * (labels - centre)
    grads_hat = weights * (predicted - centre)
    grads_all = weights_all * (predicted_all - centre)
    covariance = 2 * ((grads - grads.mean()) * (grads_hat - grads_hat.mean())).sum() / n
    variance = np.var(np.concatenate([grads_hat, grads_all]), ddof=1)
    if variance == 0:
        return 0.0
    return float(np.clip(covariance / (2 * (1 + n / big_n) * variance), 0.0, 1.0))


def ppi_mean(
    labels: ArrayLike,
    predicted: ArrayLike,
    predicted_all: ArrayLike,
    *,
    confidence: float = 0.95,
    lam: float | None = None,
    weights: ArrayLike | None = None,
    weights_all: ArrayLike | None = None,
) -> PPIEstimate:
    """PPI++ mean of `labels` (reviewed) using `predicted` on them and `predicted_all` on all."""
    y = np.asarray(labels, dtype=float).ravel()
    y_hat = np.asarray(predicted, dtype=float).ravel()
    y_all = np.asarray(predicted_all, dtype=float).ravel()
    if y.size < 2 or y.size != y_hat.size or y_all.size < 2:
        raise ValueError("need at least two reviews with flags, and two flagged conversations")
    w = _weights(y.size, weights)
    w_all = _weights(y_all.size, weights_all)
    if lam is None:
        lam = tuned_lambda(y, y_hat, y_all, w, w_all)
    estimate = (w_all * lam * y_all).mean() + (w * (y - lam * y_hat)).mean()
    spread = np.sqrt(
        np.std(w_all * lam * y_all) ** 2 / y_all.size + np.std(w * (y - lam * y_hat)) ** 2 / y.size
    )
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return PPIEstimate(
        estimate=float(estimate),
        lower=float(estimate - z * spread),
        upper=float(estimate + z * spread),
        lam=float(lam),
        reviewed=int(y.size),
        flagged_population=int(y_all.size),
    )
