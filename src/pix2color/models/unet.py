"""The pix2pix U-Net generator, written as a flat list of down and up blocks (no recursion)."""

from __future__ import annotations

import torch
from torch import nn

from pix2color.models.base import Generator, pad_to_multiple, saves_config


class UNetGenerator(Generator):
    """pix2pix U-Net: L (B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1], any H and W.

    `depth` stride-2 4x4 convolutions halve the size down to the bottleneck (depth 8 takes
    256 px to 1 px, the reference `unet_256`); mirrored transposed convolutions come back up,
    each joined with the encoder features of the same size. Widths double from
    `base_channels` up to `max_channels`. Inputs whose sides are not multiples of 2**depth are
    padded (edge replicated) and the output is cropped back, so every size works.
    """

    architecture = "unet"

    @saves_config
    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        base_channels: int = 64,
        depth: int = 8,
        max_channels: int = 512,
        dropout: float = 0.5,
        dropout_blocks: int = 3,
    ) -> None:
        super().__init__()
        assert depth >= 2, f"depth must be at least 2, got {depth}"
        self.factor = 2**depth
        widths = [min(base_channels * 2**i, max_channels) for i in range(depth)]

        self.downs = nn.ModuleList()
        for i, w in enumerate(widths):
            if i == 0:  # the outermost block sees raw L: no activation, no norm
                block = nn.Conv2d(in_channels, w, 4, 2, 1)
            else:
                layers = [nn.LeakyReLU(0.2), nn.Conv2d(widths[i - 1], w, 4, 2, 1, bias=False)]
                if i < depth - 1:  # the 1x1 bottleneck has no norm (BatchNorm on 1 value per map)
                    layers.append(nn.BatchNorm2d(w))
                else:
                    layers[-1] = nn.Conv2d(widths[i - 1], w, 4, 2, 1)
                block = nn.Sequential(*layers)
            self.downs.append(block)

        self.ups = nn.ModuleList()
        for i in reversed(range(1, depth)):  # from the bottleneck up to the second block
            in_w = widths[i] if i == depth - 1 else 2 * widths[i]  # the bottleneck has no skip
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(in_w, widths[i - 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(widths[i - 1]),
            ]
            # pix2pix puts dropout (its only noise source) in the innermost up blocks
            if depth - 1 - i < dropout_blocks and i < depth - 1 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))
        self.head = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1), nn.Tanh()
        )

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [-1, 1] -> ab (B, 2, H, W) in [-1, 1]."""
        h, w = L.shape[-2:]
        x = pad_to_multiple(L, self.factor)
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck feeds the decoder directly
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], dim=1)
        return self.head(x)[..., :h, :w]
