"""`python -m tf_faceedit.edit`, kept working: the command is `tf_faceedit.cli.edit` (flags: `--help`)."""

import sys

from tf_faceedit.cli.edit import main

if __name__ == "__main__":
    sys.exit(main())
