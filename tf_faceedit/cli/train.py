"""Train a face-editing method.

    python -m tf_faceedit.train --method=sagan --data_dir=DIR --model_dir=RUN \
        [--config=sagan_quick] [--set train.steps=50 --set data.attributes=Eyeglasses,Smiling] \
        [--strategy=auto|default|mirrored|multiworker] [--overwrite]

Running the same command again resumes from the latest checkpoint in RUN; `--model_dir=RUN` alone also resumes
(the method and config come from RUN/config.yaml). The CLI only parses:
`tf_faceedit.training.driver.run(cfg)` does the work.
"""

import argparse
import os
import sys

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--method", help="registered method (see --list_methods)")
    parser.add_argument("--data_dir", help="dataset folder (CelebA format or images + attributes.csv)")
    parser.add_argument("--model_dir", help="run folder: config.yaml, checkpoints/, logs/, samples/")
    parser.add_argument("--config", help="YAML preset: a preset name (e.g. sagan_quick; configs/) or a YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set train.steps=1000 (repeatable)",
    )
    parser.add_argument(
        "--strategy",
        choices=["auto", "default", "mirrored", "multiworker"],
        help="distribution strategy (same as --set train.strategy=...)",
    )
    parser.add_argument("--overwrite", action="store_true", help="discard the run in --model_dir and start over")
    parser.add_argument(
        "--backend",
        choices=["tensorflow", "jax"],
        help="Keras backend (sets KERAS_BACKEND before Keras is imported; default: $KERAS_BACKEND, "
        "else tensorflow). jax trains with the numpy input pipeline and needs no TensorFlow",
    )
    parser.add_argument("--list_methods", action="store_true", help="print the registered methods and exit")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.backend:
        if "keras" in sys.modules and sys.modules["keras"].backend.backend() != args.backend:
            print(
                f"error: --backend={args.backend}: Keras is already imported with the "
                f"{sys.modules['keras'].backend.backend()} backend in this process",
                file=sys.stderr,
            )
            return 2
        os.environ["KERAS_BACKEND"] = args.backend

    def work():
        from tf_faceedit import registry
        from tf_faceedit.configs import resolution
        from tf_faceedit.errors import ConfigError
        from tf_faceedit.training import driver

        if args.list_methods:
            for name in registry.names():
                print(f"{name:20s} {registry.METHODS[name].description}")
            return 0
        if not args.model_dir:
            raise ConfigError("--model_dir is required")
        overrides = list(args.overrides) + ([f"train.strategy={args.strategy}"] if args.strategy else [])
        cfg = resolution.resolve_config(
            args.method, args.model_dir, args.config, overrides, args.data_dir, use_saved=not args.overwrite
        )
        result = driver.run(cfg, args.model_dir, overwrite=args.overwrite)
        print(f"step {result['step']}  checkpoint {result['checkpoint']}  samples {result['sample_grid']}")
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
