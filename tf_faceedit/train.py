"""`python -m tf_faceedit.train`, kept working: the command is `tf_faceedit.cli.train` (flags: `--help`)."""

import sys

from tf_faceedit.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
