"""Recovery beside the training loop: pre-emption and non-finite losses as actions, not branches of the loop (the shape
of TF Model Garden's `official/core/actions.py`: `SaveCheckpointIfPreempted`, `RecoveryCondition` +
`RecoveryAction`).

    with StopOnSignal() as stopper:             # SIGTERM / SIGINT: stop after the current step, checkpoint, exit 128+n
        callbacks.append(stopper.callback())    # ends `fit` after the running step
        stopper.check(trainer, manager)         # between fits: raises TrainingInterrupted naming the checkpoint
    recovery = NaNRecovery(cfg.train)           # one per run: counts the rollbacks
    step = recovery(trainer, manager, failure)  # a NaNGuard failure: raise (nan_policy=stop) or roll back

The loop (`training/driver.py`) only calls these; what a signal or a NaN does is written here.
"""

import logging
import os
import signal
import sys
import threading

import keras

from tf_faceedit.errors import TrainingError

log = logging.getLogger("tf_faceedit")

# ---------------------------------------------------------------------------------------------------------------
# Pre-emption: SIGTERM (schedulers, `docker stop`, preemption) and SIGINT (Ctrl-C) stop like Keras' BackupAndRestore

INTERRUPT_GRACE_S = 120.0  # after the first signal: the longest wait for the step and the checkpoint, then exit


class TrainingInterrupted(TrainingError):
    """Training stopped on a signal after checkpointing. `exit_code`: 128 + the signal number (SIGTERM 143, SIGINT
    130), which the CLIs exit with."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


def _say(text):
    """One line on stderr, safe inside a signal handler or another thread (no logging locks)."""
    try:
        os.write(sys.stderr.fileno(), f"{text}\n".encode())
    except (OSError, ValueError, AttributeError):
        pass


class StopOnSignal:
    """While active (a context manager), SIGTERM and SIGINT ask training to stop after the current step.

    First signal: `signum` is set (`callback()` ends `fit` after the running step; the checkpoint callback writes
    the step at the end of `fit`; `check()` raises `TrainingInterrupted`), and a watchdog starts: no stop within
    `grace_s` seconds (a hung step or input pipeline) exits the process with 128 + signum after releasing `lock`. A
    second signal does the same at once. Signal handlers can only be installed from the main thread: elsewhere this
    does nothing. The previous handlers come back on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, grace_s=None):
        self.grace_s = INTERRUPT_GRACE_S if grace_s is None else float(grace_s)
        self.signum = None
        self.lock = None  # the ModelDirLock to release on a hard exit
        self._previous = {}
        self._timer = None

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self._timer is not None:
            self._timer.cancel()
        return False

    def callback(self):
        """The Keras callback that ends `fit` after the running step once a signal came."""
        return StopOnSignalCallback(self)

    def check(self, trainer, manager):
        """Raises TrainingInterrupted (naming the step and the checkpoint) once a signal asked training to stop."""
        if self.signum is None:
            return
        step = int(keras.ops.convert_to_numpy(trainer.step))
        latest = manager.latest() if manager.writable else None
        if latest is not None and latest.name == f"ckpt-{step:08d}":
            saved = f"checkpoint {latest} written"
        elif latest is not None:
            saved = f"no checkpoint at this step, the last one is {latest}"
        else:
            saved = "no checkpoint written" if manager.writable else "this worker writes no checkpoint"
        raise TrainingInterrupted(
            f"training interrupted by {self.name} at step {step}: {saved}; run the same command again to resume",
            self.signum,
        )

    def _handle(self, signum, frame):
        if self.signum is not None:
            self._hard_exit(signum, f"second {signal.Signals(signum).name}: exiting now without a final checkpoint")
            return
        self.signum = signum
        _say(
            f"{signal.Signals(signum).name} received: stopping after the current step and writing a checkpoint "
            f"(at most {self.grace_s:g} s; send it again to exit at once)"
        )
        self._timer = threading.Timer(
            self.grace_s,
            self._hard_exit,
            (
                signum,
                f"training did not stop within "
                f"{self.grace_s:g} s of "
                f"{signal.Signals(signum).name}: exiting "
                "without a final checkpoint",
            ),
        )
        self._timer.daemon = True
        self._timer.start()

    def _hard_exit(self, signum, message):
        if self.lock is not None:
            try:
                self.lock.release()
            except Exception:  # noqa: BLE001 - exiting anyway; a left lock is taken over as stale
                pass
        released = ", the lock released" if self.lock is not None else ""
        _say(f"interrupted: {message}; the last complete checkpoint is kept{released}")
        os._exit(128 + int(signum))


