"""User-facing errors.

Every mistake a user can make (a flag, a file, a folder) raises a subclass of `FaceEditError` with a one-line
message naming the flag or file. The CLIs catch `FaceEditError` and print `error: <message>` with exit code 2,
so users never see a raw traceback for their own mistakes. Bugs in the library still raise ordinary exceptions.
"""

import difflib


class FaceEditError(ValueError):
    """Base class of errors caused by user input (flags, config files, data folders)."""


class ConfigError(FaceEditError):
    """A config field, YAML preset or `--set` override is invalid."""


class DataError(FaceEditError):
    """A data folder, attribute file, partition file or image is missing or malformed."""


class TrainingError(FaceEditError):
    """Training cannot go on (non-finite loss, model_dir conflict, ...)."""


class ExportError(FaceEditError):
    """An export cannot be written (a full disk, a folder that cannot be written); nothing partial is left."""


class EvaluationError(FaceEditError):
    """An evaluation refuses to score (e.g. the judging classifier is below the minimum accuracy on an attribute)."""


def suggest(name, candidates, n=3):
    """Returns ' (did you mean: a, b?)' for close matches of `name` in `candidates`, or ''."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=0.5)
    if not matches:
        lowered = {str(c).lower(): str(c) for c in candidates}
        if str(name).lower() in lowered:
            matches = [lowered[str(name).lower()]]
    return f" (did you mean: {', '.join(matches)}?)" if matches else ""


def check_attribute_values(values, names, value_range=None, method=None, flag="attribute"):
    """Refuses target attribute values that are not finite, or outside `value_range`, naming the attribute.

    Args:
      values: {name: value} (a value may be an array), or an array [..., K] in `names` order.
      names: the K attribute names. value_range: (low, high), inclusive; None: any finite value.
      method: named in the message. flag: how the value was given ("--set", "attribute", ...).
    Raises:
      ConfigError: e.g. "--set Eyeglasses=nan: not a finite number; sagan takes target values in [0, 1]".
    """
    import numpy as np

    where = (
        f"{method} takes target values in [{value_range[0]:g}, {value_range[1]:g}]"
        if value_range
        else ("target values must be finite numbers")
    )
    if isinstance(values, dict):
        items = list(values.items())
    else:
        try:
            array = np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{flag} values must be numbers, got {values!r}") from None
        if array.ndim == 0 or array.shape[-1] != len(names):
            return  # the shape is the caller's to check
        items = [(name, array[..., k]) for k, name in enumerate(names)]
    for name, value in items:
        try:
            value = np.asarray(value, np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{flag} {name}: value must be a number, got {value!r}") from None
        finite = np.isfinite(value)
        if not finite.all():
            raise ConfigError(f"{flag} {name}={value[~finite].flat[0]}: not a finite number; {where}")
        if value_range is not None:
            outside = (value < value_range[0]) | (value > value_range[1])
            if outside.any():
                raise ConfigError(f"{flag} {name}={value[outside].flat[0]:g} is out of range: {where}")
