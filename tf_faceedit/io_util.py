"""The reading and validation layer for user-supplied paths: every OS, decode and parse error becomes a one-line
`FaceEditError` that names the path (and the flag), never a raw `OSError` / `UnicodeDecodeError` / YAML traceback.

    text = read_text(path, "--config")              # UTF-8 (BOM tolerated); binary files and other encodings refused
    values = read_yaml(path, "config file")         # a YAML mapping
    check_output_dir(path, "--model_dir")           # before any work: a folder can be made / written there
    make_dir(path, "--model_dir")                   # the same, then mkdir -p
    file_digest(path)                               # SHA-256 hex digest (checkpoint manifests, the zoo)
    is_no_space(err)                                # a full disk or quota (OSError, TF's and h5py's errors)

Images have their own layer (`tf_faceedit.images`: header, size guard, decode, atomic write), built the same way.
"""

import errno
import hashlib
import os
from pathlib import Path

from tf_faceedit.errors import ConfigError

_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def reason(err):
    """The one-line reason of an OSError ("No space left on device", "Permission denied", ...)."""
    return err.strerror or type(err).__name__


def is_no_space(err):
    """Whether an error means a full disk or quota: an OSError's errno, or the text of errors that carry it only
    there (TensorFlow's ResourceExhaustedError from SaveV2, h5py's "errno = 28")."""
    if getattr(err, "errno", None) in _NO_SPACE:
        return True
    text = str(err)
    return "No space left" in text or "errno = 28" in text or "Disk quota exceeded" in text


def read_text(path, what="file", error=ConfigError):
    """The text of a UTF-8 file (a BOM is dropped; CRLF kept as is).

    Raises `error` naming `what` and the path when the file is missing, a folder, unreadable (permissions, I/O),
    binary (NUL bytes) or not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(f"cannot read {what} {path}: {reason(err)}") from None
    if b"\x00" in data:
        raise error(f"{what} {path} is a binary file, not text (it holds NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None


def read_yaml(path, what="YAML file", error=ConfigError):
    """A YAML file holding a mapping -> dict (empty file -> {}). Errors as `read_text`, plus invalid YAML (its first
    line, with the position) and a top level that is not a mapping."""
    import yaml

    text = read_text(path, what, error)
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(f"{what} {path} is not valid YAML: {' '.join(str(err).split())[:200]}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise error(
            f"{what} {path} must hold a mapping (key: value lines) at the top level, got a {type(values).__name__}"
        )
    return values


def check_output_dir(path, flag="folder"):
    """Checks, before any work, that a folder can be created (or written) at `path`.

    Raises ConfigError naming the flag when `path` is an existing file, when one of its parents is a file, or when
    the nearest existing parent is not writable (permissions do not bind root, so that check passes for root).
    Returns the Path. Nothing is created.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is an existing file, not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{flag} {path}: {existing} is a file, so no folder can be made inside it")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "the folder" if existing == path else f"its parent {existing}"
        raise ConfigError(f"{flag} {path}: permission denied: {where} is not writable by this user")
    return path


def make_dir(path, flag="folder"):
    """`check_output_dir`, then creates the folder (and its parents). OS errors become ConfigError naming the flag."""
    path = check_output_dir(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot create the folder: {reason(err)}") from None
    return path


def file_digest(path, chunk=1 << 20):
    """SHA-256 hex digest of a file, read in `chunk`-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
