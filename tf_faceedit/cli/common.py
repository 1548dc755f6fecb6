"""Shared CLI plumbing: quiet TensorFlow start-up, logging, and one-line errors for user mistakes."""

import logging
import os
import sys


def quiet_tensorflow():
    """Hides TensorFlow's C++ start-up chatter (call before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def setup_logging(verbose=True):
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def main_wrapper(fn):
    """Runs fn(); a FaceEditError becomes `error: <message>` on stderr and exit code 2, or the error's `exit_code`
    (training interrupted by a signal: 128 + its number), with no traceback."""
    from tf_faceedit.errors import FaceEditError

    try:
        return fn()
    except FaceEditError as err:
        print(f"error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


MODEL_HELP = "zoo model name (python -m tf_faceedit.pretrained lists them), or a training run / export version folder"


def add_model_argument(parser, **kwargs):
    """`--model NAME_OR_PATH`: a zoo name (`tf_faceedit.pretrained`) or a folder, as `tf_faceedit.load` takes."""
    return parser.add_argument("--model", help=MODEL_HELP, **kwargs)


def add_option_argument(parser):
    """`--option model.FIELD=VALUE` (repeatable): an inference option of the model's method (`with_options`)."""
    return parser.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="model.FIELD=VALUE",
        help="an inference option of the method, e.g. --option model.residual_gain=1.5 (repeatable; Fader and "
        "IcGAN: residual_edit, residual_gain, residual_highpass_sigma, residual_highpass; IcGAN: refine_steps, "
        "refine_lr)",
    )


def with_options(model, assignments):
    """`model` with the `--option model.FIELD=VALUE` assignments (`model_source.with_options`), or as it is when
    there are none; ConfigError naming a malformed one."""
    from tf_faceedit.errors import ConfigError
    from tf_faceedit.model_source import with_options as source_with_options

    options = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        field = key.strip().removeprefix("model.")
        if not sep or not key.strip().startswith("model.") or not field or not value.strip():
            raise ConfigError(f"--option expects model.FIELD=VALUE (e.g. model.residual_gain=1.5), got {assignment!r}")
        options[field] = value.strip()
    return source_with_options(model, **options) if options else model


def add_precision_argument(parser):
    """`--precision float32|bfloat16`: the networks' compute dtype, as `tf_faceedit.load(precision=...)` takes."""
    return parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="compute dtype of the networks (bfloat16: several times faster on CPUs with AMX, outputs within a "
        "few levels of float32's; not for an --export_dir)",
    )


def add_engine_argument(parser):
    """`--engine auto|tensorflow|tflite`: what runs the networks, as `tf_faceedit.load(engine=...)` takes."""
    return parser.add_argument(
        "--engine",
        choices=["auto", "tensorflow", "tflite"],
        default="auto",
        help="what runs the networks of a model_dir or zoo model: auto (default) = TensorFlow or the TFLite "
        "interpreter, whichever is faster on this machine at batch sizes <= 4 (timed at the first call); "
        "tflite: float32 only",
    )


def run_cli(work, verbose=True):
    """The shared tail of a CLI's main(): quiet TensorFlow start-up, logging, then `main_wrapper(work)`.

    `work` does the imports and the job, so TensorFlow is imported after its start-up chatter is turned down."""
    quiet_tensorflow()
    setup_logging(verbose)
    return main_wrapper(work)
