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
