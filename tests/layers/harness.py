"""One harness call per layer configuration, in the manner of keras-hub's `TestCase.run_layer_test`: a layer test
supplies the class, its constructor arguments, an input and the expected output shape; `run_layer_test` checks

  * registration: the class is serializable under `tf_faceedit>ClassName` and comes back without custom_objects;
  * the config: every constructor argument is kept in `get_config()`, `from_config` gives the same config, and the
    rebuilt layer with the same weights computes the same outputs (an argument `get_config` dropped would not);
  * the eager call: output shape (and `compute_output_shape` where the layer defines it) and float32 outputs;
  * the symbolic call: a functional model over `keras.Input`s with an unknown batch size, then called on another
    batch size;
  * `.keras` save/load of that model (non-trainable state, e.g. batch-norm statistics, moved off its initial
    values first) giving identical outputs, with no custom_objects;
  * the dtype policy: under a mixed policy the variables stay float32 and the outputs come in the compute dtype.

`input_data` is an array or a list of arrays (multi-input layers); outputs are compared at `training=False`.
"""

import keras
import numpy as np

MIXED_POLICY = "mixed_bfloat16"  # what train.mixed_precision=auto picks on CPU


def _plain(value):
    """Config values compared as JSON would see them (tuples and lists alike)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _as_list(data):
    return list(data) if isinstance(data, list | tuple) else [data]


def _numpy(outputs):
    return [np.asarray(keras.ops.convert_to_numpy(t)) for t in _as_list(outputs)]


def _symbolic_inputs(input_data):
    inputs = [keras.Input(np.shape(a)[1:], dtype=str(np.asarray(a).dtype)) for a in _as_list(input_data)]
    return inputs if isinstance(input_data, list | tuple) else inputs[0]


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    tmp_path,
    call_kwargs=None,
    expected_num_trainable_weights=None,
    run_mixed_precision_check=True,
    mixed_output_dtype=None,
):
    """Runs the checks of the module docstring; `expected_output_shape` includes the batch dimension.
    `mixed_output_dtype`: the outputs' dtype under the mixed policy when it is not the compute dtype (the squashing
    activations compute in float32, `layers/norm.py`)."""
    call_kwargs = dict(call_kwargs or {})
    expected_output_shape = tuple(expected_output_shape)

    # registration
    name = f"tf_faceedit>{layer_cls.__name__}"
    assert keras.saving.get_registered_name(layer_cls) == name
    serialized = keras.saving.serialize_keras_object(layer_cls(**init_kwargs))
    assert serialized["registered_name"] == name
    assert type(keras.saving.deserialize_keras_object(serialized)) is layer_cls

    # eager call
    layer = layer_cls(**init_kwargs)
    output = layer(input_data, **call_kwargs)
    (first,) = _numpy(output)[:1]
    assert first.shape == expected_output_shape, (first.shape, expected_output_shape)
    assert keras.backend.standardize_dtype(_as_list(output)[0].dtype) == "float32"
    if type(layer).compute_output_shape is not keras.layers.Layer.compute_output_shape:
        shapes = [np.shape(a) for a in _as_list(input_data)]
        computed = layer.compute_output_shape(shapes if isinstance(input_data, list | tuple) else shapes[0])
        assert tuple(computed) == expected_output_shape
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights

    # the config: every constructor argument kept, the round trip exact, the behaviour with it
    config = layer.get_config()
    for key, value in init_kwargs.items():
        if key != "dtype":
            assert key in config and _plain(config[key]) == _plain(value), (key, config.get(key), value)
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    clone(input_data, **call_kwargs)  # build
    clone.set_weights(layer.get_weights())
    for got, want in zip(
        _numpy(clone(input_data, training=False, **call_kwargs)),
        _numpy(layer(input_data, training=False, **call_kwargs)),
    ):
        np.testing.assert_allclose(got, want, atol=1e-6)

    # symbolic call: an unknown batch size, then another batch size
    inputs = _symbolic_inputs(input_data)
    symbolic = layer_cls(**init_kwargs)(inputs, **call_kwargs)
    assert tuple(_as_list(symbolic)[0].shape) == (None, *expected_output_shape[1:])
    model = keras.Model(inputs, symbolic)
    tripled = [np.concatenate([a, a, a]) for a in _as_list(input_data)]
    tripled = tripled if isinstance(input_data, list | tuple) else tripled[0]
    assert _numpy(model(tripled))[0].shape == (3 * expected_output_shape[0], *expected_output_shape[1:])

    # .keras save/load, non-trainable state moved off its initial values first
    rng = np.random.default_rng(0)
    model(input_data, training=True)
    for variable in model.non_trainable_variables:
        if keras.backend.standardize_dtype(variable.dtype).startswith("float"):
            value = keras.ops.convert_to_numpy(variable)
            variable.assign(value + rng.uniform(0.1, 0.5, value.shape).astype(value.dtype))
    expected = _numpy(model(input_data, training=False))
    path = tmp_path / f"{layer_cls.__name__}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # no custom_objects: the layers are registered
    assert len(reloaded.weights) == len(model.weights)
    for got, want in zip(_numpy(reloaded(input_data, training=False)), expected):
        np.testing.assert_array_equal(got, want)

    # dtype policy: float32 variables, outputs in the compute dtype
    if run_mixed_precision_check:
        mixed = layer_cls(**{**init_kwargs, "dtype": MIXED_POLICY})
        output = mixed(input_data, **call_kwargs)
        compute = mixed_output_dtype or keras.dtype_policies.get(MIXED_POLICY).compute_dtype
        for variable in mixed.weights:
            if keras.backend.standardize_dtype(variable.dtype).startswith("float"):
                assert keras.backend.standardize_dtype(variable.dtype) == "float32", variable.path
        for tensor in _as_list(output):
            assert keras.backend.standardize_dtype(tensor.dtype) == compute, (tensor.dtype, compute)
    return layer
