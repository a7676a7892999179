"""SHADHO's priority: the spread of fitted Gaussian-process length scales.

50 times, a GP with an RBF kernel of random initial length scale is fitted to a
random 80% of a subspace's (params, loss) results; the priority is the maximum
minus the minimum of the *fitted* length scales (``kernel_``). SHADHO's
reference code read the unfitted ``kernel`` instead, which makes the priority
the spread of the random initial values: pure noise. ``fitted=False``
reproduces that bug for comparison.

Two ways to fit, same model (RBF kernel, ``alpha = 1e-6``, targets normalised
per fit, length scale bounded to [1e-5, 1e5]):

- ``exact=True``: scikit-learn's ``GaussianProcessRegressor`` (L-BFGS-B from
  the start value), one fit at a time: ~1-15 ms per fit;
- ``exact=False`` (the default): all fits of a refresh at once in numpy. The
  log marginal likelihood is evaluated on a grid of length scales (every 0.4
  decade) for every fit in one batched Cholesky; each fit climbs from its
  start value to the nearest local maximum and refines it on a 0.2-decade
  grid around it (a second batched pass); a start in a flat region stays
  where it is, a climb down a plateau ends at the bound. Fidelity cost: the
  fit lands on the likelihood's local maximum within 0.1 decade (half a fine step), where
  scikit-learn's L-BFGS-B often overshoots a steep maximum and stops at the
  lower bound instead (its result there is an optimiser artefact, so the
  spreads, i.e. the priorities, differ). Measured 10-20x faster than
  ``exact=True`` per refresh on this shared host.
"""

from __future__ import annotations

import contextlib
import math
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
    exact: bool = False,
) -> float:
    """max - min of the RBF length scales of ``n_fits`` GP fits on random subsets.

    Each fit starts from a length scale drawn log-uniformly in [1e-2, 1e2] on
    ``train_fraction`` of the rows. Cost with ``exact=False``: one batched
    evaluation of ``n_fits x 16`` kernels of m x m (about 2 ms at m = 16);
    with ``exact=True``: ``n_fits`` scikit-learn fits, each O(iterations x m^3).
    """
    n = len(y)
    if n < MIN_POINTS or x.shape[1] == 0:
        return 0.0
    if not exact or not fitted:
        targets = np.asarray(y, dtype=float)
        m = max(2, round(train_fraction * n))
        subsets = rng.random((n_fits, n)).argsort(axis=1)[:, :m]
        starts = 10 ** rng.uniform(-2.0, 2.0, size=n_fits)
        if not fitted:
            return float(starts.max() - starts.min())
        found = fitted_length_scales(x[subsets], targets[subsets], starts)
        return float(found.max() - found.min())
    from sklearn.gaussian_process.kernels import RBF

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


_GRID_LOG10 = np.linspace(-3.0, 3.0, 16)
"""Length scales the batched fit evaluates (every 0.4 decade); beyond them the likelihood of
inputs scaled to [0, 1] is flat, so a climb that runs off the grid ends at the bound."""
_BOUNDS_LOG10 = (-5.0, 5.0)
_REFINE_POINTS = 5
"""Points of the fine grid around each peak (0.2 decade apart)."""
_ALPHA = 1e-6


def log_marginal_likelihoods(x: np.ndarray, y: np.ndarray, log10_scales: np.ndarray) -> np.ndarray:
    """``result[f, g]``: log marginal likelihood of fit f's data at length scale ``10**g``.

    ``log10_scales``: one grid for every fit, shape (grid,), or one per fit, (fits, grid).
    ``x``: (fits, m, d) inputs; ``y``: (fits, m) targets, normalised per fit as
    scikit-learn's ``normalize_y`` does. Kernel: RBF + ``1e-6`` on the diagonal.
    Cost: one batched Cholesky of fits x grid matrices of m x m.
    """
    fits, m = y.shape
    # z does not change when y is scaled; scaling first keeps losses near 1e300 finite.
    scale = np.abs(y).max(axis=1, keepdims=True)
    scale[(scale == 0) | ~np.isfinite(scale)] = 1.0
    y = y / scale
    mean = y.mean(axis=1, keepdims=True)
    std = y.std(axis=1, keepdims=True)
    std[std == 0] = 1.0
    z = (y - mean) / std
    sq = ((x[:, :, None, :] - x[:, None, :, :]) ** 2).sum(axis=-1)  # (fits, m, m)
    inv = 0.5 / (10.0 ** (2 * np.broadcast_to(log10_scales, (fits, log10_scales.shape[-1]))))
    kernels = np.exp(-sq[:, None, :, :] * inv[:, :, None, None])
    kernels += _ALPHA * np.eye(m)
    quadratic, log_det = _cholesky_terms(kernels, np.broadcast_to(z[:, None, :], kernels.shape[:3]))
    lml: np.ndarray = -0.5 * quadratic - log_det - 0.5 * m * np.log(2 * np.pi)
    return lml


