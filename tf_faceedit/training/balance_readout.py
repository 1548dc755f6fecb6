"""The loss-balance readout of a config at step 0 of its stages (`python -m tf_faceedit.loss_balance`): builds the
trainer and one training batch, then runs `loss_balance.loss_balance` per stage. Kept apart from
`training/loss_balance.py`, which the training driver imports, because this module imports the driver."""

import keras

from tf_faceedit import registry
from tf_faceedit.data import celeba
from tf_faceedit.errors import ConfigError
from tf_faceedit.training.driver import make_dataset
from tf_faceedit.training.loss_balance import loss_balance, supports_balance


def readout_for_config(cfg, stages=None, batch_size=None):
    """The step-0 readout of a resolved config at the given stages (default: every stage of its schedule), each at
    alpha = 1 on one training batch of `cfg.data`. Returns [(phase name, rows)].

    Raises:
      ConfigError: the method has no readout, or a stage is outside the schedule.
    """
    spec = registry.get(cfg.method)
    trainer = spec.trainer_class(cfg)
    if not supports_balance(trainer):
        raise ConfigError(f"method {cfg.method!r} has no loss-balance readout (no generator_terms)")
    schedule = trainer.schedule() if hasattr(trainer, "schedule") else trainer.phases()
    stages = range(len(schedule)) if stages is None else stages
    for stage in stages:
        if not 0 <= stage < len(schedule):
            raise ConfigError(f"--stage {stage}: the schedule has stages 0-{len(schedule) - 1}")
    batch_size = batch_size or cfg.train.batch_size
    records = spec.trainer_class.load_records(cfg.data, "train")
    dataset = make_dataset(
        spec.trainer_class,
        cfg.data,
        "train",
        batch_size=batch_size,
        training=True,
        seed=cfg.train.seed,
        records=records,
    )
    batch = {k: keras.ops.convert_to_tensor(v) for k, v in celeba.first_batch(dataset, records).items()}
    out = []
    for stage in stages:
        phase = schedule[stage]
        fade = phase.info.get("fade_steps", 0) if phase.info else 0
        trainer.step.assign(phase.start_step + fade)  # alpha = 1: the stage's own layers
        trainer.set_phase(phase)
        out.append((phase.name, loss_balance(trainer, batch)))
    return out
