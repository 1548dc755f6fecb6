"""Export a trained run as a TF Serving SavedModel (and its networks as `.keras` files).

    python -m tf_faceedit.export --model_dir=RUN --export_dir=BASE/NAME/VERSION [--checkpoint=RUN/checkpoints/ckpt-N]
    python -m tf_faceedit.export --model sagan-eyeglasses-64 --export_dir=BASE/sagan/1    # a zoo model
    python -m tf_faceedit.export --model_dir=RUN --format=tflite --export_dir=OUT [--precision=float16]

VERSION must be an integer (TF Serving's layout) and must not exist yet. --format=tflite writes on-device models
(model_float32.tflite, model_float16.tflite, tflite.json) into a new folder: `tf_faceedit.serving.tflite_export`.
The CLI only parses: `tf_faceedit.serving.export_lib.export` does the work (see there for the signatures, the
layout and the table of formats, `FORMATS`).
"""

import argparse
import sys

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.export",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model_dir", help="training run folder (config.yaml, checkpoints/)")
    common.add_model_argument(source)
    parser.add_argument(
        "--export_dir", required=True, help="BASE/NAME/VERSION, VERSION an integer (--format=tflite: a new folder)"
    )
    parser.add_argument("--checkpoint", help="a ckpt-XXXXXXXX folder (default: the latest of --model_dir)")
    parser.add_argument(
        "--format",
        default="savedmodel",
        help="a name of tf_faceedit.serving.export_lib.FORMATS: savedmodel (TF Serving, default) or tflite (on-device)",
    )
    parser.add_argument(
        "--precision",
        default="all",
        choices=["all", "float32", "float16"],
        help="--format=tflite: the models written (default: float32 and float16)",
    )
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit.serving import export_lib

        fmt = export_lib.FORMATS.get(args.format)
        # the flags that are format options: each format takes those it names (`ExportFormat.options`)
        flags = {"precisions": None if args.precision == "all" else (args.precision,)}
        options = {name: value for name, value in flags.items() if fmt is not None and name in fmt.options}
        result = export_lib.export(
            args.model or args.model_dir, args.export_dir, args.checkpoint, format=args.format, **options
        )
        print(f"exported {result['method']} step {result['step']} to {result['export_dir']}{fmt.describe(result)}")
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
