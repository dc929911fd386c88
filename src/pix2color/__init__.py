"""pix2color: give black-and-white photographs back their colour.

from pix2color import Colorizer
colorizer = Colorizer.from_pretrained("default")
coloured = colorizer(pil_image)   # same size, same luminance, alpha kept
"""

from importlib import metadata

try:  # the one place that says the version is pyproject.toml; installing records it
    __version__ = metadata.version("pix2color")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["Colorizer", "__version__"]


def __getattr__(name: str):
    if name == "Colorizer":  # imported lazily: `pix2color --help` need not load torch
        from pix2color.inference.colorizer import Colorizer

        return Colorizer
    raise AttributeError(f"module 'pix2color' has no attribute {name!r}")
