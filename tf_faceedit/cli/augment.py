"""Write an edited copy of a face dataset for training other models (SaGAN §4.3).

    python -m tf_faceedit.augment --model_dir=RUN --data_dir=DIR --out_dir=OUT [--attributes=Eyeglasses,Smiling] \
        [--no_identity] [--max_images=N] [--overwrite]

OUT is a CelebA-format folder (images/, list_attr_celeba.txt, list_eval_partition.txt): each source image edited
once per attribute (flipped) and once to its own attributes. The CLI only parses: `tf_faceedit.apps.augment.augment`
does the work.
"""

import argparse
import sys

from tf_faceedit.cli import common


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tf_faceedit.augment",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model_dir", required=True, help="run folder of an editing method")
    parser.add_argument("--data_dir", required=True, help="source dataset folder (CelebA or CSV format)")
    parser.add_argument("--out_dir", required=True, help="folder for the augmented dataset")
    parser.add_argument("--attributes", help="comma-separated attributes to flip (default: all the model edits)")
    parser.add_argument("--no_identity", action="store_true", help="skip the edit to the image's own attributes")
    parser.add_argument("--max_images", type=int, help="use only the first N source images")
    parser.add_argument("--batch_size", type=int, default=16)
    common.add_precision_argument(parser)
    common.add_engine_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out_dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    def work():
        from tf_faceedit.apps import augment as augment_app

        attributes = [a.strip() for a in args.attributes.split(",") if a.strip()] if args.attributes else None
        summary = augment_app.augment(
            args.model_dir,
            args.data_dir,
            args.out_dir,
            attributes=attributes,
            include_identity=not args.no_identity,
            batch_size=args.batch_size,
            max_images=args.max_images,
            overwrite=args.overwrite,
            verbose=0 if args.quiet else 1,
            precision=args.precision,
            engine=args.engine,
        )
        print(f"wrote {summary['images']} images ({summary['source_images']} source images) to {args.out_dir}")
        return 0

    return common.run_cli(work, verbose=not args.quiet)


if __name__ == "__main__":
    sys.exit(main())
