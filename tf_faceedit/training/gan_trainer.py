"""Shared GAN trainer (TensorFlow backend): a `keras.Model` whose `train_step` runs each player's update.

A method subclasses `GANTrainer` and provides
  * `networks`: a dict name -> `keras.Model` (built functional models; they are what is saved and exported);
  * `updates()`: the ordered list of `Update`s of one training step, e.g. SaGAN's `n_critic` critic updates then
    one generator update;
  * per-player loss functions `fn(batch, seed) -> dict[str, Tensor[N]]` written with `keras.ops` only. Each value
    is a PER-EXAMPLE vector; the key `Update.loss_key` holds the weighted total that is differentiated. The trainer
    reduces every value exactly once: the total with `compute_average_loss` (divided by the global batch, so the
    replicas' summed gradients are the global mean, STYLE rule 8) and the logged values with a per-replica mean;
  * optionally `prepare_batch(batch, seed)` (draws what all players of one step share, e.g. target attributes) and
    `sample_rows(batch)` (named rows of images for the PNG grid).

One training step = every update in order; an update with `repeat = r` runs r times, each on its own slice of
`train.batch_size` examples, so the input pipeline delivers `batch_size * max(repeat)` examples per step. There is
no data-dependent control flow in the step: the optimizers' cross-replica gradient sync may not sit inside a
conditional under a distribution strategy, and unrolled updates also compile well under XLA and JAX.

One skeleton runs the step on every backend (`GANTrainer.run_step`: the step's seeds, `prepare_batch`, the strided
slices, the updates in order, the step counter and the logs); a backend supplies only the gradient step of one update
and the way state is read and written. The TensorFlow one (one `tf.GradientTape` per player, `optimizer.apply`)
lives here and only here, so the model and loss code stays backend-portable (STYLE rule 0); the JAX one (stateless
scopes, `jax.value_and_grad`) is `training/jax_trainer.py`. `compile` picks the backend's step once.
"""

import contextlib
import dataclasses
import typing

import keras

from tf_faceedit.backend.lazy_tf import tf  # TensorFlow is imported on first use (the JAX path runs without it)
from tf_faceedit.data import celeba
from tf_faceedit.losses.reduction import compute_average_loss
from tf_faceedit.training import optimizers, precision


@dataclasses.dataclass
class Update:
    """One player's update inside a training step.

    name: the player ("d", "g", ...); optimizer: attribute name of its optimizer on the trainer;
    networks: names (keys of `trainer.networks`) whose trainable variables this update changes;
    loss_fn: `fn(batch, seed) -> dict of per-example [N] tensors`; loss_key: the total in that dict;
    repeat: updates of this player per training step, each on its own slice of the step's examples
      (SaGAN's critic: n_critic). Slice i is shared by every player that runs an i-th time.
    """

    name: str
    optimizer: str
    networks: typing.Sequence[str]
    loss_fn: typing.Callable
    loss_key: str
    repeat: int = 1


def strided_slice(x, index, n):
    """x[index::n] along the batch axis (static inner shape, dynamic batch)."""
    inner = tuple(x.shape[1:])
    return keras.ops.reshape(x, (-1, n) + inner)[:, index]


@dataclasses.dataclass(frozen=True)
class Phase:
    """A span of training steps with fixed shapes and schedule (e.g. one resolution of progressive growing).

    name: shown in logs; start_step/end_step: global steps [start, end); info: method-specific constants of the
    phase (e.g. {"stage": 2, "fade_steps": 500}). The train function is traced once per phase.
    """

    name: str
    start_step: int
    end_step: int
    info: typing.Mapping = dataclasses.field(default_factory=dict)


