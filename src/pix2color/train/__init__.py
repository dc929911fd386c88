"""Training: `fit(config, run_dir)` (loop.py), one step (step.py), the set-up (setup.py) and
what a run folder shows (records.py). The package itself loads nothing: `pix2color.train.config`
and the others import without the training loop."""

_WHERE = {"fit": "loop", "build_models": "setup", "train_step": "step"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"pix2color.train.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'pix2color.train' has no attribute {name!r}")
