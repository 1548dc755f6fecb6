"""Face completion with controllable attributes, trained progressively (Chen & Zhong: Chen, Nie, Wu, Healey, "High
Resolution Face Completion with Multiple Controllable Attributes via Fully End-to-End Progressive Generative
Adversarial Networks", arXiv 1801.07632).

Contract (S = data.image_size, R = resolution of the current stage, K attributes):
  I_real [N, R, R, 3] in [-1, 1]; M [N, R, R, 1] in [0, 1], 1 = hole (binary at R = S; at R < S the average-pooled
  binary mask); I_obs = I_real with the hole removed (at R < S the average-pooled full-resolution I_obs);
  A [N, K] in {0, 1}.

Generator G(I_obs, M, A) = G_compl(G_enc(I_obs, M), A), one forward pass, U-shaped, instance norm:
  G_enc:   from_rgb[R] (1x1 conv of concat(I_obs, M)) -> per resolution two 3x3 convs + 2x average pool -> 4x4
  neck:    at the start resolution the tiled attributes are concatenated (TileAttributes), two 3x3 convs
  G_compl: per resolution nearest 2x upsample, concat the encoder feature of that resolution (the output of its
           first conv, through `model.skip_residual_blocks` ResidualBlocks when attributes are used, else copied),
           two 3x3 convs; to_rgb[R] (1x1 conv + tanh)
  inputs {"image": I_obs, "mask": M, "attributes": A}; outputs {"image": I_syn (raw), "composited":
  I_syn * M + I_obs} (I_obs is zero in the hole already; at full size this is I_syn * M + I * (1 - M)).
Discriminator D(I) -> {"src": [N, 1] real/fake logit, "cls": [N, K] attribute logits}: from_rgb[R], per resolution
two 3x3 convs (LeakyReLU, no norm) + 2x average pool, at the start resolution minibatch stddev, 3x3 conv, dense,
and the two heads on the shared trunk.

Progressive growing (Karras et al., ICLR 2018): stage s trains at R = start_resolution * 2^s. Both networks hold
the layers of every resolution from construction; `set_stage(s)` selects the graph. A new stage fades in over
`progressive.fade_images` images, then trains `progressive.stable_images` images at alpha = 1:
  G_enc input:  alpha * enc_block_R(from_rgb_R(x)) + (1 - alpha) * from_rgb_{R/2}(avgpool(x))
  G output:     alpha * to_rgb_R(dec_block_R(h)) + (1 - alpha) * upsample(to_rgb_{R/2}(h_{R/2}))
  D input side: like G_enc.
So at alpha = 0, G_s(x) = upsample2x(G_{s-1}(avgpool2x(x))). alpha is a non-trainable variable of each network,
assigned by the trainer every step from its step counter: alpha = clip((step - phase start) / fade_steps, 0, 1).

Losses, per example (the trainer reduces them once over the global batch). A_obs = A_real with probability 1/2,
else A_real with one random attribute flipped (kept = 1 for the unflipped rows); fakes = the raw I_syn (loss.d_fake
"raw", the paper's D input) or the composited one ("composited"); during a fade-in I_real is PGGAN's faded real,
lerp(up2x(down2x(x)), x, alpha) (loss.fade_reals). Every image term is a per-element mean:
  D: adv(D_src(I_real), D_src(fakes mixed with the history buffer)) + lambda_attr * BCE(D_cls(I_real), A_real)
     + lambda_attr * BCE(D_cls(I_syn), A_obs) [loss.d_attr_fakes] [+ lambda_gp * GP for adversarial "wgan"]
  G: adv(D_src(fakes)) + lambda_attr * BCE(D_cls(I_syn), A_obs)
     + lambda_rec * masked_l1(I_real, I_syn, M, hole_weight)      (hole_weight 0.7 inside, 0.3 outside; the hole
                                                                    part x kept under loss.rec_on_flipped "context")
     + lambda_feat * mean((VGG16_relu2_2(I_real) - VGG16_relu2_2(I_syn))^2 / 12.75^2)   (from 32x32)
     + lambda_dfm * mean over D's trunk layers of mean|D_l(I_real) - D_l(I_syn)|          (feature matching)
     + lambda_bdy * mean(w * |I_real - I_syn|), w = 1 - |2 mean_filter_k([M > 0]) - 1|  (from 16x16)
`PGGANCompletion.generator_terms` returns them as name -> (weight, value); the loss-balance readout
(`tf_faceedit.training.loss_balance`) differentiates each at G's output.
Defaults: lambda_rec 500, lambda_feat 10, lambda_bdy 5000 (k = 7), lambda_attr 2, Adam 2e-4 (0.5, 0.99), batch 16.

Layout (as mmagic's editors/pggan/): `config.py` (the typed config), `networks.py` (generator, discriminator,
`observe`, `complete`), `trainer.py` (schedule, losses, step draws, samples, inference); the progressive machinery
(`ProgressiveNetwork`, `stage_resolutions`, `filters_at`, `he_std`) is `tf_faceedit.layers.progressive`. This
package exports its own names (`__all__`); the serializable names (`tf_faceedit>PGGANCompletionGenerator`,
`tf_faceedit>PGGANCompletionDiscriminator`) are those the former single-file module registered, so its saved files
load.
"""

from tf_faceedit import registry
from tf_faceedit.methods.pggan_completion.config import (
    PGGANCompletionConfig,
    PGGANCompletionLossConfig,
    PGGANCompletionModelConfig,
    ProgressiveConfig,
)
from tf_faceedit.methods.pggan_completion.networks import (
    PGGANCompletionDiscriminator,
    PGGANCompletionGenerator,
    build_discriminator,
    build_generator,
    complete,
    fade_real,
    observe,
)
from tf_faceedit.methods.pggan_completion.trainer import SAMPLE_MIN_SIZE, PGGANCompletion

__all__ = [
    "SAMPLE_MIN_SIZE",
    "PGGANCompletion",
    "PGGANCompletionConfig",
    "PGGANCompletionDiscriminator",
    "PGGANCompletionGenerator",
    "PGGANCompletionLossConfig",
    "PGGANCompletionModelConfig",
    "ProgressiveConfig",
    "build_discriminator",
    "build_generator",
    "complete",
    "fade_real",
    "observe",
]

registry.register(
    "pggan_completion",
    PGGANCompletionConfig,
    PGGANCompletion,
    "Progressive face completion with controllable attributes (Chen & Zhong, arXiv 1801.07632)",
    # the VGG16 feature loss only trains: restored for inference, no VGG16 is built
    registry.Capabilities(
        task="complete", inference_overrides={"loss.lambda_feat": 0}, inference_networks=("generator",)
    ),
)
