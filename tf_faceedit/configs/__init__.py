"""The YAML presets, reachable by name: `--config=sagan_quick`.

Their home is the top-level `configs/` folder of the checkout; the wheel packages that folder as
`tf_faceedit/configs/presets/` (setup.py maps it), so a name works from an installed wheel and from the checkout
alike (`PRESET_DIR` is whichever of the two exists, the packaged one first).

`<method>_celeba128.yaml` (or the paper's resolution) is the paper setting, `<method>_quick.yaml` / `_cpu64.yaml` a
narrow CPU setting. A preset only overrides the dataclass defaults of its method's config class (`tf_faceedit.config`).
How a run's config is put together from them is `tf_faceedit.configs.resolution`.

`resolve(value)` accepts a preset name (`sagan_quick`, `sagan_quick.yaml`), the pre-0.2 path into a checkout
(`configs/sagan_quick.yaml`, which falls back to the packaged preset when no such file exists), or the path of any
YAML file of yours.
"""

from pathlib import Path

from tf_faceedit.errors import ConfigError, suggest


def _preset_dir() -> Path:
    """`presets/` beside this file in an installed wheel, else the checkout's top-level `configs/`."""
    here = Path(__file__).resolve().parent
    packaged, checkout = here / "presets", here.parents[1] / "configs"
    return packaged if packaged.is_dir() or not checkout.is_dir() else checkout


PRESET_DIR = _preset_dir()
_SUFFIXES = (".yaml", ".yml")


def names() -> list[str]:
    """The packaged preset names, sorted (file names without `.yaml`)."""
    return sorted(path.stem for path in PRESET_DIR.iterdir() if path.suffix in _SUFFIXES)


def path(name: str) -> Path:
    """The file of packaged preset `name`; ConfigError listing the presets when there is none."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix in _SUFFIXES else name
    candidate = PRESET_DIR / f"{stem}.yaml"
    if not candidate.is_file():
        available = names()
        raise ConfigError(
            f"--config {name}: no such file and no packaged preset {stem!r}{suggest(stem, available)}; "
            f"presets: {', '.join(available)}"
        )
    return candidate


def resolve(value) -> Path:
    """The YAML file `--config=value` means: an existing file as given, else the packaged preset it names.

    A bare name (`sagan_quick`, `sagan_quick.yaml`) or a `configs/<name>.yaml` path that does not exist resolves to
    the packaged preset; any other missing path is returned unchanged, so that loading it names the missing file.
    """
    given = Path(value)
    if given.is_file():
        return given
    bare = len(given.parts) == 1
    legacy = len(given.parts) >= 2 and given.parent.name == "configs" and given.suffix in _SUFFIXES
    if bare or legacy:
        return path(given.name)
    return given
