"""`python -m tf_faceedit.loss_balance`, the loss-balance readout: the command is `tf_faceedit.cli.loss_balance`."""

import sys

from tf_faceedit.cli.loss_balance import main

if __name__ == "__main__":
    sys.exit(main())
