"""`python -m tf_faceedit.demo`, kept working: the command is `tf_faceedit.cli.demo` (flags: `--help`)."""

import sys

from tf_faceedit.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
