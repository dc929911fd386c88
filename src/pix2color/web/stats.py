"""People's judgement of the models: mean opinion score with a 95% interval, and win rate.

- MOS: the mean over raters of each rater's mean 1-5 score (every rater weighs the same, however
  many photos they rate); its 95% confidence interval is mean +- t(0.975, n-1) * s/sqrt(n) over
  the n raters' means (Student's t, since rater counts are often small), clipped to the 1-5
  scale; none for fewer than two raters.
- Win rate: how often a model's result was picked as the best among the results it was shown
  with; the interval is Wilson's score interval, which behaves at 0/n and n/n.
"""

from __future__ import annotations

import math
from statistics import NormalDist

# t(0.975, df) for df = 1..30; beyond, a Cornish-Fisher expansion around the normal quantile
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
Z975 = NormalDist().inv_cdf(0.975)


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be 1 or more, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(n: int, total: float, total_sq: float) -> tuple[float | None, float | None]:
    """(mean, half-width of its 95% interval) from a count, a sum and a sum of squares."""
    if n == 0:
        return None, None
    mean = total / n
    if n < 2:
        return mean, None
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    return mean, t_quantile_975(n - 1) * math.sqrt(var / n)


def wilson(wins: int, n: int) -> tuple[float, float] | None:
    """Wilson's 95% score interval for a proportion wins/n (None when n is 0)."""
    if n == 0:
        return None
    p, z2 = wins / n, Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(raw: dict[str, dict[str, float]], models: list[str]) -> list[dict]:
    """Rows for the statistics page: every served model, then any model seen only in ratings.

    MOS is the mean of the raters' own means (store.model_stats), so that a rater who scores a
    hundred photos weighs what one who scores one does; its interval is over the raters
    (n = raters). `ratings_mean` is the plain mean of every score, for comparison.
    """
    rows = []
    for model in list(models) + sorted(set(raw) - set(models)):
        r = raw.get(model, {})
        n, comparisons, wins = r.get("n", 0), r.get("comparisons", 0), r.get("wins", 0)
        raters = int(r.get("raters", 0))
        mean, half = mean_ci(raters, r.get("rater_total", 0.0), r.get("rater_total_sq", 0.0))
        # the interval is clipped to the 1-5 scale (with few ratings t's interval is wide)
        ci = None if half is None else (max(1.0, mean - half), min(5.0, mean + half))
        rows.append(
            dict(
                model=model,
                served=model in models,
                n=n,
                raters=raters,
                mos=mean,
                ci=ci,
                ratings_mean=r["total"] / n if n else None,
                comparisons=comparisons,
                comparison_raters=int(r.get("comparison_raters", 0)),
                wins=wins,
                win_rate=wins / comparisons if comparisons else None,
                win_ci=wilson(wins, comparisons),
            )
        )
    return rows
