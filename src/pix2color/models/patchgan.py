"""The pix2pix PatchGAN discriminator and the GAN loss."""

from __future__ import annotations

import torch
from torch import nn

GAN_MODES = ("vanilla", "lsgan")  # BCE on logits (the pix2pix paper), or least squares


class PatchDiscriminator(nn.Module):
    """PatchGAN: (L, ab) pair (B, 1+2, H, W) -> real/fake logits (B, 1, H', W'), one per patch.

    Instead of one verdict for the whole image, each output value judges one overlapping patch;
    with the default 3 layers every value sees a 70x70 pixel window, so D rewards locally
    plausible colour and texture and leaves the global layout to the L1 term. Fully
    convolutional: works on any input size >= its receptive field.
    """

    def __init__(self, *, in_channels: int = 3, base_channels: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        self.config = dict(in_channels=in_channels, base_channels=base_channels, n_layers=n_layers)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, 2, 1),
            nn.LeakyReLU(0.2),
        ]
        w = base_channels
        for n in range(1, n_layers + 1):
            w_next = base_channels * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last two convolutions keep the size
            layers += [
                nn.Conv2d(w, w_next, 4, stride, 1, bias=False),
                nn.BatchNorm2d(w_next),
                nn.LeakyReLU(0.2),
            ]
            w = w_next
        layers.append(nn.Conv2d(w, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """L (B, 1, H, W) and ab (B, 2, H, W) -> logits (B, 1, H', W')."""
        return self.net(torch.cat([L, ab], dim=1))

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window one output value sees."""
        rf = 1
        for m in reversed(self.net):
            if isinstance(m, nn.Conv2d):
                rf = rf * m.stride[0] + (m.kernel_size[0] - m.stride[0])
        return rf


class GANLoss(nn.Module):
    """The GAN objective on D's logits: 'vanilla' (the pix2pix paper's cross-entropy) or 'lsgan'.

    Hides the target tensor: call it with the logits and whether they should read as real.
    """

    def __init__(self, mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {mode!r}")
        self.mode = mode
        self.real_label, self.fake_label = real_label, fake_label
        self.loss = nn.BCEWithLogitsLoss() if mode == "vanilla" else nn.MSELoss()

    def forward(self, logits: torch.Tensor, real: bool, label: float | None = None) -> torch.Tensor:
        """Scalar loss pushing `logits` towards the real (or fake) label, or `label` if given."""
        if label is None:
            label = self.real_label if real else self.fake_label
        target = torch.full_like(logits, label)
        return self.loss(logits, target)
