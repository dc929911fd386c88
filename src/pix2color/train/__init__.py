"""Training: `fit(config, run_dir)` (loop.py), one step (step.py), the set-up (setup.py) and
what a run folder shows (records.py)."""

from pix2color.train.loop import fit
from pix2color.train.setup import build_models
from pix2color.train.step import train_step

__all__ = ["build_models", "fit", "train_step"]
