"""Serve exported SavedModels with the in-process gRPC test server (NOT TF Serving).

    tf-faceedit grpc-server --model sagan=EXPORT/sagan --model fader=EXPORT/fader/3 --port 8500
    tf-faceedit grpc-server --model_config_file serving/models.config --models_root EXPORT

The CLI only parses: `tf_faceedit.serving.grpc_server.start_server` does the work.
"""

import argparse
import sys
import threading

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="tf-faceedit grpc-server",
        description="In-process TF Serving stand-in (Predict, GetModelMetadata) for "
        "development and tests; NOT TF Serving.",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve the SavedModel in DIR (a version dir, or a base dir of version dirs) as NAME",
    )
    parser.add_argument("--model_config_file", help="TF Serving models.config (text proto) listing the models")
    parser.add_argument("--models_root", help="folder that replaces /models in the config file's base paths")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500, as TF Serving)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback only)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    common.setup_logging(True)

    def work():
        from tf_faceedit.errors import ConfigError
        from tf_faceedit.serving.grpc_server import models_from_config_file, start_server

        export_dirs = {}
        if args.model_config_file:
            export_dirs.update(models_from_config_file(args.model_config_file, args.models_root))
        for item in args.model:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise ConfigError(f"--model must be NAME=DIR, got '{item}'")
            export_dirs[name] = path
        if not export_dirs:
            raise ConfigError("give --model NAME=DIR (repeatable) or --model_config_file")
        server, port = start_server(export_dirs, args.port, args.host)
        print(
            f"serving {', '.join(sorted(export_dirs))} on {args.host}:{port} (gRPC; test server, not TF Serving); "
            "Ctrl-C stops",
            flush=True,
        )
        try:
            threading.Event().wait()
        finally:
            server.stop(0)

    return common.main_wrapper(work)


if __name__ == "__main__":
    sys.exit(main())
