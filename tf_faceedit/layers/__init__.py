"""Backend-portable Keras 3 layers shared by every method (keras.layers / keras.ops / keras.random only)."""

from tf_faceedit.layers.attention import AttentionBlend
from tf_faceedit.layers.blocks import ConvNormAct, DownBlock, ResidualBlock, UpBlock
from tf_faceedit.layers.conditioning import TileAttributes
from tf_faceedit.layers.norm import (
    ACTIVATIONS,
    NORMALIZATIONS,
    activation_layer,
    gan_initializer,
    normalization,
)

__all__ = [
    "ACTIVATIONS",
    "NORMALIZATIONS",
    "AttentionBlend",
    "ConvNormAct",
    "DownBlock",
    "ResidualBlock",
    "TileAttributes",
    "UpBlock",
    "activation_layer",
    "gan_initializer",
    "normalization",
]
