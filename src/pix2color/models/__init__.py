"""Networks and their save/load: U-Net generator, PatchGAN discriminator."""

from pix2color.models.patchgan import PatchDiscriminator
from pix2color.models.unet import UNetGenerator

__all__ = ["PatchDiscriminator", "UNetGenerator"]
