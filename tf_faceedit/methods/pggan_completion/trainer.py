"""The pggan_completion trainer: the progressive schedule (one phase per resolution, fade-in alpha, optimizer
reset per stage), the per-example losses of D and G, the step's shared draws (`prepare_batch`), the sample grid
and the inference contract (task "complete"). Losses and schedule are described in the package docstring."""

import dataclasses
import logging

import keras
from keras import ops

from tf_faceedit.layers import upsample2x
from tf_faceedit.layers.conditioning import flip_attribute, flip_one_attribute
from tf_faceedit.layers.progressive import stage_resolutions
from tf_faceedit.losses import (
    attribute_bce_loss,
    boundary_loss,
    get_adversarial_loss,
    gradient_penalty,
    masked_l1_loss,
    perceptual_loss,
    vgg16_feature_extractor,
)
from tf_faceedit.losses.reduction import per_example_mean
from tf_faceedit.methods.pggan_completion.networks import (
    build_discriminator,
    build_generator,
    complete,
    fade_real,
    observe,
)
from tf_faceedit.training.gan_trainer import GANTrainer, Phase
from tf_faceedit.training.image_pool import HistoryBuffer

log = logging.getLogger("tf_faceedit")

SAMPLE_MIN_SIZE = 64  # sample-grid tiles are upsampled (nearest) to at least this many pixels


