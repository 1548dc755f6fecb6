"""Edit the faces of your own photo (or a folder of photos) with a trained model or an export.

    python -m tf_faceedit.edit --model sagan-eyeglasses-64 --image photo.jpg --set Eyeglasses=1 --out out.jpg
    python -m tf_faceedit.edit --model_dir=RUN --image photo.jpg --set Smiling=1 --out out.jpg
    python -m tf_faceedit.edit --export_dir=EXPORT/sagan/1 --image photos/ --set Eyeglasses=1 --out edited/
    python -m tf_faceedit.edit --model_dir=COMPLETION_RUN --image photo.jpg --mask hole.png --out filled.jpg

Faces are found with MTCNN (the [faces] extra; without it OpenCV's Haar cascades; --detector_model=haar|mtcnn|
yunet.onnx picks one), aligned to the CelebA framing by their 5 landmarks (Haar, YuNet: the eyes), edited, and pasted
back. The CLI only parses: `tf_faceedit.apps.edit.edit_photos` does the work.

Exit status: 0 when every photo was written (photos of a folder without a face are skipped and listed), 1 when some
photos of a folder could not be read (the others are written; each is named in a warning), 2 for a user error
(nothing written: a bad flag, an unusable --out, a single photo that cannot be edited, no photo of a folder written).
"""

import argparse
import sys

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.edit",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    common.add_model_argument(source)
    source.add_argument("--model_dir", help="training run folder")
    source.add_argument("--export_dir", help="export version folder (saved_model.pb)")
    parser.add_argument("--image", required=True, help="photo file or folder of photos")
    parser.add_argument("--out", required=True, help="output file (one photo) or folder")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="ATTRIBUTE=VALUE",
        help="target attribute value, e.g. --set Smiling=1 (repeatable)",
    )
    parser.add_argument("--face", type=int, help="edit only face N (0-based, counted from the left)")
    parser.add_argument("--mask", help="for completion models: mask image, nonzero = region to fill")
    parser.add_argument(
        "--detector_model",
        help="face detector: mtcnn, haar, or a YuNet .onnx file (default: mtcnn "
        "when installed, pip install 'tf_faceedit[faces]'; else haar)",
    )
    common.add_option_argument(parser)
    common.add_precision_argument(parser)
    common.add_engine_argument(parser)
    parser.add_argument("--feather", type=float, default=0.1, help="width of the blended border (fraction of face)")
    parser.add_argument("--quiet", action="store_true", help="warnings only")
    return parser.parse_args(argv)


def parse_assignments(assignments):
    """["Smiling=1", "Male=0.5"] -> {"Smiling": 1.0, "Male": 0.5}; ConfigError naming a malformed one."""
    from tf_faceedit.errors import ConfigError

    values = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        try:
            values[name.strip()] = float(raw)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"--set expects ATTRIBUTE=NUMBER (e.g. Smiling=1), got {assignment!r}")
    return values


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit.apps import edit as edit_app

        report = edit_app.edit_photos(
            common.with_options(args.model or args.model_dir or args.export_dir, args.options),
            args.image,
            args.out,
            parse_assignments(args.assignments),
            face=args.face,
            mask=args.mask,
            detector_model=args.detector_model,
            feather=args.feather,
            precision=args.precision,
            engine=args.engine,
        )
        for result in report.written:
            print(f"{result['input']}: {result['faces']} face(s) -> {result['output']}")
        for skipped in report.skipped:
            print(f"{skipped['input']}: skipped ({skipped['kind']})")
        if report.unreadable:
            print(
                f"error: {len(report.unreadable)} photo(s) could not be read "
                f"(first: {report.unreadable[0]['reason']}); {len(report.written)} written",
                file=sys.stderr,
            )
            return 1
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
