#!/usr/bin/env bash
# One command for a GPU machine with JAX + CUDA and no TensorFlow (issue 36): every method's paper preset trained at
# 128x128 on the 100 CelebA images for a fixed number of steps on the Keras JAX backend; prints images/s and peak
# memory per method, writes samples.png and gpu_run.json (the file to commit) to $OUT (or gpu_run_out/).
# What must travel with the checkout (docs/jax.md): .whl/ (keras, namex, optree wheels) and .gpu_data/ (the
# images), both ignored folders named in the run's `carry`. Extra arguments go to benchmarks/gpu_run.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
exec python3 benchmarks/gpu_run.py --data_dir .gpu_data/celeba-100-178x218 --out "${OUT:-gpu_run_out}" "$@"
