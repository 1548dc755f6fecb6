"""`python -m tf_faceedit.augment`, kept working: the command is `tf_faceedit.cli.augment` (flags: `--help`)."""

import sys

from tf_faceedit.cli.augment import main

if __name__ == "__main__":
    sys.exit(main())
