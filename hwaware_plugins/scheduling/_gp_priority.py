"""SHADHO's priority: the spread of fitted Gaussian-process length scales.

50 times, a GP with an RBF kernel of random initial length scale is fitted to a
random 80% of a subspace's (params, loss) results; the priority is the maximum
minus the minimum of the *fitted* length scales (``kernel_``). SHADHO's
reference code read the unfitted ``kernel`` instead, which makes the priority
the spread of the random initial values: pure noise. ``fitted=False``
reproduces that bug for comparison.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from hwaware_plugins.errors import ConfigError

MIN_POINTS = 4
"""Below this many results a subspace's priority is 0.0 (nothing to fit)."""


def _gaussian_process_regressor() -> type:
    try:
        from sklearn.gaussian_process import GaussianProcessRegressor
    except ImportError as exc:  # pragma: no cover - scikit-learn is a test dependency
        raise ConfigError(
            "the shadho scheduler needs scikit-learn: pip install 'scikit-learn>=1.3'"
        ) from exc
    return GaussianProcessRegressor  # type: ignore[no-any-return]


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Tiny matrices: BLAS threads only add contention (40x slower on a busy 2-core host)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)  # type: ignore[no-any-return]


def design_matrix(params: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Numeric parameters as a matrix, each column scaled to [0, 1] (constant columns dropped)."""
    names = sorted({k for p in params for k in p})
    matrix = np.array([[p.get(k, 0.0) for k in names] for p in params], dtype=float)
    if matrix.size == 0:
        return matrix.reshape(len(params), 0)
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    keep = high > low
    scaled: np.ndarray = (matrix[:, keep] - low[keep]) / (high[keep] - low[keep])
    return scaled


def length_scale_spread(
    x: np.ndarray,
    y: Sequence[float],
    *,
    rng: np.random.Generator,
    n_fits: int = 50,
    train_fraction: float = 0.8,
    fitted: bool = True,
) -> float:
    """max - min of the RBF length scales of ``n_fits`` GP fits on random subsets.

    Each fit starts from a length scale drawn log-uniformly in [1e-2, 1e2] on
    ``train_fraction`` of the rows. Cost: ``n_fits`` GP fits, each
    O(iterations x m^3) for m training rows (a few ms at m = 160).
    """
    from sklearn.gaussian_process.kernels import RBF

    n = len(y)
    if n < MIN_POINTS or x.shape[1] == 0:
        return 0.0
    regressor = _gaussian_process_regressor()
    targets = np.asarray(y, dtype=float)
    m = max(2, round(train_fraction * n))
    scales: list[float] = []
    with warnings.catch_warnings(), _one_blas_thread():
        warnings.simplefilter("ignore")  # convergence warnings at the length-scale bounds
        for _ in range(n_fits):
            rows = rng.choice(n, size=m, replace=False)
            start = float(10 ** rng.uniform(-2.0, 2.0))
            gp = regressor(kernel=RBF(length_scale=start), alpha=1e-6, normalize_y=True)
            gp.fit(x[rows], targets[rows])
            kernel = gp.kernel_ if fitted else gp.kernel
            scales.append(float(np.mean(kernel.length_scale)))
    return max(scales) - min(scales)
