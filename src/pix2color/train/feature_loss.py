"""A feature (perceptual) term for training: how differently a frozen ImageNet network sees the
predicted photo and the true one.

L1 on ab rewards the average of the possible colours, which is grey-beige wherever the colour is
uncertain. A feature distance compares what the photos look like (textures, object colours) in
the eyes of an ImageNet classifier, where a beige parrot is far from a red one. The network is
MobileNetV2 on purpose: the metrics pix2color reports use AlexNet (LPIPS) and InceptionV3 (FID,
KID), and a training loss on a metric's own network would teach the model that metric, not
colour.
"""

from __future__ import annotations

import torch
from torch import nn

from pix2color.color.lab import IMAGENET_MEAN, IMAGENET_STD, lab_tensor_to_rgb
from pix2color.models import mobilenet

# MobileNetV2 stages whose outputs are compared: strides 4, 8 and 16 (24, 32, 96 channels).
# The stride-2 stage sees little beyond edges (which L already fixes); stride 32 at a 224 crop
# is 7x7, too coarse to place colour.
STAGES = (3, 6, 13)


class FeatureLoss(nn.Module):
    """(L, ab predicted, ab true), network scale -> mean over STAGES of the squared distance of
    channel-normalised features (the LPIPS recipe without learned weights).

    Frozen and always in eval mode: its BatchNorm statistics are ImageNet's.
    """

    def __init__(self, *, pretrained: bool = True) -> None:
        super().__init__()
        net = mobilenet.MobileNetV2()
        if pretrained:
            mobilenet.load_imagenet_weights(net)
        self.stages = net.features[: max(STAGES) + 1]
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FeatureLoss:
        return super().train(False)  # never in training mode

    def _features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb - self.mean) / self.std
        out = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in STAGES:
                out.append(x / (x.norm(dim=1, keepdim=True) + 1e-8))  # unit length per pixel
        return out

    def forward(
        self, L: torch.Tensor, ab_fake: torch.Tensor, ab_real: torch.Tensor
    ) -> torch.Tensor:
        fake = self._features(lab_tensor_to_rgb(L, ab_fake))
        with torch.no_grad():
            real = self._features(lab_tensor_to_rgb(L, ab_real))
        per_stage = [(f - r).pow(2).sum(dim=1).mean() for f, r in zip(fake, real, strict=True)]
        return torch.stack(per_stage).mean()
