"""`python -m tf_faceedit.export`, kept working: the command is `tf_faceedit.cli.export` (flags: `--help`)."""

import sys

from tf_faceedit.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
