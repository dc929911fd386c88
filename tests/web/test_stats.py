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


def test_summarize_lists_served_models_first_even_unrated():
    raw = {"old": dict(n=2, total=8, total_sq=32, comparisons=4, wins=1)}
    rows = summarize(raw, ["default", "small"])
    assert [(r["model"], r["served"], r["n"]) for r in rows] == [
        ("default", True, 0),
        ("small", True, 0),
        ("old", False, 2),
    ]
    assert rows[2]["mos"] == 4.0 and rows[2]["ci"] == (4.0, 4.0) and rows[2]["win_rate"] == 0.25
    assert rows[0]["mos"] is None and rows[0]["win_rate"] is None
    wide = summarize({"m": dict(n=2, total=7, total_sq=25, comparisons=0, wins=0)}, [])[0]
    assert wide["mos"] == 3.5 and wide["ci"] == (1.0, 5.0)  # 3.5 +- 6.35, clipped to the scale
