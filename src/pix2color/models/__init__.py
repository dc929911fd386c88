"""Networks and their save/load: U-Net generators, PatchGAN discriminator, encoders, ONNX.

The package imports nothing itself (`from pix2color.models.io import resolve` must not load
torch); the networks are in their modules, or here by name, loaded on first use.
"""

_WHERE = {
    "HintUNet": "encoder_unet",
    "MobileNetClassUNet": "encoder_unet",
    "MobileNetUNet": "encoder_unet",
    "PatchDiscriminator": "patchgan",
    "UNetGenerator": "unet",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"pix2color.models.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'pix2color.models' has no attribute {name!r}")
