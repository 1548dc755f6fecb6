"""Backend-portable Keras 3 layers shared by every method (keras.layers / keras.ops / keras.random only)."""

from tf_faceedit.layers.attention import AttentionBlend, MultiMaskBlend
from tf_faceedit.layers.blocks import ConvNormAct, DownBlock, ResidualBlock, UpBlock
from tf_faceedit.layers.conditioning import TileAttributes
from tf_faceedit.layers.norm import (
    ACTIVATIONS,
    NORMALIZATIONS,
    activation_layer,
    gan_initializer,
    normalization,
)
from tf_faceedit.layers.progressive import FadeIn, MinibatchStddev, downsample2x, upsample2x

__all__ = [
    "ACTIVATIONS",
    "NORMALIZATIONS",
    "AttentionBlend",
    "ConvNormAct",
    "DownBlock",
    "FadeIn",
    "MinibatchStddev",
    "MultiMaskBlend",
    "ResidualBlock",
    "TileAttributes",
    "UpBlock",
    "activation_layer",
    "downsample2x",
    "gan_initializer",
    "normalization",
    "upsample2x",
]
