"""Attention-mask blending of an edited image with the original.

Images are [N, H, W, C] in [-1, 1]; the mask is [N, H, W, 1] in [0, 1] (1 = take the edited pixel) and broadcasts
over channels. The output keeps the original outside the attended region, which is what lets SaGAN and
AttentionGAN edit one attribute without touching the rest of the face.
"""

import keras


@keras.saving.register_keras_serializable(package="tf_faceedit")
class AttentionBlend(keras.layers.Layer):
    """Blends `edited * mask + original * (1 - mask)`.

    This is SaGAN's `I_hat = I_a * b + I * (1 - b)`, with `I_a` the attribute-manipulation network's output, `b`
    the spatial attention mask and `I` the input face (Zhang et al., "Generative Adversarial Network with Spatial
    Attention for Face Attribute Editing", ECCV 2018); AttentionGAN uses the same composition.

    call([edited, original, mask]) with edited/original [N, H, W, C] and mask [N, H, W, 1] (or [N, H, W, C]);
    returns [N, H, W, C] in the dtype of `edited`.

    Args:
      **kwargs: `keras.layers.Layer` arguments (name, dtype, ...).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(f"AttentionBlend expects inputs [edited, original, mask], got shapes {input_shape!r}")

    def call(self, inputs):
        edited, original, mask = inputs
        original = keras.ops.cast(original, edited.dtype)
        mask = keras.ops.cast(mask, edited.dtype)
        return edited * mask + original * (1.0 - mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