class StopOnSignalCallback(keras.callbacks.Callback):
    """Ends `fit` after the running step once `stopper` has seen a signal."""

    def __init__(self, stopper):
        super().__init__()
        self.stopper = stopper

    def on_train_batch_end(self, batch, logs=None):
        if self.stopper.signum is not None:
            self.model.stop_training = True


# ---------------------------------------------------------------------------------------------------------------
# Non-finite losses: train.nan_policy


class NaNRecovery:
    """What a non-finite loss (a `callbacks.NaNGuard` failure) does, for one run.

    `train.nan_policy=stop`: raise TrainingError naming the loss and the step. `rollback`: restore the last good
    checkpoint of the current phase, multiply every learning rate by `train.nan_lr_factor` and go on, at most
    `train.nan_max_rollbacks` times per run (then stop as above). `rollbacks` counts them.
    """

    def __init__(self, train_config):
        self.config = train_config
        self.rollbacks = 0

    def __call__(self, trainer, manager, failure):
        """The step training goes on from after `failure` = (loss key, step, value); raises TrainingError when it
        cannot go on."""
        key, at, value = failure
        t = self.config
        restored = self._rollback(trainer, manager) if t.nan_policy == "rollback" else None
        if restored is None:
            raise TrainingError(
                f"non-finite loss {key}={value} at step {at}; training stopped and the last good checkpoint "
                f"({manager.latest()}) is kept. Lower train.g_lr/train.d_lr, set train.nan_policy=rollback, or "
                "check the data."
            )
        log.warning(
            "non-finite loss %s=%s at step %d: rolled back to step %d (rollback %d of %d), learning rates x%g",
            key,
            value,
            at,
            restored,
            self.rollbacks,
            t.nan_max_rollbacks,
            t.nan_lr_factor,
        )
        return restored

    def _rollback(self, trainer, manager):
        """Restores the last good checkpoint of the current phase and lowers every learning rate; returns its step,
        or None when no rollback is possible (none left, no checkpoint, or the checkpoint is of an earlier phase)."""
        saved = manager.peek()
        phase = getattr(trainer, "phase", None)
        if self.rollbacks >= self.config.nan_max_rollbacks or saved is None:
            return None
        if phase is not None and phase.start_step > 0 and saved["step"] <= phase.start_step:
            return None  # that checkpoint holds the previous phase's shapes
        manager.restore()
        self.rollbacks += 1
        for name in trainer.optimizer_names:
            scale_learning_rate(getattr(trainer, name), self.config.nan_lr_factor)
        trainer.train_function = None  # a scaled schedule is a new Python object: retrace
        return saved["step"]


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`factor * schedule(step)`: a learning-rate schedule lowered by a NaN rollback."""

    def __init__(self, schedule, factor):
        self.schedule, self.factor = schedule, float(factor)

    def __call__(self, step):
        return self.schedule(step) * self.factor

    def get_config(self):
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule), "factor": self.factor}


def scale_learning_rate(optimizer, factor):
    """Multiplies an optimizer's learning rate by `factor`. A plain rate is a variable saved with the optimizer, so
    the lowered rate persists in later checkpoints; a schedule is wrapped (for the rest of this process only)."""
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        optimizer._learning_rate = ScaledSchedule(rate, factor)
        log.warning(
            "%s: learning-rate schedule scaled by %g until the end of this run (not saved in checkpoints)",
            optimizer.name,
            factor,
        )
    else:
        rate.assign(keras.ops.convert_to_numpy(rate) * factor)
