"""The colour space's numbers, in one place: sRGB / D65 CIELAB (scikit-image's values) and the
network's value scaling. Plain numpy: lab.py builds torch tensors from them, rows.py uses them
as they are."""

from __future__ import annotations

import numpy as np

L_SCALE, L_SHIFT = 50.0, 1.0  # L in [0, 100] -> L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # ab in about [-110, 110] -> ab / 110 in about [-1, 1]
# RGB in [0, 1] -> (RGB - mean) / std: the input convention of ImageNet-trained encoders
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# sRGB (linear) -> XYZ under D65, and the D65 white point
RGB2XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
EPS, KAPPA = 0.008856, 7.787  # CIE's linear segment of f(t) near black
