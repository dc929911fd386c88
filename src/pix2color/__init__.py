"""pix2color: give black-and-white photographs back their colour.

from pix2color import Colorizer
colorizer = Colorizer.from_pretrained("default")
coloured = colorizer(pil_image)   # same size, same luminance, alpha kept
"""

__version__ = "0.1.0"
__all__ = ["Colorizer", "__version__"]


def __getattr__(name: str):
    if name == "Colorizer":  # imported lazily: `pix2color --help` need not load torch
        from pix2color.inference import Colorizer

        return Colorizer
    raise AttributeError(f"module 'pix2color' has no attribute {name!r}")
