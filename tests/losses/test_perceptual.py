import keras
import numpy as np
import pytest
from keras import ops

from tf_faceedit.errors import ConfigError
from tf_faceedit.losses import perceptual, perceptual_loss, vgg16_feature_extractor


@pytest.fixture(scope="module")
def random_extractor():
    return vgg16_feature_extractor("random")


def test_caffe_preprocessing_golden():
    pixel = np.array([1.0, -1.0, 0.0], "float32").reshape(1, 1, 1, 3)  # RGB (255, 0, 127.5)
    out = ops.convert_to_numpy(perceptual.CaffePreprocess()(pixel))[0, 0, 0]
    np.testing.assert_allclose(out, [127.5 - 103.939, 0.0 - 116.779, 255.0 - 123.68], rtol=1e-6)  # BGR minus mean


def test_random_extractor_is_frozen_relu2_2(random_extractor):
    assert random_extractor.trainable_variables == []
    assert len(random_extractor.non_trainable_variables) == 8  # 4 convs (block1_conv1 .. block2_conv2), no more
    features = random_extractor(np.zeros((2, 16, 16, 3), "float32"))
    assert tuple(features.shape) == (2, 8, 8, 128)
    assert float(ops.min(features)) >= 0.0  # relu2_2


def test_perceptual_loss_zero_for_identical_and_per_example(random_extractor):
    rng = np.random.RandomState(0)
    real = rng.uniform(-1, 1, (3, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(perceptual_loss(random_extractor, real, real)), np.zeros(3))
    fake = real.copy()
    fake[1] = -fake[1]
    loss = ops.convert_to_numpy(perceptual_loss(random_extractor, real, fake))
    assert loss.shape == (3,)
    assert loss[0] == 0.0 and loss[2] == 0.0 and loss[1] > 0.0


def test_weights_file_round_trip(tmp_path, random_extractor):
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    vgg.save_weights(path)
    extractor = vgg16_feature_extractor(str(path))
    x = np.random.RandomState(1).uniform(-1, 1, (1, 8, 8, 3)).astype("float32")
    trunk = keras.Model(vgg.input, vgg.get_layer("block2_conv2").output)
    expected = ops.convert_to_numpy(trunk(perceptual.CaffePreprocess()(x))) / 12.75  # SRGAN's feature scale
    np.testing.assert_allclose(ops.convert_to_numpy(extractor(x)), expected, rtol=1e-5)
    assert perceptual.FEATURE_SCALE == 12.75


def test_bad_weights_paths(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(ConfigError, match=f"loss.vgg_weights file not found: {missing}"):
        vgg16_feature_extractor(str(missing))
    text = tmp_path / "weights.txt"
    text.write_text("x")
    with pytest.raises(ConfigError, match="must be a .h5 or .weights.h5 file"):
        vgg16_feature_extractor(str(text))
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="could not be loaded into VGG16"):
        vgg16_feature_extractor(str(broken))


def test_imagenet_failure_says_what_to_pass(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(ConfigError) as err:
        vgg16_feature_extractor("imagenet")
    message = str(err.value)
    assert "nothing can be downloaded here" in message
    assert (
        "keras.applications.VGG16(include_top=False, weights='imagenet').save_weights('vgg16_notop.weights.h5')"
        in message
    )
    assert "--set loss.vgg_weights=/path/vgg16_notop.weights.h5" in message
    assert "--set loss.lambda_feat=0" in message
