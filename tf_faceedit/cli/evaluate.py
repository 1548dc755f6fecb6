"""Evaluate a trained run: edit success, preservation, reconstruction, completion quality, FID/KID and speed.

    python -m tf_faceedit.evaluate --model_dir=RUN --data_dir=DIR --split=test --classifier=CLS_RUN \
        [--inception_weights=inception_v3_notop.h5] [--max_images=500] [--min_classifier_accuracy=0.8]
    python -m tf_faceedit.evaluate --model sagan-eyeglasses-64 --data_dir=DIR ...     # a zoo model
    python -m tf_faceedit.evaluate --model NAME --data_dir=DIR --set data.partition_file=MY_SPLIT.txt ...

Writes RUN/eval/<split>/metrics.json, metrics.md and figures/*.png (see `tf_faceedit.eval.evaluation` for what is
measured).
A zoo model reads --data_dir's own files (list_eval_partition.txt when there is one; --set data.partition_file=FILE
for another split file, relative to --data_dir or absolute): its config names no file of the machine it was trained
on. A run folder reads its own config's locations unless --data_dir / --set replace them.
CLS_RUN is a run of `python -m tf_faceedit.train --method=classifier` or a zoo judge (classifier-celeba-64, the
judge of docs/BENCHMARK.md); without it, edit success is not scored and FID/KID need --inception_weights.
The CLI only parses: `tf_faceedit.eval.evaluation.evaluate` does the work.
"""

import argparse
import sys
from pathlib import Path

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model_dir", help="run folder of the model to evaluate")
    common.add_model_argument(source)
    parser.add_argument("--data_dir", help="dataset folder (default: the run's data.data_dir)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument(
        "--set",
        dest="data_locations",
        action="append",
        default=[],
        metavar="data.FIELD=PATH",
        help="where the data is on this machine: data.partition_file, data.image_dir or data.attr_file (relative to "
        "--data_dir, or absolute); repeatable",
    )
    parser.add_argument(
        "--classifier",
        help="the judge of edit success: a --method=classifier run folder, or a zoo judge name "
        "(classifier-celeba-64: the judge of docs/BENCHMARK.md)",
    )
    parser.add_argument("--inception_weights", help="InceptionV3 (include_top=False) weights file for true FID/KID")
    parser.add_argument("--max_images", type=int, help="evaluate the first N images of the split")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--min_classifier_accuracy",
        type=float,
        default=0.8,
        help="do not score an attribute on which the classifier's balanced val accuracy is below this",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the completion masks and KID subsets")
    parser.add_argument(
        "--mask_kind",
        choices=["noise", "rect", "mixed", "parts", "noise+parts"],
        help="completion: hole kind of the run-mask table (default: the run's data.mask.kind); the noise and "
        "face-part box tables are always measured",
    )
    parser.add_argument(
        "--identity",
        choices=["auto", "on", "off"],
        default="auto",
        help="editing methods: identity (dlib's face recognizer, pip install 'tf_faceedit[identity]'): auto measures "
        "it when installed, on fails in one line when not",
    )
    parser.add_argument(
        "--photos",
        metavar="DIR",
        help="the photo benchmark instead of the test part: a CelebA-format folder of photos larger than the model "
        "(e.g. celeba-wild-500; never train on it), edited through the photo path (detect, align, edit, paste back)",
    )
    common.add_option_argument(parser)
    parser.add_argument("--out_dir", help="report folder (default RUN/eval/<split>; a zoo model: eval/NAME/<split>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return parser.parse_args(argv)


def parse_data_locations(assignments):
    """["data.partition_file=split.txt"] -> {"partition_file": "split.txt"}; ConfigError naming a malformed one or a
    field that is not a data location (data.data_dir: use --data_dir)."""
    from tf_faceedit.errors import ConfigError

    allowed = ("partition_file", "image_dir", "attr_file")
    values = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        field = key.strip().removeprefix("data.")
        if not sep or not key.strip().startswith("data.") or field not in allowed or not value.strip():
            hint = " (the dataset folder is --data_dir)" if field == "data_dir" else ""
            if key.strip().startswith("model."):
                hint = " (an inference option of the method: --option model.FIELD=VALUE)"
            raise ConfigError(
                f"--set expects data.FIELD=PATH with FIELD one of {', '.join(allowed)}{hint}, got {assignment!r}"
            )
        values[field] = value.strip()
    return values


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit.errors import ConfigError
        from tf_faceedit.eval import evaluation
        from tf_faceedit.eval.report import markdown_report

        if args.batch_size < 1:
            raise ConfigError(f"--batch_size must be >= 1, got {args.batch_size}")
        if args.max_images is not None and args.max_images < 1:
            raise ConfigError(f"--max_images must be >= 1, got {args.max_images}")
        from tf_faceedit import api, model_source

        model, out_dir = args.model or args.model_dir, args.out_dir
        entry = model_source.locate(model).entry
        locations = parse_data_locations(args.data_locations)
        if locations:
            model = api.with_data(model, **locations)
        model = common.with_options(model, args.options)
        if entry is not None and not args.data_dir and not args.photos:
            raise ConfigError(f"--model {entry.name} is a zoo model: give --data_dir (a CelebA-format folder)")
        if entry is not None and out_dir is None:  # not into the installed package
            out_dir = f"eval/{entry.name}/{args.split}"
        if args.photos:
            from tf_faceedit.eval import photos

            report = photos.evaluate_photos(
                model,
                args.photos,
                classifier=args.classifier,
                min_classifier_accuracy=args.min_classifier_accuracy,
                max_images=args.max_images,
                out_dir=out_dir or f"eval/{Path(str(model)).name}/photos",
                identity={"auto": "auto", "on": True, "off": False}[args.identity],
                verbose=0 if args.quiet else 1,
            )
            print(photos.markdown_report(report))
            return 0
        report = evaluation.evaluate(
            model,
            data_dir=args.data_dir,
            split=args.split,
            classifier=args.classifier,
            inception_weights=args.inception_weights,
            max_images=args.max_images,
            batch_size=args.batch_size,
            min_classifier_accuracy=args.min_classifier_accuracy,
            seed=args.seed,
            out_dir=out_dir,
            verbose=0 if args.quiet else 1,
            mask_kind=args.mask_kind,
            identity={"auto": "auto", "on": True, "off": False}[args.identity],
        )
        print(markdown_report(report))
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
