"""Method registry: METHODS[name] -> MethodSpec(config_class, trainer_class, description, capabilities).

Importing `tf_faceedit.methods` registers every built-in method; `get(name)` does that import lazily so the CLIs
can list methods without building anything.

A method states what it offers at inference on its entry (`Capabilities`), where it registers, in its own module;
the API, the demo, evaluation and the run-folder restore read those fields instead of testing method names, so a
new method needs no edit outside its own file. `tests/contract/` checks each declaration against the trainer.
"""

import dataclasses
import importlib
import types

from tf_faceedit.errors import ConfigError, suggest

METHODS = {}
TASKS = ("edit", "complete", "classify")
CONTROLS = ("checkbox", "slider")


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a method offers at inference (see `GANTrainer.infer` for the task contracts).

    Attributes:
      task: "edit" (infer -> {"image", ...}), "complete" (infer -> {"completed", "raw", ...}) or "classify"
        (infer -> {"logits", "probabilities"}); equals the trainer's `task`.
      predicts_attributes: the trainer has `predict_attributes(images)` -> float32 [N, K] in {0, 1} (SaGAN's critic
        head, IcGAN's E_y): the API fills the attributes a caller leaves out with it, the demo starts its controls
        from it, export writes a `predict_attributes` signature.
      attention_masks: `infer` returns "attention" [N, S, S, n] in [0, 1] (n > 1: the last is the background).
      content_masks: `infer` returns "content" [N, S, S, 3m] in [-1, 1] (AttentionGAN's content images).
      attribute_controls: "checkbox" (binary targets) or "slider" (continuous targets over `attribute_range`).
      attribute_range: (low, high) accepted target values; equals the trainer's `attribute_range`.
      usage_note: one line the demo shows under the model, when the attributes mean something unusual (AttentionGAN:
        a checked box is the other domain).
      inference_overrides: {config field: value} set when a run is restored for inference, for fields that only
        matter to the training losses (PGGAN completion's `loss.lambda_feat`: no VGG16 is built).
      inference_networks: the names of the trainer's networks that `infer` and `predict_attributes` use: what a zoo
        entry stores (`python -m tf_faceedit.pretrained add`; never an optimizer state). Empty: all of them (`add`
        warns).
    """

    task: str = "edit"
    predicts_attributes: bool = False
    attention_masks: bool = False
    content_masks: bool = False
    attribute_controls: str = "checkbox"
    attribute_range: tuple = (0.0, 1.0)
    usage_note: str = ""
    inference_overrides: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    inference_networks: tuple = ()

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"Capabilities.task must be one of {TASKS}, got {self.task!r}")
        if self.attribute_controls not in CONTROLS:
            raise ValueError(
                f"Capabilities.attribute_controls must be one of {CONTROLS}, got {self.attribute_controls!r}"
            )
        low, high = (float(v) for v in self.attribute_range)
        if not low < high:
            raise ValueError(
                f"Capabilities.attribute_range must be (low, high) with low < high, got {self.attribute_range}"
            )
        object.__setattr__(self, "attribute_range", (low, high))
        object.__setattr__(self, "inference_overrides", types.MappingProxyType(dict(self.inference_overrides)))
        object.__setattr__(self, "inference_networks", tuple(self.inference_networks))


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    config_class: type
    trainer_class: type
    description: str = ""
    capabilities: Capabilities = Capabilities()


def register(name, config_class, trainer_class, description="", capabilities=None):
    """Registers a method; used by each file of `tf_faceedit/methods/` at import time.

    `capabilities` (a `Capabilities`) says what it offers at inference; default: an editing method with binary
    attributes and nothing else."""
    METHODS[name] = MethodSpec(name, config_class, trainer_class, description, capabilities or Capabilities())
    return trainer_class


def names():
    importlib.import_module("tf_faceedit.methods")
    return sorted(METHODS)


def get(name):
    """Returns the MethodSpec of `name`, or raises ConfigError listing the registered methods."""
    available = names()
    if name not in METHODS:
        raise ConfigError(
            f"unknown method {name!r}{suggest(name, available)}; registered methods: {', '.join(available)}"
        )
    return METHODS[name]


def capabilities(name, task=None):
    """The `Capabilities` of a registered method; for a name this installation does not know (an export of a method
    from elsewhere), the defaults of `task` (when given), else None."""
    names()
    if name in METHODS:
        return METHODS[name].capabilities
    return Capabilities(task=task) if task in TASKS else None
