"""Networks and their save/load: U-Net generators, PatchGAN discriminator."""

from pix2color.models.encoder_unet import HintUNet, MobileNetClassUNet, MobileNetUNet
from pix2color.models.patchgan import PatchDiscriminator
from pix2color.models.unet import UNetGenerator

__all__ = ["HintUNet", "MobileNetClassUNet", "MobileNetUNet", "PatchDiscriminator", "UNetGenerator"]
