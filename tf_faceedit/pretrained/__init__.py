"""Released inference weights: a small model zoo, loadable by name.

    python -m tf_faceedit.pretrained                    # one zoo name per line (first word), then a description
    model = tf_faceedit.load("sagan-eyeglasses-64")     # a zoo name, like a run or export folder
    python -m tf_faceedit.edit --model sagan-eyeglasses-64 --image photo.jpg --set Eyeglasses=1 --out out.jpg

This package folder holds the zoo: `manifest.json` (each entry's method, attributes, image size, dtype, files with
sha256 and size), a model card `<name>.md` per entry and `<name>/` with the config and the inference weights. See
`zoo` (the read side) for the layout and the rules, `maintain` (`python -m tf_faceedit.pretrained --help`) for the
maintainer tools (add, remove, compact, compare, verify) and docs/pretrained.md. A model loads by name through
`tf_faceedit.model_source` (`tf_faceedit.load`). `TF_FACEEDIT_ZOO=DIR` points everything at another zoo folder.
"""

from tf_faceedit.pretrained.zoo import (  # noqa: F401 - the package's face: the read side
    ENV_VAR,
    MAX_TOTAL_BYTES,
    Entry,
    check_files,
    entries,
    get,
    names,
    zoo_root,
)
