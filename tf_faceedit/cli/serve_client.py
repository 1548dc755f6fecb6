"""Edit (or complete) one face image with a model served by TF Serving (or the test server).

    tf-faceedit serve-client --server localhost:8500 --model sagan --image face.jpg \
        --set Eyeglasses=1 --out edited.png [--rest] [--mask hole.png] [--save_extras]

The CLI only parses: `tf_faceedit.serving.client.edit_file` (over `make_client`: gRPC or REST) does the work.
"""

import argparse
import sys

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="tf-faceedit serve-client",
        description="Edit (or complete) one face image with a model served by TF Serving.",
    )
    parser.add_argument(
        "--server", default=None, help="host:port of TF Serving (default localhost:8500, or localhost:8501 with --rest)"
    )
    parser.add_argument("--model", required=True, help="model name in the server's models.config, e.g. sagan")
    parser.add_argument("--image", required=True, help="input face image (best: an aligned CelebA-style crop)")
    parser.add_argument("--out", required=True, help="output image file (.png)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="target attribute value, e.g. --set Eyeglasses=1 (repeatable; others default to 0)",
    )
    parser.add_argument("--attributes", help="the full target vector v1,v2,... in the model's attribute order")
    parser.add_argument("--mask", help="hole mask image for completion models (nonzero = hole), same size as --image")
    parser.add_argument("--rest", action="store_true", help="use the REST API (port 8501) instead of gRPC")
    parser.add_argument("--version", type=int, help="model version (default: the latest loaded)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    parser.add_argument(
        "--save_extras",
        action="store_true",
        help="also write the extra outputs (attention maps, ...) as <out>_<name>.png",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common.quiet_tensorflow()

    def work():
        from tf_faceedit.serving.client import edit_file, make_client

        server = args.server or ("localhost:8501" if args.rest else "localhost:8500")
        client = make_client(server, args.model, rest=args.rest, version=args.version, timeout=args.timeout)
        edit_file(client, args.image, args.out, args.sets, args.attributes, args.mask, args.save_extras)
        return 0

    return common.main_wrapper(work)


if __name__ == "__main__":
    sys.exit(main())
