"""Print the loss balance of a config: every generator loss term's weighted value and its share of the gradient
at G's output, at step 0 of every stage (or `--stage`).

    python -m tf_faceedit.loss_balance --config=pggan_completion_cpu64 --data_dir=DIR [--set loss.lambda_feat=10]

The CLI only parses: `tf_faceedit.training.balance_readout.readout_for_config` does the work. Without --data_dir a
small synthetic face set is generated in a temporary folder.
"""

import argparse
import sys
import tempfile

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.loss_balance",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML preset name (e.g. pggan_completion_cpu64) or file")
    parser.add_argument("--method", help="registered method (when --config does not name one)")
    parser.add_argument("--data_dir", help="dataset folder (default: a small synthetic set)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--stage", type=int, action="append", help="stage index (repeatable; default: all)")
    parser.add_argument("--batch_size", type=int, help="images in the batch (default: train.batch_size)")
    parser.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit.configs import resolution
        from tf_faceedit.errors import ConfigError
        from tf_faceedit.training import balance_readout, loss_balance

        if not args.config and not args.method:
            raise ConfigError("--config or --method is required")
        with tempfile.TemporaryDirectory(prefix="tf_faceedit_balance_") as scratch:
            data_dir = args.data_dir or str(resolution.ensure_synthetic_data(f"{scratch}/synthetic", num_images=64))
            cfg = resolution.resolve_config(args.method, None, args.config, args.overrides, data_dir)
            for name, rows in balance_readout.readout_for_config(cfg, args.stage, args.batch_size):
                print(f"stage {name}")
                print(loss_balance.format_balance(rows))
                print()
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