def _cholesky_terms(kernels: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``z^T K^-1 z`` and ``log det K / 2`` for a batch of small SPD matrices.

    A column-by-column Cholesky vectorised over the batch (m numpy steps
    instead of one LAPACK call per matrix: far cheaper for thousands of
    16 x 16 matrices); the forward solve of ``L w = z`` runs in the same loop.
    A pivot that is not positive (numerically singular) gives ``+inf``.
    """
    m = kernels.shape[-1]
    chol = np.zeros_like(kernels)
    w = np.zeros(kernels.shape[:-1])
    half_log_det = np.zeros(kernels.shape[:-2])
    bad = np.zeros(kernels.shape[:-2], dtype=bool)
    for j in range(m):
        row = chol[..., j, :j]
        pivot = kernels[..., j, j] - (row * row).sum(axis=-1)
        bad |= pivot <= 0
        diag = np.sqrt(np.maximum(pivot, 1e-300))
        chol[..., j, j] = diag
        if j + 1 < m:
            below = kernels[..., j + 1 :, j] - (chol[..., j + 1 :, :j] @ row[..., None])[..., 0]
            chol[..., j + 1 :, j] = below / diag[..., None]
        w[..., j] = (z[..., j] - (row * w[..., :j]).sum(axis=-1)) / diag
        half_log_det += np.log(diag)
    quadratic = np.where(bad, np.inf, (w**2).sum(axis=-1))
    return quadratic, half_log_det


def fitted_length_scales(x: np.ndarray, y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The length scale each fit reaches climbing the likelihood from its start value.

    ``x``: (fits, m, d), ``y``: (fits, m), ``starts``: (fits,) initial length
    scales. Each fit moves grid point by grid point uphill from the point
    nearest its start; once moving it keeps going across flat stretches (as a
    gradient method drifts along a plateau) until the likelihood falls, then
    refines on a finer grid (0.2 decade) between that point's neighbours. Running off
    the grid ends at the bound (1e-5 or 1e5); a fit that cannot move keeps its
    start. Cost: :func:`log_marginal_likelihoods` plus O(fits x grid).
    """
    lml = log_marginal_likelihoods(x, y, _GRID_LOG10)
    top = len(_GRID_LOG10) - 1
    step = float(_GRID_LOG10[1] - _GRID_LOG10[0])
    out = np.empty(len(starts))
    peaks: list[tuple[int, int]] = []
    for f, start in enumerate(starts):
        row = lml[f].tolist()
        g = min(max(round((math.log10(start) - float(_GRID_LOG10[0])) / step), 0), top)
        tol = 1e-7 * max(1.0, abs(row[g])) if math.isfinite(row[g]) else 0.0
        left = row[g - 1] if g > 0 else -math.inf
        right = row[g + 1] if g < top else -math.inf
        if right > row[g] + tol and right >= left:
            direction = 1
        elif left > row[g] + tol:
            direction = -1
        else:
            out[f] = start
            continue
        while 0 <= g + direction <= top and row[g + direction] >= row[g] - tol:
            g += direction
        if g in (0, top) and abs(row[g] - row[g - direction]) <= tol:
            out[f] = 10.0 ** _BOUNDS_LOG10[0 if g == 0 else 1]
            continue
        out[f] = math.nan
        peaks.append((f, g))
    if peaks:
        # refine each peak on a fine grid spanning its two neighbours, all fits at once
        offsets = np.linspace(-step, step, _REFINE_POINTS)
        centres = np.array([float(_GRID_LOG10[g]) for _, g in peaks])
        fine = centres[:, None] + offsets[None, :]
        rows = [f for f, _ in peaks]
        values = log_marginal_likelihoods(x[rows], y[rows], fine)
        for i, f in enumerate(rows):
            out[f] = 10.0 ** float(fine[i, int(values[i].argmax())])
    return out