class GANTrainer(keras.Model):
    """Base trainer: holds the networks, two or more optimizers, the step counter and the seed generator.

    Args:
        config: the method's `ExperimentConfig` (typed dataclass).
    """

    def __init__(self, config, **kwargs):
        super().__init__(name=kwargs.pop("name", f"{config.method}_trainer"), **kwargs)
        self.config = config
        self.global_batch_size = config.train.batch_size
        self.seed_generator = keras.random.SeedGenerator(config.train.seed, name="trainer_seed")
        self.step = keras.Variable(0, dtype="int64", trainable=False, name="step")
        self._trackers = {}
        self._update_keys = {}  # update name -> the loss keys it logs (filled by build_trackers)

    # -- to be provided by the method -------------------------------------------------------------------------
    @property
    def networks(self):
        """Name -> network. Default: the standard pair `self.generator` / `self.discriminator`."""
        return {"generator": self.generator, "discriminator": self.discriminator}

    def updates(self):
        """The updates of one training step in the current phase. Default: the standard two-player GAN step,
        `train.n_critic` updates of the discriminator (`discriminator_losses`, total "d_loss") and one of the
        generator (`generator_losses`, total "g_loss")."""
        return [
            Update(
                "d",
                "d_optimizer",
                ["discriminator"],
                self.discriminator_losses,
                "d_loss",
                repeat=self.config.train.n_critic,
            ),
            Update("g", "g_optimizer", ["generator"], self.generator_losses, "g_loss"),
        ]

    def all_updates(self):
        """The updates of every phase (optimizers are built for all of them); default: `updates()`."""
        return self.updates()

    def prepare_batch(self, batch, seed):
        return batch

    # -- inference contract (used by `tf_faceedit.load`, export, evaluate and edit) -------------------------------
    # "edit": infer({"image", "attributes"}) -> {"image", extras...}; "complete": infer({"image", "mask",
    # "attributes"}) -> {"completed", "raw", extras...}; "classify": infer({"image"}) -> {"logits", "probabilities"}.
    task = "edit"
    # Accepted target attribute values at inference (`tf_faceedit.load`, edit, demo, export metadata): 0 = absent,
    # 1 = present, values between interpolate; a method with sliders that go further (Fader) widens it.
    attribute_range = (0.0, 1.0)

    def infer(self, inputs):
        """Inference in `keras.ops`, at the model's resolution.

        Args:
          inputs: "image" float32 [N, S, S, 3] in [-1, 1]; "attributes" float32 [N, K], the TARGET attribute values
            (0/1; methods with continuous control accept any real value); for task "complete" also "mask" float32
            [N, S, S, 1] in {0, 1}, 1 = hole.
        Returns:
          dict: "image" [N, S, S, 3] in [-1, 1] (edit) or "completed" and "raw" (complete), plus the method's extras
          under fixed names: "attention" [N, S, S, n] in [0, 1], "content" [N, S, S, 3m] in [-1, 1], "latent" [N, ...].
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement inference")

    def export_networks(self):
        """The networks written as `.keras` files next to an export (default: all of `networks`)."""
        return dict(self.networks)

    def sample_rows(self, batch):
        raise NotImplementedError

    def phases(self):
        """The run's phases in order; default: one phase covering `train.steps`."""
        return [Phase("train", 0, self.config.train.steps)]

    def phase_at(self, step):
        """The phase a global step belongs to (the last one for steps past the end)."""
        phases = self.phases()
        for phase in phases:
            if step < phase.end_step:
                return phase
        return phases[-1]

    def phase_of_checkpoint(self, step):
        """The phase a checkpoint written at global step `step` holds: that of its last step, `step - 1` (`step` may
        be the first step of the next phase); the first phase for step 0. Set it before restoring: the phase decides
        the shapes of phase-dependent state (a progressive network's graph)."""
        return self.phase_at(max(int(step) - 1, 0))

    def set_phase(self, phase):
        """Switches shapes/schedules to `phase` (called eagerly between phases, before restoring a checkpoint)."""
        self.phase = phase

    def start_phase(self, phase):
        """Called once when training enters `phase` from an earlier one (not on a resume inside it); default: nothing.
        Progressive methods reset their optimizers here (see `reset_optimizers`)."""

    def reset_optimizers(self):
        """Zeroes every optimizer's moments and iteration counter (PGGAN's fresh optimizer per resolution); the
        learning rate, which Keras 3 keeps among `optimizer.variables`, is left as it is."""
        for name in getattr(self, "optimizer_names", []):
            optimizer = getattr(self, name)
            learning_rate = getattr(optimizer, "_learning_rate", None)  # a Variable unless it is a schedule
            for variable in optimizer.variables:
                if variable is learning_rate or variable.path.split("/")[-1] == "learning_rate":
                    continue
                variable.assign(keras.ops.zeros(variable.shape, variable.dtype))

    def phase_state(self):
        """JSON-serialisable description of where training is, stored in each checkpoint's state.json."""
        phase = getattr(self, "phase", None)
        return {"phase": phase.name if phase else None}

    def make_optimizers(self):
        """Adam for the generator and the discriminator from `config.train` (override for other players)."""
        t = self.config.train
        return {
            "g_optimizer": optimizers.Adam(t.g_lr, beta_1=t.beta_1, beta_2=t.beta_2, name="g_optimizer"),
            "d_optimizer": optimizers.Adam(t.d_lr, beta_1=t.beta_1, beta_2=t.beta_2, name="d_optimizer"),
        }

    # -- data (static: the driver loads the data before it builds the trainer) --------------------------------
    @staticmethod
    def load_records(data_config, split):
        """The records of a split (default: one CelebA-format stream, `celeba.load_records`)."""
        return celeba.load_records(data_config, split)

    @staticmethod
    def make_dataset(data_config, split, **kwargs):
        """The tf.data pipeline of a split (default: `celeba.build_dataset`; same keyword arguments)."""
        return celeba.build_dataset(data_config, split, **kwargs)

    # -- keras.Model plumbing -----------------------------------------------------------------------------------
    def call(self, inputs, training=False):
        raise NotImplementedError("GANTrainer is trained with fit(); call its networks directly for inference")

    def compile(self, optimizers, **kwargs):
        """Args: optimizers: dict attribute name -> keras optimizer, e.g. {"g_optimizer": ..., "d_optimizer": ...}."""
        kwargs.setdefault("jit_compile", precision.jit_compile_arg(self.config.train.jit_compile))
        super().compile(**kwargs)
        self.optimizer_names = list(optimizers)
        for name, optimizer in optimizers.items():
            setattr(self, name, optimizer)
        # mixed_float16: updates go through LossScaleOptimizer wrappers; the plain optimizers stay the attributes
        # (checkpoints save them, with one layout in every precision; see training/precision.py)
        self._loss_scalers = (
            precision.loss_scale_optimizers(optimizers)
            if precision.needs_loss_scaling(self.config.train.mixed_precision)
            else {}
        )
        # Build every optimizer's slots now, for the updates of every phase: variables must not be created inside
        # the train function.
        variables = {}
        for update in self.all_updates():
            for variable in self.variables_of(update, active_only=False):
                variables.setdefault(update.optimizer, {})[id(variable)] = variable
        for name, by_id in variables.items():
            getattr(self, name).build(list(by_id.values()))
            if name in self._loss_scalers:
                self._loss_scalers[name].build(list(by_id.values()))
        self.built = True  # the networks are built functional models; fit() needs no symbolic build
        # the backend's step, chosen once: Keras' JAX fit calls train_step(state, data) -> (logs, state), a stateless
        # step that threads every optimizer/state variable (jax_trainer); TensorFlow calls train_step(batch)
        if keras.backend.backend() == "jax":
            from tf_faceedit.training import jax_trainer

            self._backend_train_step = jax_trainer.attach(self)
        else:
            self._backend_train_step = self._tf_train_step

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """No symbolic build: the networks are built and `compile` built the optimizers. (Keras' TF trainer would
        otherwise draw one batch and `strategy.reduce` it, which fails on dict batches under
        MultiWorkerMirroredStrategy.)"""
        return

    @property
    def batch_multiple(self):
        """Slices of `train.batch_size` examples consumed by one training step."""
        return max(update.repeat for update in self.updates())

    def variables_of(self, update, active_only=True):
        """Trainable variables an update changes. A network may expose `active_trainable_variables` (e.g. only the
        blocks of the current progressive stage); optimizers are built on all of them, updates use the active ones."""
        variables = []
        for name in update.networks:
            network = self.networks[name]
            active = getattr(network, "active_trainable_variables", None) if active_only else None
            variables.extend(network.trainable_variables if active is None else active)
        return variables

    def _get_tracker(self, name):
        if name not in self._trackers:
            self._trackers[name] = keras.metrics.Mean(name=name)
        return self._trackers[name]

    def record_losses(self, losses):
        """Adds an update's per-example losses (dict key -> [N]) to the running means that are logged."""
        for key, value in losses.items():
            self._get_tracker(key).update_state(keras.ops.mean(value))

    def step_logs(self):
        """The running means of the losses of the current phase's updates (every tracker before `build_trackers`)."""
        current = {key for update in self.updates() for key in self._update_keys.get(update.name, [])}
        return {name: tracker.result() for name, tracker in self._trackers.items() if not current or name in current}

    @property
    def metrics(self):
        return list(self._trackers.values())

    @contextlib.contextmanager
    def state_kept(self):
        """Runs the block eagerly and then puts back the state variables (RNG, e.g. a history buffer) and every
        network weight (BatchNorm statistics and fade-in alphas move in a training-mode pass), so the block leaves
        no trace on the run."""
        variables = list(self.state_variables()) + [w for net in self.networks.values() for w in net.weights]
        saved = [keras.ops.convert_to_numpy(v) for v in variables]
        try:
            yield
        finally:
            for variable, value in zip(variables, saved):
                variable.assign(value)

    def build_trackers(self, batch):
        """Creates the metric trackers eagerly, for the updates of every phase (a train function must not create
        any), and remembers which loss keys each update logs. The eager pass leaves no trace (`state_kept`)."""
        with self.state_kept():
            batch = self.prepare_batch(batch, self.seed_generator)
            for update in self.all_updates():
                keys = list(update.loss_fn(batch, self.seed_generator))
                self._update_keys[update.name] = keys
                for key in keys:
                    self._get_tracker(key)

    # -- the step: one skeleton, a gradient step per backend ------------------------------------------------------
    def train_step(self, *args):
        """Keras' step: `train_step(batch) -> logs` on TensorFlow, `train_step(state, data) -> (logs, state)` on JAX
        (the implementation `compile` chose); both run `run_step`."""
        return self._backend_train_step(*args)

    def run_step(self, batch, run_update, stateful=None):
        """The skeleton of one training step, the same on every backend.

        Args:
          batch: dict of the step's `train.batch_size * batch_multiple` examples (this replica's share).
          run_update: `fn(update, batch_slice, seed)`, the backend's gradient step of one `Update`; it records the
            losses with `record_losses` (TensorFlow: `_run_update`; JAX: `jax_trainer`).
          stateful: `fn(thunk) -> thunk()` for the code that reads or assigns Keras variables outside the updates
            (JAX: in a StatelessScope over the threaded state); default: a plain call.
        Returns:
          `step_logs()` after the step.
        """
        stateful = stateful or (lambda fn: fn())
        # 1. draw what every player of this step shares (target attributes, ...), with this replica's seeds
        seed = self.step_seeds()
        batch = stateful(lambda: self.prepare_batch(batch, seed))
        # 2. cut the step's examples into `batch_multiple` strided slices (slice i = examples i, i+n, ...): a
        #    replica's share of a slice is then the same examples under any number of replicas
        slices = self.step_slices(batch)
        # 3. each player's updates in order: the i-th update of a player uses slice i
        for update in self.updates():
            for i in range(update.repeat):
                run_update(update, slices[i], seed)

        # 4. advance the step counter; log the losses of this phase's updates only
        def finish():
            self.step.assign_add(1)
            return self.step_logs()

        return stateful(finish)

    def step_slices(self, batch):
        """The `batch_multiple` strided slices of a step's batch (slice i = examples i, i+n, ...)."""
        n = self.batch_multiple
        return (
            [batch] if n == 1 else [{key: strided_slice(value, i, n) for key, value in batch.items()} for i in range(n)]
        )

    def _tf_train_step(self, batch):
        logs = self.run_step(batch, self._run_update)
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces logs across workers with strategy.reduce("MEAN", v, axis=0): give them an axis
            logs = {name: keras.ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _run_update(self, update, batch, seed=None):
        """The TensorFlow gradient step of one update (`run_step`'s `run_update`)."""
        variables = self.variables_of(update)
        optimizer = getattr(self, "_loss_scalers", {}).get(update.optimizer) or getattr(self, update.optimizer)
        # (a) forward pass of this player's losses, (b) gradient of its reduced total (scaled up under
        # mixed_float16; identity otherwise), (c) optimizer step (unscales, and skips non-finite steps when scaled).
        with tf.GradientTape() as tape:
            losses = update.loss_fn(batch, self.seed_generator if seed is None else seed)
            total = compute_average_loss(losses[update.loss_key], self.global_batch_size)
            scaled = optimizer.scale_loss(total)
        grads = tape.gradient(scaled, variables)
        optimizer.apply(grads, variables)
        self.record_losses(losses)

    def step_seeds(self):
        """The seed generator of the random draws inside a train step, on every backend. With `train.replica_seeds`
        (default) and more than one replica, each replica folds its id into the seeds (`ReplicaSeedGenerator`), so
        replicas draw different noise/targets/penalty weights; replica 0 (and a single device, and every backend
        without tf.distribute replicas: JAX) draws what `seed_generator` draws. The shared state advances
        identically on every replica, so checkpoints and resumes are unchanged."""
        if keras.backend.backend() != "tensorflow":
            return self.seed_generator
        context = tf.distribute.get_replica_context()
        strategy = tf.distribute.get_strategy()
        if (
            not getattr(self.config.train, "replica_seeds", True)
            or context is None
            or strategy.num_replicas_in_sync == 1
        ):
            return self.seed_generator
        return ReplicaSeedGenerator(self.seed_generator, context.replica_id_in_sync_group)

    # -- state for checkpoints ----------------------------------------------------------------------------------
    def state_variables(self):
        """Non-network variables a checkpoint must restore: step counter and RNG state."""
        return [self.step, self.seed_generator.state]


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A view of a `SeedGenerator` for one replica: `next()` advances the shared generator and returns its seed
    with `replica_id * 1_000_003` added to the first word. Replica 0 draws exactly what the shared generator draws.

    Not a layer state of its own (it owns no variable): it is made per trace inside the train step.

    Args:
        base: the shared `keras.random.SeedGenerator`.
        replica_id: int or scalar tensor, the replica's id in its sync group (global across workers).
    """

    OFFSET = 1_000_003

    def __init__(self, base, replica_id):  # no super().__init__: it would create a state variable
        self.base = base
        self.replica_id = replica_id
        self.name = f"{base.name}_replica"
        self.backend = base.backend
        self._initial_seed = base._initial_seed

    @property
    def state(self):
        return self.base.state

    def next(self, ordered=True):
        seed = self.base.next(ordered)
        offset = keras.ops.cast(self.replica_id, seed.dtype) * self.OFFSET
        return seed + keras.ops.stack([offset, keras.ops.zeros((), seed.dtype)])
