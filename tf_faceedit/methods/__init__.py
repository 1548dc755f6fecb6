"""One file per method; importing this package registers them all (see `tf_faceedit.registry`)."""

from tf_faceedit.methods import pggan_completion  # noqa: F401
from tf_faceedit.methods import sagan  # noqa: F401
