"""The numbers on the statistics page: MOS with Student's t interval, Wilson win-rate interval."""

import math

import pytest

from pix2color.web.stats import mean_ci, summarize, t_quantile_975, wilson


@pytest.mark.parametrize("df", [1, 2, 5, 29, 30, 31, 40, 100, 1000])
def test_t_quantile_matches_scipy(df):
    scipy_stats = pytest.importorskip("scipy.stats")
    assert t_quantile_975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-4)


def test_mean_ci_of_known_scores():
    scores = [5, 4, 4, 3, 5]
    mean, half = mean_ci(len(scores), sum(scores), sum(s * s for s in scores))
    sd = math.sqrt(sum((s - 4.2) ** 2 for s in scores) / 4)
    assert mean == pytest.approx(4.2)
    assert half == pytest.approx(2.7764 * sd / math.sqrt(5), rel=1e-4)
    assert mean_ci(0, 0, 0) == (None, None)
    assert mean_ci(1, 4, 16) == (4.0, None)  # one score: no interval
    assert mean_ci(3, 9, 27) == (3.0, 0.0)  # all equal


def test_wilson_interval():
    low, high = wilson(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-3)
    low, high = wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    assert wilson(0, 0) is None


def _raw(n, total, total_sq, comparisons=0, wins=0, means=None):
    """model_stats' figures for raters whose own means are `means` (one score each if None)."""
    means = [total / n] * 0 if n == 0 else (means or None)
    return dict(n=n, total=total, total_sq=total_sq, comparisons=comparisons, wins=wins,
                raters=len(means), comparison_raters=int(comparisons > 0),
                rater_total=sum(means), rater_total_sq=sum(m * m for m in means))  # fmt: skip


def test_summarize_lists_served_models_first_even_unrated():
    raw = {"old": _raw(2, 8, 32, comparisons=4, wins=1, means=[4.0, 4.0])}
    rows = summarize(raw, ["default", "small"])
    assert [(r["model"], r["served"], r["n"]) for r in rows] == [
        ("default", True, 0),
        ("small", True, 0),
        ("old", False, 2),
    ]
    assert rows[2]["mos"] == 4.0 and rows[2]["ci"] == (4.0, 4.0) and rows[2]["win_rate"] == 0.25
    assert rows[0]["mos"] is None and rows[0]["win_rate"] is None
    wide = summarize({"m": _raw(2, 7, 25, means=[3.0, 4.0])}, [])[0]
    assert wide["mos"] == 3.5 and wide["ci"] == (1.0, 5.0)  # 3.5 +- 6.35, clipped to the scale


def test_every_rater_weighs_the_same_in_the_mos():
    """One rater with 50 five-star scores and two with one star each: the MOS is the mean of
    the three raters' means (7/3), not of the 52 scores (4.85); its interval is over 3 raters."""
    row = summarize({"m": _raw(52, 252, 1252, means=[5.0, 1.0, 1.0])}, ["m"])[0]
    assert (row["n"], row["raters"]) == (52, 3)
    assert row["mos"] == pytest.approx(7 / 3) and row["ratings_mean"] == pytest.approx(252 / 52)
    assert row["ci"] == (1.0, 5.0)  # three raters who disagree: a wide interval
