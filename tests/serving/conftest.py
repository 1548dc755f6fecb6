"""Stub SavedModels with the tf_faceedit serving signatures (no trained network: a trivial computation), and an
in-process gRPC server over them. The client/server tests use these, so they do not depend on any method."""

import pytest
import tensorflow as tf

STUB_ATTRIBUTES = ("Eyeglasses", "Smiling")
STUB_IMAGE_SIZE = 8


class StubEditor(tf.Module):
    """serving_default: image uint8 [N,H,W,3], attributes float32 [N,2] -> image (inverted where attributes[:, 0]
    > 0.5), attention float32 [N,8,8,1] (mean brightness x attributes[:, 1]); metadata like a SaGAN export."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
            tf.TensorSpec([None, len(STUB_ATTRIBUTES)], tf.float32, name="attributes"),
        ]
    )
    def serve(self, image, attributes):
        flip = tf.reshape(attributes[:, 0] > 0.5, [-1, 1, 1, 1])
        edited = tf.where(flip, 255 - image, image)
        brightness = tf.reduce_mean(tf.cast(image, tf.float32), axis=[1, 2, 3]) / 255.0
        attention = tf.ones([1, STUB_IMAGE_SIZE, STUB_IMAGE_SIZE, 1]) * tf.reshape(
            brightness * attributes[:, 1], [-1, 1, 1, 1]
        )
        return {"image": edited, "attention": attention}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])
    def predict_attributes(self, image):
        bright = tf.cast(tf.reduce_mean(tf.cast(image, tf.float32), axis=[1, 2, 3]) > 127.5, tf.float32)
        return {"attributes": tf.stack([bright, 1 - bright], axis=1)}

    @tf.function(input_signature=[])
    def metadata(self):
        return {
            "method": tf.constant("sagan"),
            "attribute_names": tf.constant(list(STUB_ATTRIBUTES)),
            "image_size": tf.constant(STUB_IMAGE_SIZE, tf.int32),
            "task": tf.constant("edit"),
        }


class StubCompleter(tf.Module):
    """serving_default: image, mask uint8 [N,H,W,1], attributes [N,2] -> raw (a gray image whose value encodes the
    attributes), completed (raw inside the hole, the input outside); metadata like a pggan_completion export."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
            tf.TensorSpec([None, None, None, 1], tf.uint8, name="mask"),
            tf.TensorSpec([None, len(STUB_ATTRIBUTES)], tf.float32, name="attributes"),
        ]
    )
    def serve(self, image, mask, attributes):
        level = tf.cast(64 + 64 * attributes[:, 0] + 32 * attributes[:, 1], tf.uint8)
        raw = tf.ones_like(image) * tf.reshape(level, [-1, 1, 1, 1])
        completed = tf.where(mask > 0, raw, image)
        return {"completed": completed, "raw": raw}

    @tf.function(input_signature=[])
    def metadata(self):
        return {
            "method": tf.constant("pggan_completion"),
            "attribute_names": tf.constant(list(STUB_ATTRIBUTES)),
            "image_size": tf.constant(STUB_IMAGE_SIZE, tf.int32),
            "task": tf.constant("complete"),
        }


def save_stub(module, version_dir):
    signatures = {"serving_default": module.serve, "metadata": module.metadata}
    if hasattr(module, "predict_attributes"):
        signatures["predict_attributes"] = module.predict_attributes
    tf.saved_model.save(module, str(version_dir), signatures=signatures)
    return version_dir


@pytest.fixture(scope="session")
def stub_exports(tmp_path_factory):
    """{"sagan": base dir with version 1, "pggan_completion": base dir with version 1} (EXPORT/NAME/VERSION)."""
    root = tmp_path_factory.mktemp("stub_exports")
    save_stub(StubEditor(), root / "sagan" / "1")
    save_stub(StubCompleter(), root / "pggan_completion" / "1")
    return {"sagan": root / "sagan", "pggan_completion": root / "pggan_completion"}


@pytest.fixture(scope="session")
def stub_server(stub_exports):
    """(address "127.0.0.1:PORT", {name: loaded module}) of an in-process gRPC server on a free loopback port."""
    from tf_faceedit.serving.grpc_server import start_server

    server, port = start_server(stub_exports, port=0)
    modules = {name: tf.saved_model.load(str(path / "1")) for name, path in stub_exports.items()}
    yield f"127.0.0.1:{port}", modules
    server.stop(0)