class PGGANCompletion(GANTrainer):
    """Progressive face-completion trainer: one phase per resolution, D then G each step.

    Args:
        config: `PGGANCompletionConfig`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.generator = build_generator(config, stage=0)
        self.discriminator = build_discriminator(config, stage=0)
        self.g_adv, self.d_adv = get_adversarial_loss(config.loss.adversarial)
        if config.loss.lambda_feat > 0:
            self.feature_extractor = vgg16_feature_extractor(config.loss.vgg_weights)
        else:
            self.feature_extractor = None
            log.info("loss.lambda_feat=0: training without the VGG16 feature loss (no VGG16 is built)")
        self.history_buffer = None
        self.set_phase(self.phases()[0])
        schedule = self.schedule()
        if config.train.steps < schedule[-1].end_step:
            last = self.phase_at(config.train.steps - 1)
            log.warning(
                "train.steps=%d ends in stage %s; the full schedule up to %dx%d takes %d steps",
                config.train.steps,
                last.name,
                config.data.image_size,
                config.data.image_size,
                schedule[-1].end_step,
            )

    # -- progressive schedule -------------------------------------------------------------------------------------
    def schedule(self):
        """The full schedule, one Phase per resolution (independent of train.steps)."""
        cfg, batch = self.config, self.config.train.batch_size
        fade, stable = cfg.progressive.fade_images // batch, cfg.progressive.stable_images // batch
        phases, start = [], 0
        for stage, r in enumerate(stage_resolutions(cfg.model.start_resolution, cfg.data.image_size)):
            fade_steps = fade if stage > 0 else 0
            phases.append(
                Phase(
                    f"{r}x{r}",
                    start,
                    start + fade_steps + stable,
                    {"stage": stage, "fade_steps": fade_steps, "resolution": r},
                )
            )
            start = phases[-1].end_step
        return phases

    def phases(self):
        """The schedule cut (or extended) at train.steps: steps past the schedule stay in the last stage, alpha 1."""
        steps = self.config.train.steps
        phases = [phase for phase in self.schedule() if phase.start_step < steps]
        phases[-1] = dataclasses.replace(phases[-1], end_step=steps)
        return phases

    def alpha_at(self, step, phase=None):
        """Fade-in weight clip((step - phase start) / fade_steps, 0, 1) of global `step` (int or tensor) in `phase`
        (default: the current one), a float32 scalar tensor; 1 for a phase without fade-in."""
        phase = phase or self.phase
        fade = phase.info["fade_steps"]
        if fade == 0:
            return ops.convert_to_tensor(1.0, "float32")
        step = ops.cast(ops.convert_to_tensor(step), "float32")
        return ops.clip((step - float(phase.start_step)) / float(fade), 0.0, 1.0)

    def set_phase(self, phase):
        super().set_phase(phase)
        for network in self.networks.values():
            network.set_stage(phase.info["stage"])
        r, loss = phase.info["resolution"], self.config.loss
        if loss.history_size > 0:  # a new, empty buffer at the stage resolution (restored from a checkpoint after)
            self.history_buffer = HistoryBuffer(loss.history_size, (r, r, 3), loss.history_fraction)
        alpha = self.alpha_at(ops.convert_to_numpy(self.step), phase)
        for network in self.networks.values():
            network.alpha.assign(alpha)

    def start_phase(self, phase):
        if self.config.loss.reset_optimizers_per_stage:
            log.info("stage %s: optimizer states reset (loss.reset_optimizers_per_stage)", phase.name)
            self.reset_optimizers()

    def phase_state(self):
        return {
            "phase": self.phase.name,
            "stage": self.phase.info["stage"],
            "resolution": self.phase.info["resolution"],
            "alpha": float(ops.convert_to_numpy(self.generator.alpha)),
        }

    def state_variables(self):
        return super().state_variables() + (self.history_buffer.variables if self.history_buffer is not None else [])

    # -- batches --------------------------------------------------------------------------------------------------
    def at_stage_resolution(self, batch):
        """The batch's images and masks average-pooled to the current stage: {"image", "mask", "observed"}."""
        factor = self.config.data.image_size // self.generator.current_resolution
        real, mask, observed = observe(batch["image"], batch["mask"], factor)
        return {"image": real, "mask": mask, "observed": observed}

    def prepare_batch(self, batch, seed):
        # 1. images and masks at the stage resolution; 2. A_obs: A_real or one attribute flipped, 1/2 each;
        # 3. this step's fade-in weight into both networks; 4. during a fade-in, the real blended like G's output
        #    (loss.fade_reals); I_obs stays the pooled observation G has always been given
        attributes = batch["attributes"]
        keep = keras.random.uniform((ops.shape(attributes)[0],), seed=seed) < 0.5
        target = ops.where(keep[:, None], attributes, flip_one_attribute(attributes, seed))
        alpha = self.alpha_at(self.step)
        for network in self.networks.values():
            network.alpha.assign(alpha)
        pooled = self.at_stage_resolution(batch)
        if self.config.loss.fade_reals and self.phase.info["fade_steps"] > 0:
            pooled["image"] = fade_real(pooled["image"], alpha)
        return {**pooled, "attributes": attributes, "target_attributes": target, "kept": ops.cast(keep, "float32")}

    # -- losses ---------------------------------------------------------------------------------------------------
    def _generate(self, batch, training):
        return self.generator(
            {"image": batch["observed"], "mask": batch["mask"], "attributes": batch["target_attributes"]},
            training=training,
        )

    def _d_input(self, batch, raw):
        """What D judges as a fake (loss.d_fake): the raw I_syn, or I_syn in the hole and I_obs elsewhere."""
        if self.config.loss.d_fake == "raw":
            return raw
        mask = ops.cast(batch["mask"], raw.dtype)
        return raw * mask + ops.cast(batch["observed"], raw.dtype)

    def discriminator_losses(self, batch, seed):
        cfg = self.config.loss
        real = batch["image"]
        raw = ops.stop_gradient(self._generate(batch, training=True)["image"])
        fake = self._d_input(batch, raw)
        if self.history_buffer is not None:
            fake = self.history_buffer.query(fake, seed)
        real_out = self.discriminator(real, training=True)
        fake_out = self.discriminator(fake, training=True)
        losses = {
            "d_adv": self.d_adv(real_out["src"], fake_out["src"]),
            "d_attr": attribute_bce_loss(batch["attributes"], real_out["cls"]),
        }
        total = losses["d_adv"] + cfg.lambda_attr * losses["d_attr"]
        if cfg.d_attr_fakes:
            # the synthesized term of L_attr: D's attribute head also reads this step's fakes (the raw I_syn; the
            # history buffer's older fakes have no attributes on record) with the attributes G was asked for
            if cfg.d_fake == "raw" and self.history_buffer is None:
                fresh = fake_out
            else:
                fresh = self.discriminator(raw, training=True)
            losses["d_attr_fake"] = attribute_bce_loss(batch["target_attributes"], fresh["cls"])
            total = total + cfg.lambda_attr * losses["d_attr_fake"]
        if cfg.adversarial == "wgan" and cfg.lambda_gp > 0:
            losses["d_gp"] = gradient_penalty(
                lambda x: self.discriminator(x, training=True)["src"], real, fake, seed=seed
            )
            total = total + cfg.lambda_gp * losses["d_gp"]
        losses["d_loss"] = total
        return losses

    def generator_terms(self, batch, raw):
        """G's loss terms from its raw output I_syn [N, R, R, 3]: name -> (weight, per-example value [N]).

        `generator_losses` sums weight * value; the loss-balance readout (`tf_faceedit.training.loss_balance`)
        differentiates each weighted term with respect to `raw`. A term whose weight is 0 or whose stage is below
        its minimum resolution is 0 (the term is kept, as zeros, so that every stage logs the same keys).
        """
        cfg = self.config.loss
        real, mask = batch["image"], batch["mask"]
        r = self.generator.current_resolution
        dfm = cfg.lambda_dfm > 0
        fake_out = self.discriminator(self._d_input(batch, raw), training=True, return_features=dfm)
        raw_out = fake_out if cfg.d_fake == "raw" else self.discriminator(raw, training=True)
        terms = {
            "g_adv": (1.0, self.g_adv(fake_out["src"])),
            "g_attr": (cfg.lambda_attr, attribute_bce_loss(batch["target_attributes"], raw_out["cls"])),
        }
        # rows whose attributes were flipped keep only their context terms under loss.rec_on_flipped=context
        kept = batch["kept"] if cfg.rec_on_flipped == "context" else None
        if kept is None:
            rec = masked_l1_loss(real, raw, mask, cfg.hole_weight)
        else:
            hole = masked_l1_loss(real, raw, mask)
            context = masked_l1_loss(real, raw, 1.0 - ops.cast(mask, "float32"))
            rec = cfg.hole_weight * ops.cast(kept, hole.dtype) * hole + (1.0 - cfg.hole_weight) * context
        terms["g_rec"] = (cfg.lambda_rec, rec)
        zeros = ops.zeros_like(rec)
        if cfg.lambda_bdy > 0:
            used = r >= cfg.boundary_min_resolution
            bdy = boundary_loss(real, raw, mask, cfg.boundary_kernel) if used else zeros
            terms["g_bdy"] = (cfg.lambda_bdy if used else 0.0, bdy)
        if self.feature_extractor is not None:
            used = r >= cfg.feature_min_resolution
            feat = perceptual_loss(self.feature_extractor, real, raw) if used else zeros
            terms["g_feat"] = (
                cfg.lambda_feat if used else 0.0,
                feat if kept is None else feat * ops.cast(kept, feat.dtype),
            )
        if dfm:
            real_features = self.discriminator(real, training=True, return_features=True)["features"]
            matched = [
                per_example_mean(ops.abs(ops.stop_gradient(ops.cast(a, "float32")) - ops.cast(b, "float32")))
                for a, b in zip(real_features, fake_out["features"])
            ]
            value = sum(matched) / len(matched)
            terms["g_dfm"] = (cfg.lambda_dfm, value if kept is None else value * ops.cast(kept, value.dtype))
        return terms

    def generator_output(self, batch):
        """G's raw output I_syn for the batch (training mode), what `generator_terms` takes."""
        return self._generate(batch, training=True)["image"]

    def generator_losses(self, batch, seed):
        terms = self.generator_terms(batch, self.generator_output(batch))
        losses = {name: value for name, (_, value) in terms.items()}
        losses["g_loss"] = sum(weight * value for weight, value in terms.values())
        return losses

    # -- inference and samples ------------------------------------------------------------------------------------
    def complete(self, image, mask, attributes):
        """(raw, composited) at the current stage; see `networks.complete`."""
        return complete(self.generator, image, mask, attributes)

    def sample_rows(self, batch):
        """Rows: masked input (hole white), completion with the real attributes, one row per attribute with that
        attribute flipped, ground truth; tiles upsampled (nearest) to at least 64 px."""
        pooled = self.at_stage_resolution(batch)
        attributes = batch["attributes"]
        factor = max(1, SAMPLE_MIN_SIZE // self.generator.current_resolution)

        def completion(attrs):
            return complete(self.generator, batch["image"], batch["mask"], attrs)[1]

        rows = [("masked input", pooled["observed"] + pooled["mask"]), ("completion", completion(attributes))]
        for i, name in enumerate(self.config.data.attributes):
            rows.append((f"{name} flipped", completion(flip_attribute(attributes, i))))
        rows.append(("ground truth", pooled["image"]))
        return [(label, upsample2x(images, factor)) for label, images in rows]

    # -- inference contract (GANTrainer.infer, task "complete") ---------------------------------------------------
    task = "complete"

    def infer(self, inputs):
        """{"image" [N,S,S,3], "mask" [N,S,S,1], "attributes"} -> {"completed", "raw"} at the current stage's
        resolution R (the stage of the restored checkpoint; S when training finished), via `complete()`."""
        raw, completed = self.complete(inputs["image"], inputs["mask"], ops.cast(inputs["attributes"], "float32"))
        return {"completed": completed, "raw": raw}
