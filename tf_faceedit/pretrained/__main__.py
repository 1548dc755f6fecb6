"""The model zoo: list it, read a model card; maintainers add, verify and measure entries.

    python -m tf_faceedit.pretrained                      # one zoo name per line (the first word), then a description
    python -m tf_faceedit.pretrained show NAME            # the model card
    python -m tf_faceedit.pretrained compare --model_dir RUN [--images DIR]   # float16 vs float32 outputs
    python -m tf_faceedit.pretrained add --model_dir RUN --name NAME --card CARD.md [--dtype float16|float32]
    python -m tf_faceedit.pretrained verify [NAME ...] [--load]
    python -m tf_faceedit.pretrained remove NAME
    python -m tf_faceedit.pretrained compact [NAME ...]   # re-store weights gzip-compressed (arrays unchanged)

--root DIR (or TF_FACEEDIT_ZOO=DIR) works on another zoo folder than the installed package's.
"""

import argparse
import json
import sys

from tf_faceedit.cli import common as cli_common


def parse_args(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        default=argparse.SUPPRESS,
        help="zoo folder (default: $TF_FACEEDIT_ZOO, else the installed tf_faceedit/pretrained)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.pretrained",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("list", parents=[common], help="one zoo name per line, then its description")
    show = commands.add_parser("show", parents=[common], help="print an entry's model card")
    show.add_argument("name")
    add = commands.add_parser("add", parents=[common], help="write a zoo entry from a training run (maintainers)")
    add.add_argument("--model_dir", required=True, help="training run folder (config.yaml, checkpoints/)")
    add.add_argument("--name", required=True, help="zoo name, e.g. sagan-eyeglasses-64")
    add.add_argument("--card", required=True, help="model card (copy of tf_faceedit/pretrained/CARD_TEMPLATE.md)")
    add.add_argument(
        "--dtype",
        default="float16",
        choices=["float16", "float32"],
        help="how the weights are stored (float16: cast back to float32 on load; default float16)",
    )
    add.add_argument("--description", help="one-line description (default: method, attributes, size, dtype)")
    add.add_argument("--checkpoint", help="a ckpt-XXXXXXXX folder (default: the newest intact one of --model_dir)")
    add.add_argument("--replace", action="store_true", help="overwrite an entry of that name")
    verify = commands.add_parser("verify", parents=[common], help="check every file against the manifest")
    verify.add_argument("names", nargs="*", help="entries to check (default: all)")
    verify.add_argument("--load", action="store_true", help="also load each entry and edit synthetic faces")
    compare = commands.add_parser(
        "compare", parents=[common], help="what float16 storage changes in a run's outputs on a fixed batch"
    )
    compare.add_argument("--model_dir", required=True, help="training run folder")
    compare.add_argument("--checkpoint", help="a ckpt-XXXXXXXX folder (default: the newest intact one)")
    compare.add_argument("--images", help="folder of face photos for the batch (default: synthetic faces)")
    compare.add_argument("--num_images", type=int, default=8)
    compare.add_argument("--seed", type=int, default=0)
    remove = commands.add_parser("remove", parents=[common], help="delete an entry's files and manifest record")
    remove.add_argument("name")
    compact = commands.add_parser(
        "compact", parents=[common], help="re-store entries' weights gzip-compressed (the arrays are unchanged)"
    )
    compact.add_argument("names", nargs="*", help="entries (default: all)")
    for sub in (parser, add, verify, compare, remove, compact):
        sub.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings only")
    args = parser.parse_args(argv)
    args.root = getattr(args, "root", None)
    args.quiet = getattr(args, "quiet", False)
    return args


def _format_metrics(outputs):
    parts = []
    for key, metrics in outputs.items():
        if "psnr" in metrics:
            psnr = "identical" if metrics["psnr"] is None else f"PSNR {metrics['psnr']:.1f} dB"
            parts.append(
                f"{key}: max |diff| {metrics['max_abs_diff']} levels, mean {metrics['mean_abs_diff']:.3f}, {psnr}"
            )
        else:
            parts.append(f"{key}: max |diff| {metrics['max_abs_diff']:.2e}")
    return "; ".join(parts)


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit.pretrained import maintain, zoo

        if args.command in (None, "list"):
            listed = zoo.entries(args.root)
            for entry in listed:
                print(f"{entry.name}  {entry.description}")
            if not listed:
                print(f"(the zoo{zoo._where(zoo.zoo_root(args.root))} has no entries yet)", file=sys.stderr)
            return 0
        if args.command == "show":
            entry = zoo.get(args.name, args.root)
            zoo.check_files(entry, [entry.data["card"]])
            print(entry.card.read_text(encoding="utf-8"), end="")
            return 0
        if args.command == "compact":
            for name, (before, after) in maintain.compact(args.names, args.root).items():
                print(f"{name}: weights {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
            return 0
        if args.command == "remove":
            maintain.remove(args.name, args.root)
            print(f"removed {args.name}")
            return 0
        if args.command == "compare":
            report = maintain.compare_dtypes(args.model_dir, args.checkpoint, args.num_images, args.seed, args.images)
            print(
                f"{report['method']} step {report['step']}, {report['num_images']} images, networks "
                f"{', '.join(report['networks'])}: float16 vs float32: {_format_metrics(report['outputs'])}"
            )
            print(json.dumps(report["outputs"]))
            return 0
        if args.command == "add":
            entry = maintain.add(
                args.model_dir,
                args.name,
                args.card,
                dtype=args.dtype,
                description=args.description,
                checkpoint=args.checkpoint,
                root=args.root,
                replace=args.replace,
            )
            size = sum(r["size"] for r in entry.files.values())
            print(
                f"added {entry.name} to {entry.root}: {entry.method} step {entry.step}, {entry.dtype}, "
                f"{size / 1e6:.2f} MB ({', '.join(entry.networks)}); float16 vs float32: "
                f"{_format_metrics(entry.data['precision']['float16_vs_float32'])}"
            )
            return 0
        report = maintain.verify(args.root, args.names, load=args.load)
        failed = 0
        for name, problems in report.items():
            if name and not problems:
                print(f"ok {name}")
            for problem in problems:
                failed += 1
                print(f"FAILED {name or 'zoo'}: {problem}")
        if len(report) == 1 and not report[""]:
            print(f"(the zoo{zoo._where(zoo.zoo_root(args.root))} has no entries yet)", file=sys.stderr)
        return 1 if failed else 0

    return cli_common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
