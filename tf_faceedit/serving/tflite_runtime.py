"""A network's float32 forward run in-process by the TFLite interpreter (its XNNPACK CPU kernels): one of the two
engines of `processing.CompiledInference` (`tf_faceedit.load(..., engine=...)`).

    network = TFLiteNetwork(trainer.infer, {"image": tf.TensorSpec([None, 64, 64, 3]), "attributes": ...})
    out = network({"image": x, "attributes": a})        # numpy in, {name: float32 numpy} out

The network is traced once with a dynamic batch, its variables folded into constants, and converted with TFLite's
builtin ops only; an interpreter is planned per batch size (the last `MAX_PLANS` kept). XNNPACK runs small batch-1
convolutions with far less per-op overhead than TensorFlow's executor: the Fader autoencoder at 64² takes 1.0 ms
against 2.9 ms frozen in TensorFlow on a 2-core AVX-512 CPU, while TensorFlow's oneDNN kernels win on SaGAN's large
128² maps (docs/RESULTS.md, 2026-12-04, eighth sitting); `CompiledInference(engine="auto")` measures which.

The same float32 sums in another order: outputs agree with TensorFlow's to about 1e-5 (checked at construction
against the TensorFlow function on one random batch: `AGREEMENT`).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tf_faceedit.backend.tensor_types import Tensor

log = logging.getLogger("tf_faceedit")

MAX_PLANS = 4  # interpreters kept, one per batch size
AGREEMENT = 1e-3  # largest |TFLite - TensorFlow| accepted at construction, on outputs of order 1


class TFLiteUnavailable(RuntimeError):
    """The network cannot run in TFLite (an op without a builtin kernel, or outputs that disagree); the reason is
    the message."""


def default_threads() -> int:
    """TensorFlow's intra-op thread count when set, else the cores this process may use."""
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    if threads > 0:
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def make_interpreter(model: str | Path | bytes, num_threads: int | None = None) -> Any:
    """A TFLite interpreter over a .tflite path or flatbuffer bytes: LiteRT's (`ai_edge_litert`, the interpreter's
    new home) when installed, else `tf.lite.Interpreter`. `interpreter.get_signature_runner()` runs the model."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        Interpreter = tf.lite.Interpreter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interpreter = Interpreter(num_threads=num_threads, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


class TFLiteNetwork:
    """`infer(dict) -> dict` (float32, model resolution) through the TFLite interpreter (see the module docstring).

    Args:
      infer: the network's forward on a dict of tensors (a trainer's `infer`).
      specs: {name: tf.TensorSpec} of its inputs, batch None, the other dimensions known.
      num_threads: the interpreter's threads (default `default_threads()`).
    Raises:
      TFLiteUnavailable: the conversion failed, or the converted network disagrees with `infer` (see AGREEMENT).
    """

    def __init__(
        self,
        infer: Callable[[dict[str, tf.Tensor]], Mapping[str, Tensor]],
        specs: Mapping[str, tf.TensorSpec],
        num_threads: int | None = None,
    ) -> None:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        self.input_names = list(specs)
        self.specs = {name: tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in specs.items()}
        self.num_threads = int(num_threads or default_threads())

        @tf.function(input_signature=[self.specs[name] for name in self.input_names])
        def network(*args):
            out = infer(dict(zip(self.input_names, args)))
            return {key: tf.cast(value, tf.float32) for key, value in dict(out).items()}

        concrete = network.get_concrete_function()
        # a frozen function returns the flat outputs in tf.nest order (a dict's: sorted keys)
        self.output_names = sorted(concrete.structured_outputs)
        self.output_specs = {
            key: tf.TensorSpec([None, *value.shape[1:]], tf.float32, name=key)
            for key, value in concrete.structured_outputs.items()
        }
        frozen = convert_variables_to_constants_v2(concrete)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            self.model = converter.convert()
        except Exception as err:  # ConverterError, and the MLIR passes' own errors
            text = str(err).strip()
            raise TFLiteUnavailable(f"the converter failed: {text.splitlines()[-1][:300] if text else err!r}") from None
        self._plans: collections.OrderedDict[int, tuple[Any, list[int], list[int]]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._check(network)

    def _plan(self, batch: int) -> tuple[Any, list[int], list[int]]:
        """(interpreter, input tensor indices in `input_names` order, output indices in `output_names` order)."""
        plan = self._plans.get(batch)
        if plan is not None:
            self._plans.move_to_end(batch)
            return plan
        interpreter = make_interpreter(self.model, num_threads=self.num_threads)
        details = interpreter.get_input_details()
        inputs = [self._find(details, name, i) for i, name in enumerate(self.input_names)]
        for index, name in zip(inputs, self.input_names):
            interpreter.resize_tensor_input(index, [batch, *self.specs[name].shape[1:]], strict=True)
        interpreter.allocate_tensors()
        outputs = [d["index"] for d in sorted(interpreter.get_output_details(), key=self._output_position)]
        if len(outputs) != len(self.output_names):
            raise TFLiteUnavailable(f"the converted network has {len(outputs)} outputs, not {len(self.output_names)}")
        plan = (interpreter, inputs, outputs)
        self._plans[batch] = plan
        while len(self._plans) > MAX_PLANS:
            self._plans.popitem(last=False)
        return plan

    @staticmethod
    def _output_position(detail: dict) -> tuple[int, int]:
        """The frozen function's outputs are "Identity", "Identity_1", ... in `output_names` order."""
        match = re.fullmatch(r"Identity(?:_(\d+))?(?::\d+)?", detail["name"])
        return (0, int(match.group(1) or 0)) if match else (1, detail["index"])

    @staticmethod
    def _find(details: list[dict], name: str, position: int) -> int:
        """The interpreter's input tensor for `name` (the converter names it after the placeholder)."""
        matches = [d["index"] for d in details if d["name"].split(":")[0] == name]
        matches = matches or [d["index"] for d in details if d["name"].split(":")[0].endswith("_" + name)]
        if len(matches) == 1:
            return matches[0]
        if len(details) > position:
            return sorted(details, key=lambda d: d["index"])[position]["index"]
        raise TFLiteUnavailable(f"the converted network has no input {name!r}")

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        arrays = [
            np.ascontiguousarray(np.asarray(inputs[name], self.specs[name].dtype.as_numpy_dtype))
            for name in self.input_names
        ]
        batch = int(arrays[0].shape[0])
        with self._lock:  # an interpreter runs one call at a time
            interpreter, input_index, output_index = self._plan(batch)
            for index, array in zip(input_index, arrays):
                interpreter.set_tensor(index, array)
            interpreter.invoke()
            values = [interpreter.get_tensor(index) for index in output_index]
        return dict(zip(self.output_names, values))

    def _check(self, network: Callable[..., Mapping[str, tf.Tensor]]) -> None:
        """The converted network against the TensorFlow function on one random batch of 2."""
        rng = np.random.RandomState(0)
        inputs = {}
        for name, spec in self.specs.items():
            shape = [2, *spec.shape[1:]]
            inputs[name] = (rng.uniform(-1, 1, shape) if name == "image" else rng.randint(0, 2, shape)).astype(
                spec.dtype.as_numpy_dtype
            )
        expected = {key: value.numpy() for key, value in network(*[inputs[n] for n in self.input_names]).items()}
        got = self(inputs)
        for key, value in expected.items():
            if got[key].shape != value.shape:
                raise TFLiteUnavailable(
                    f"output {key!r} has shape {got[key].shape} in TFLite, {value.shape} in TensorFlow"
                )
            diff = float(np.max(np.abs(got[key] - value))) if value.size else 0.0
            if not diff <= AGREEMENT:
                raise TFLiteUnavailable(f"output {key!r} is {diff:.3g} off TensorFlow's (more than {AGREEMENT})")
        self._plans.clear()
