"""Released inference weights: a small model zoo, loadable by name.

    python -m tf_faceedit.pretrained                    # one zoo name per line (first word), then a description
    model = tf_faceedit.load("sagan-eyeglasses-64")     # a zoo name, like a run or export folder
    python -m tf_faceedit.edit --model sagan-eyeglasses-64 --image photo.jpg --set Eyeglasses=1 --out out.jpg

This package folder holds the zoo: `manifest.json` (each entry's method, attributes, image size, dtype, files with
sha256 and size), a model card `<name>.md` per entry and `<name>/` with the config and the inference weights. See
`zoo` for the layout and the rules, `python -m tf_faceedit.pretrained --help` for the maintainer tools (add,
verify, compare) and docs/pretrained.md. `TF_FACEEDIT_ZOO=DIR` points everything at another zoo folder.
"""

from tf_faceedit.pretrained.zoo import (  # noqa: F401 - the package's face
    ENV_VAR,
    MAX_TOTAL_BYTES,
    Entry,
    add,
    check_files,
    compare_dtypes,
    entries,
    get,
    names,
    remove,
    resolve,
    restore_trainer,
    verify,
    zoo_root,
)
