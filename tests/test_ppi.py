"""The PPI++ estimate against ppi_py (the authors' package) and its coverage."""

import numpy as np
import pytest

from agentops.checks.estimate import ppi_mean


@pytest.mark.parametrize("seed", range(8))
def test_ppi_mean_matches_ppi_py_on_random_data(seed: int) -> None:
    ppi_py = pytest.importorskip("ppi_py")
    rng = np.random.default_rng(seed)
    n, big_n = int(rng.integers(20, 300)), int(rng.integers(500, 5000))
    truth_rate, tpr, tnr = rng.uniform(0.02, 0.4), rng.uniform(0.5, 0.95), rng.uniform(0.7, 0.99)

    def flags(truth: np.ndarray) -> np.ndarray:
        caught = rng.random(truth.size)
        return np.where(truth == 1, caught < tpr, caught > tnr).astype(float)

    y = (rng.random(n) < truth_rate).astype(float)
    y_hat = flags(y)
    y_all = flags((rng.random(big_n) < truth_rate).astype(float))
    ours = ppi_mean(y, y_hat, y_all, confidence=0.95)
    lower, upper = ppi_py.ppi_mean_ci(y, y_hat, y_all, alpha=0.05)
    assert ours.lower == pytest.approx(float(np.ravel(lower)[0]), abs=1e-9)
    assert ours.upper == pytest.approx(float(np.ravel(upper)[0]), abs=1e-9)
    point = ppi_py.ppi_mean_pointestimate(y, y_hat, y_all)
    assert ours.estimate == pytest.approx(float(np.ravel(point)[0]), abs=1e-9)
    # Continuous predictions and weights, too.
    scores, scores_all = rng.random(n), rng.random(big_n)
    weights = rng.uniform(0.5, 2.0, n)
    ours = ppi_mean(y, scores, scores_all, weights=weights, confidence=0.9)
    lower, upper = ppi_py.ppi_mean_ci(y, scores, scores_all, alpha=0.1, w=weights)
    assert (ours.lower, ours.upper) == pytest.approx(
        (float(np.ravel(lower)[0]), float(np.ravel(upper)[0])), abs=1e-9
    )


def test_ppi_lambda_zero_is_the_reviews_alone_and_flags_narrow_the_interval() -> None:
    rng = np.random.default_rng(3)
    truth_all = (rng.random(6000) < 0.1).astype(float)
    noise = rng.random(6000)
    flagged_all = np.where(truth_all == 1, noise < 0.8, noise > 0.95).astype(float)
    y, y_hat = truth_all[:200], flagged_all[:200]
    alone = ppi_mean(y, y_hat, flagged_all, lam=0.0)
    assert alone.estimate == pytest.approx(y.mean())
    tuned = ppi_mean(y, y_hat, flagged_all)
    assert 0 < tuned.lam <= 1
    assert tuned.upper - tuned.lower < alone.upper - alone.lower


def test_ppi_interval_covers_about_95_percent() -> None:
    # Loose and fast: 400 draws; benchmarks/ppi_coverage.py runs the full simulation.
    rng = np.random.default_rng(11)
    covered = 0
    draws = 400
    for _ in range(draws):
        truth_all = (rng.random(2000) < 0.08).astype(float)
        noise = rng.random(2000)
        flagged_all = np.where(truth_all == 1, noise < 0.8, noise > 0.95).astype(float)
        reviewed = rng.choice(2000, size=150, replace=False)
        found = ppi_mean(truth_all[reviewed], flagged_all[reviewed], flagged_all)
        covered += found.lower <= truth_all.mean() <= found.upper
    assert 0.91 <= covered / draws <= 0.99


def test_ppi_refuses_too_little_data() -> None:
    with pytest.raises(ValueError, match="at least two reviews"):
        ppi_mean([1.0], [1.0], [0.0, 1.0])
