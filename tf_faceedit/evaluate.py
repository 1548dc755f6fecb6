"""`python -m tf_faceedit.evaluate`, kept working: the command is `tf_faceedit.cli.evaluate` (flags: `--help`)."""

import sys

from tf_faceedit.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
