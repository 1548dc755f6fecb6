"""Perceptual (feature) loss with a frozen VGG16 truncated at relu2_2, per example [N].

    extractor = vgg16_feature_extractor("imagenet" | "/path/vgg16_notop.weights.h5" | "random")
    loss = perceptual_loss(extractor, real, fake)      # [N]

The extractor maps [N, H, W, 3] RGB images in [-1, 1] to the `block2_conv2` (relu2_2) features [N, H/2, W/2, 128]
of VGG16 (Simonyan & Zisserman, 2015), divided by FEATURE_SCALE = 12.75. The Caffe preprocessing the Keras ImageNet
weights expect is inside the model: x -> (x + 1) * 127.5, RGB -> BGR, minus the ImageNet mean [103.939, 116.779,
123.68]. On that input range relu2_2 activations are tens to hundreds, and a mean squared difference of them is
10^2-10^3 times a pixel loss; dividing the features by 12.75 (Ledig et al., SRGAN, 2017: 1/12.75 = the ratio of the
0-255 Caffe range to the [-1, 1] range, 255 / 2 / 10) brings the loss to order 1, so loss weights quoted for VGG
features of [-1, 1] inputs (lambda_feat = 10 in the face-completion re-implementation) keep their meaning.

Weights (`loss.vgg_weights`):
  * a path to a `.h5` / `.weights.h5` file of VGG16 with include_top=False (Keras' own notop file or one written by
    `keras.applications.VGG16(include_top=False, weights="imagenet").save_weights(...)`);
  * "imagenet": Keras' usual download (or its cache in ~/.keras/models); on failure a ConfigError says what to pass;
  * "random": random initial weights (tests; not a perceptual loss).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras

from tf_faceedit.backend.tensor_types import Shape, Tensor
from tf_faceedit.errors import ConfigError
from tf_faceedit.losses.reduction import as_float_tensor, per_example_mean

VGG_MEAN_BGR = (103.939, 116.779, 123.68)
FEATURE_LAYER = "block2_conv2"
FEATURE_SCALE = 12.75  # relu2_2 features are divided by it (SRGAN's scale; see the module docstring)
IMAGENET_HELP = (
    'nothing can be downloaded here; on a connected machine run `python -c "import keras; '
    "keras.applications.VGG16(include_top=False, weights='imagenet').save_weights('vgg16_notop.weights.h5')\"` and "
    "pass `--set loss.vgg_weights=/path/vgg16_notop.weights.h5`, or `--set loss.lambda_feat=0` to train without the "
    "feature loss"
)


@keras.saving.register_keras_serializable(package="tf_faceedit")
class CaffePreprocess(keras.layers.Layer):
    """[-1, 1] RGB -> the Caffe input of Keras' ImageNet VGG16: (x + 1) * 127.5, RGB -> BGR, minus the BGR mean.

    Input and output [N, H, W, 3].

    Args:
      **kwargs: `keras.layers.Layer` arguments.
    """

    def call(self, inputs: Tensor) -> Tensor:
        x = (as_float_tensor(inputs) + 1.0) * 127.5
        x = keras.ops.flip(x, axis=-1)
        return x - keras.ops.convert_to_tensor(VGG_MEAN_BGR, dtype=x.dtype)

    def compute_output_shape(self, input_shape: Shape) -> tuple[int | None, ...]:
        return tuple(input_shape)


def _vgg16(weights: str | Path) -> keras.Model:
    common = dict(include_top=False, input_shape=(None, None, 3))
    if weights == "random":
        return keras.applications.VGG16(weights=None, **common)
    if weights == "imagenet":
        try:
            return keras.applications.VGG16(weights="imagenet", **common)
        except Exception as err:  # no network, proxy, corrupt cache, ...: one message saying what to do
            raise ConfigError(
                f"loss.vgg_weights=imagenet: the VGG16 ImageNet weights could not be fetched "
                f"({type(err).__name__}); {IMAGENET_HELP}"
            ) from None
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"loss.vgg_weights file not found: {path} (expected a VGG16 include_top=False .h5 or "
            f".weights.h5 file, 'imagenet' or 'random'); {IMAGENET_HELP}"
        )
    if not path.name.endswith(".h5"):
        raise ConfigError(f"loss.vgg_weights {path} must be a .h5 or .weights.h5 file of VGG16 (include_top=False)")
    try:
        return keras.applications.VGG16(weights=str(path), **common)
    except Exception as err:
        raise ConfigError(
            f"loss.vgg_weights {path} could not be loaded into VGG16 (include_top=False): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from None


def vgg16_feature_extractor(weights: str | Path = "imagenet") -> keras.Model:
    """A frozen `keras.Model`: [N, H, W, 3] RGB in [-1, 1] -> VGG16 relu2_2 features / 12.75 [N, H/2, W/2, 128].

    Args:
      weights: "imagenet", "random" or a path to a VGG16 include_top=False weights file (see the module docstring).

    Raises:
      ConfigError: the file is missing or does not fit VGG16, or "imagenet" cannot be fetched (the message says how
        to get the file on a connected machine and which flag to pass).
    """
    vgg = _vgg16(weights)
    trunk = keras.Model(vgg.input, vgg.get_layer(FEATURE_LAYER).output, name="vgg16_to_relu2_2")
    images = keras.Input((None, None, 3), name="image")
    features = trunk(CaffePreprocess(name="caffe_preprocess")(images))
    features = keras.layers.Rescaling(1.0 / FEATURE_SCALE, name="feature_scale")(features)
    model = keras.Model(images, features, name="vgg16_relu2_2")
    model.trainable = False
    return model


def perceptual_loss(extractor: Callable[..., Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """mean((φ(real) − φ(fake))²) over the feature map's H, W, C per example [N], φ = `extractor`.

    Both batches go through the extractor in one call (it has no batch-coupling layers).
    """
    fake = as_float_tensor(fake)
    real = keras.ops.cast(as_float_tensor(real), fake.dtype)
    n = real.shape[0] if real.shape[0] is not None else keras.ops.shape(real)[0]
    features = as_float_tensor(extractor(keras.ops.concatenate([real, fake], axis=0), training=False))
    return per_example_mean(keras.ops.square(features[:n] - features[n:]))
