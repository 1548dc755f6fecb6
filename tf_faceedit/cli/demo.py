"""The web demo: edit (or complete) the faces of your photos in the browser.

    pip install -e ".[demo]"
    python -m tf_faceedit.demo --model_dir=runs/sagan_quick [--model_dir=RUN2 ...] [--export_dir=EXPORT] [--port 7860]
    python -m tf_faceedit.demo --model sagan-eyeglasses-64 [--model NAME2 ...]          # zoo models

Open http://127.0.0.1:7860, upload a photo (or pick a generated example), set the attributes and see the result
pasted back into the photo, the aligned crop before/after, the attention overlay and the residual. Completion
models: paint the hole (or press "Random mask"). The CLI only parses: `tf_faceedit.apps.demo.page.run` does the work.
"""

import argparse
import sys

from tf_faceedit.cli import common


def parse_args(argv=None):
    from tf_faceedit.apps.demo.handlers import DEFAULT_MAX_SIDE

    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common.add_model_argument(parser, action="append", default=[])
    parser.add_argument("--model_dir", action="append", default=[], help="training run folder (repeatable)")
    parser.add_argument("--export_dir", action="append", default=[], help="export version folder (repeatable)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default 7860)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--max_side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f"photos with a longer side are downscaled to it (default {DEFAULT_MAX_SIDE})",
    )
    parser.add_argument(
        "--detector_model",
        help="face detector: mtcnn, haar, or a YuNet .onnx file (default: mtcnn "
        "when installed, pip install 'tf_faceedit[faces]'; else haar)",
    )
    parser.add_argument("--quiet", action="store_true", help="warnings only")
    args = parser.parse_args(argv)
    if not args.model and not args.model_dir and not args.export_dir:
        parser.error("give at least one --model_dir, --export_dir or --model")
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if args.max_side < 64:
        parser.error(f"--max_side must be >= 64, got {args.max_side}")
    return args


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit import model_source
        from tf_faceedit.apps.demo import page

        model_dirs, export_dirs = list(args.model_dir), list(args.export_dir)
        for model in args.model:  # a zoo name loads from its entry folder (labelled by the name)
            source = model_source.locate(model)
            (export_dirs if source.kind == "export" else model_dirs).append(
                str(source.path) if source.kind == "zoo" else model
            )
        print(
            f"loading {len(model_dirs) + len(export_dirs)} model(s); the page will be at "
            f"http://{args.host}:{args.port}",
            flush=True,
        )
        page.run(
            model_dirs,
            export_dirs,
            port=args.port,
            host=args.host,
            max_side=args.max_side,
            detector_model=args.detector_model,
        )
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
