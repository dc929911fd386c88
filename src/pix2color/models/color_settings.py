"""The colour settings a person may turn, with their one range check.

Two kinds of generator have one setting each for how bold their colour is:
- a regression model (`color_knob = "gain"`) multiplies its predicted ab by the *gain*:
  1 is the network's own (pale) colour, higher is bolder;
- a class model (`color_knob = "temperature"`) decodes its colour distribution at a
  *temperature*: 1 is the mean (pale), lower is bolder.
Calibration, the command line, the web service and the Python API all set them through
`apply_color_settings`, so the ranges and the refusals are the same everywhere.
"""

from __future__ import annotations

from typing import Any

from pix2color.errors import UsageError

GAIN_RANGE = (0.5, 3.0)  # ab times 0.5 (much paler) to 3 (saturating); 1 = unchanged
TEMPERATURE_RANGE = (0.05, 2.0)  # 0.05: close to the mode; 1: the mean; 2: paler still
# the values `pix2color calibrate` tries on the validation photos (train/calibrate.py)
TEMPERATURES = (0.3, 0.38, 0.5, 0.7)
BOOSTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # how much of the class prior's rebalancing is undone
GAINS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8)


def check_gain(gain: float) -> float:
    """`gain` as a float if it is in GAIN_RANGE; else a UsageError that says the range."""
    lo, hi = GAIN_RANGE
    if not lo <= gain <= hi:  # `not` also refuses NaN
        raise UsageError(
            f"gain {gain} is out of range: use {lo:g} to {hi:g} (1: the network's own colour, "
            "higher: bolder)"
        )
    return float(gain)


def check_temperature(temperature: float) -> float:
    """`temperature` as a float if it is in TEMPERATURE_RANGE; else a UsageError."""
    lo, hi = TEMPERATURE_RANGE
    if not lo <= temperature <= hi:
        raise UsageError(
            f"temperature {temperature} is out of range: use {lo:g} to {hi:g} (lower: bolder)"
        )
    return float(temperature)


def color_knob(G: Any) -> str | None:
    """ "gain", "temperature" or None: the colour setting a generator has."""
    return getattr(G, "color_knob", None)


def check_color_settings(
    knob: str | None, *, gain: float | None = None, temperature: float | None = None
) -> None:
    """Refuse a gain or temperature that a model with this `knob` does not have, or out of range."""
    wrong = {
        "gain": "a gain applies only to models that predict colour directly (such as default "
        "or mobilenet-l1)" + ("; for a colour-class model use --temperature" if knob else ""),
        "temperature": "a temperature applies only to models that predict colour classes; this "
        "model predicts colour directly"
        + (": use --gain for bolder or safer colour" if knob else ""),
    }
    for name, value, check in (
        ("gain", gain, check_gain),
        ("temperature", temperature, check_temperature),
    ):
        if value is None:
            continue
        if knob != name:
            raise UsageError(wrong[name])
        check(value)


def apply_color_settings(
    G: Any, *, gain: float | None = None, temperature: float | None = None
) -> None:
    """Set G's gain or temperature (None leaves it); refuse the setting G does not have."""
    check_color_settings(color_knob(G), gain=gain, temperature=temperature)
    if gain is not None:
        G.set_ab_gain(float(gain))
    if temperature is not None:
        G.set_temperature(float(temperature))
