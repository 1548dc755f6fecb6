"""Parameter counts and FLOPs of the compared networks: ours counted from the built Keras models, the PyTorch
references' from their architecture (no torch needed), and the FLOPs of one training iteration.

How FLOPs are counted (the same rule on both sides, so the two columns compare):
  * model FLOPs, not executed FLOPs (the convention of MFU): 2 x the multiply-adds of every convolution, transposed
    convolution and dense layer as the architecture defines it: a convolution does kh*kw*C_in*C_out multiply-adds
    per OUTPUT position (padding taps included), a transposed convolution kh*kw*C_in*C_out per INPUT position, a dense
    layer in*out per row. Norms, activations, bias adds, resizes and the losses are left out (a few percent of the
    total, and memory-bound). A faster implementation of the same layer (our small-map matmuls, blocked heads, a
    pass shared between two calls) does not change the count: it shows as a higher rate.
  * ours: `forward_flops(model, inputs)` calls the model once eagerly (batch 1) and records every Keras layer call
    (`keras.layers.Layer.__call__`, patched for that call): the convolution and dense layers, and our own layers
    whose `.conv` sublayer the call used through a fast path without calling it (`layers/blocks.py`).
  * the references: `reference_networks(method, size)` restates their layer lists (SaGAN: github
    elvisyjlin/SpatialAttentionGAN `sagan.py`; Fader: facebookresearch/FaderNetworks `src/model.py`, at the commits
    `../shared/bench/peers/README.md` pins) as (kind, C_in, C_out, kernel, input size, output size) rows, with the
    driver's settings (SaGAN paper widths, its 64^2 cls kernel 1x1; Fader init_fm 32, max_fm 512, a 2x2 latent, one
    attribute as their 2-way one-hot, batch norm, hid_dim 512). `tests/benchmarks/test_flops.py` checks the
    parameter counts against what the driver printed for the references.
  * one training iteration (`iteration_flops`), from each network's forward FLOPs F per image, with the rule
    "a forward that is differentiated costs 3 F (forward, input and weight gradients); a forward whose gradient
    only flows through to the input costs 2 F; the gradient penalty's D(x_hat) and its input gradient cost 6 F
    (forward 1, input gradient 1, and the backward of both, 4)", applied to what the references' loops do:
      SaGAN (3 critic updates, each on its own batch, then 1 generator update):
        critic update: G(x) without gradient F_G, D(real) 3 F_D, D(fake) 3 F_D, gradient penalty 6 F_D;
        generator update: G(x, c_t), G(G(x, c_t), c), G(x, c) 3 F_G each, D(fake) 2 F_D;
        per image of a batch: 3 (F_G + 12 F_D) + 9 F_G + 2 F_D = 12 F_G + 38 F_D.
      Fader (1 latent-discriminator update, 1 autoencoder update): E(x) without gradient F_E, P(z) 3 F_P;
        autoencoder 3 (F_E + F_Dec), P(E(x)) 2 F_P: 4 F_E + 3 F_Dec + 5 F_P.
    times the batch size (16). Batch-1 forwards: the network's F.
"""

import contextlib
import math

# ---------------------------------------------------------------------------------------------------------------
# Counting rules


def conv_flops(kernel_h, kernel_w, c_in, c_out, out_h, out_w):
    """FLOPs (2 x multiply-adds) of a convolution: kh*kw*C_in*C_out per output position."""
    return 2 * kernel_h * kernel_w * c_in * c_out * out_h * out_w


def transposed_conv_flops(kernel_h, kernel_w, c_in, c_out, in_h, in_w):
    """FLOPs of a transposed convolution: kh*kw*C_in*C_out per input position."""
    return 2 * kernel_h * kernel_w * c_in * c_out * in_h * in_w


def dense_flops(n_in, n_out, rows=1):
    return 2 * n_in * n_out * rows


# ---------------------------------------------------------------------------------------------------------------
# Ours: the built Keras models


def count_params(model):
    """Trainable parameters (what the references' `sum(p.numel() for p in m.parameters())` counts: their batch-norm
    running statistics are buffers, not parameters)."""
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _kind(layer):
    """ "conv", "transpose", "dense" or None: which counting rule a Keras layer follows."""
    import keras

    if isinstance(layer, keras.layers.Conv2DTranspose | keras.layers.Conv1DTranspose | keras.layers.Conv3DTranspose):
        return "transpose"
    if isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D | keras.layers.Conv3D):
        return "conv"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


def _shape(value):
    """The static shape of a tensor, or None (dicts and lists: the models and merging layers, never counted)."""
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(d) for d in shape)


def _layer_flops(kind, conv, input_shape, output_shape):
    """The counting rule of `kind` for `conv` (a Keras conv/dense layer) seen with these shapes (channels last)."""
    import numpy as np

    kernel = tuple(int(d) for d in conv.kernel.shape)
    if kind == "dense":
        return 2 * int(np.prod(kernel)) * int(np.prod(input_shape[:-1]))
    if kind == "transpose":  # kernel [*k, C_out, C_in]; per input position
        return 2 * int(np.prod(kernel)) * int(np.prod(input_shape[:-1]))
    return 2 * int(np.prod(kernel)) * int(np.prod(output_shape[:-1]))  # kernel [*k, C_in, C_out]; per output


@contextlib.contextmanager
def _recording_calls(records):
    """Patches `keras.layers.Layer.__call__` so that every call appends (layer, input shape, output shape, depth,
    index of the first record made inside it)."""
    import keras

    layer_class = keras.layers.Layer
    original = layer_class.__call__
    depth = [0]

    def call(self, *args, **kwargs):
        start = len(records)
        depth[0] += 1
        try:
            out = original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
        first = args[0] if args else next(iter(kwargs.values()), None)
        records.append((self, _shape(first), _shape(out), depth[0], start))
        return out

    layer_class.__call__ = call
    try:
        yield
    finally:
        layer_class.__call__ = original


def forward_flops(model, inputs):
    """(model FLOPs of one eager call of `model` on `inputs`, {layer path: FLOPs}); see the module docstring. Call
    it with a batch of 1 for FLOPs per image."""
    records = []
    with _recording_calls(records):
        model(inputs, training=False)
    called = {id(layer) for layer, *_ in records}
    per_layer, total = {}, 0
    for layer, in_shape, out_shape, _, _ in records:
        kind, conv = _kind(layer), layer
        if kind is None:
            inner = getattr(layer, "conv", None)  # our ConvNormAct: a fast path uses its conv's kernel directly
            if inner is None or id(inner) in called or _kind(inner) is None or in_shape is None:
                continue
            kind, conv = _kind(inner), inner
        if in_shape is None:
            continue
        flops = _layer_flops(kind, conv, in_shape, out_shape)
        name = getattr(layer, "path", layer.name)
        per_layer[name] = per_layer.get(name, 0) + flops
        total += flops
    return total, per_layer


def batch_one(size, attributes=1):
    """A batch-1 input dict {"image", "attributes"} (backend tensors, seeded)."""
    import keras
    import numpy as np

    rng = np.random.RandomState(0)
    return {
        "image": keras.ops.convert_to_tensor(rng.uniform(-1, 1, (1, size, size, 3)).astype("float32")),
        "attributes": keras.ops.convert_to_tensor(rng.randint(0, 2, (1, attributes)).astype("float32")),
    }


def our_networks(trainer, method, size):
    """{network: {"params", "flops"}} of the compared networks of a built SaGAN or Fader trainer (FLOPs per image):
    SaGAN "G" (AMN + SAN) and "D"; Fader "ae.enc", "ae.dec", "ae" and "lat_dis"."""
    inputs = batch_one(size, len(trainer.config.data.attributes))
    out = {}
    if method == "sagan":
        out["G"] = {"params": count_params(trainer.generator), "flops": forward_flops(trainer.generator, inputs)[0]}
        out["D"] = {
            "params": count_params(trainer.discriminator),
            "flops": forward_flops(trainer.discriminator, inputs["image"])[0],
        }
        return out
    encoder, decoder = trainer.encoder, trainer.decoder
    latent = encoder(inputs["image"], training=False)
    out["ae.enc"] = {"params": count_params(encoder), "flops": forward_flops(encoder, inputs["image"])[0]}
    out["ae.dec"] = {
        "params": count_params(decoder),
        "flops": forward_flops(decoder, {"latent": latent, "attributes": inputs["attributes"]})[0],
    }
    out["ae"] = {
        "params": out["ae.enc"]["params"] + out["ae.dec"]["params"],
        "flops": out["ae.enc"]["flops"] + out["ae.dec"]["flops"],
    }
    out["lat_dis"] = {"params": count_params(trainer.lat_dis), "flops": forward_flops(trainer.lat_dis, latent)[0]}
    return out


# ---------------------------------------------------------------------------------------------------------------
# The references, from their architecture

# (kind, C_in, C_out, kernel, in size, out size, bias, extra params (affine norms))


def _conv(c_in, c_out, k, size_in, size_out, bias=True, norm=0):
    return ("conv", c_in, c_out, k, size_in, size_out, bias, norm)


def _deconv(c_in, c_out, k, size_in, size_out, bias=True, norm=0):
    return ("transpose", c_in, c_out, k, size_in, size_out, bias, norm)


def _linear(n_in, n_out):
    return ("dense", n_in, n_out, 1, 1, 1, True, 0)


def _sagan_generator_half(c_in, c_out, size):
    """`sagan._Generator(c_in, c_out)`: instance norms without affine parameters; the residual blocks' two convs are
    followed by BatchNorm2d (affine: 2 x 256 parameters each)."""
    s = size
    rows = [_conv(c_in, 32, 7, s, s), _conv(32, 64, 4, s, s // 2), _conv(64, 128, 4, s // 2, s // 4)]
    rows += [_conv(128, 256, 4, s // 4, s // 8)]
    rows += [_conv(256, 256, 3, s // 8, s // 8, norm=2 * 256) for _ in range(4 * 2)]
    rows += [_deconv(256, 128, 4, s // 8, s // 4), _deconv(128, 64, 4, s // 4, s // 2), _deconv(64, 32, 4, s // 2, s)]
    rows += [_deconv(32, c_out, 7, s, s)]
    return rows


def _sagan_discriminator(size):
    """`sagan.Discriminator`: 6 convs k4 s2 3 -> 32 .. 1024 at every size; src conv 3x3 (pad 1); cls conv with the
    last map's size as kernel (2x2 at 128^2; the driver's 1x1 at 64^2)."""
    rows, c_in, s = [], 3, size
    for i in range(6):
        c_out = 32 * 2**i
        rows.append(_conv(c_in, c_out, 4, s, s // 2))
        c_in, s = c_out, s // 2
    return rows + [_conv(1024, 1, 3, s, s), _conv(1024, 1, s, s, 1)]


def _fader_layers(size, n_attr=2, init_fm=32, max_fm=512, latent=2):
    """`build_layers` of FaderNetworks with the driver's settings: encoder convs k4 s2 (batch norm after all but the
    first), decoder transposed convs k4 s2 without bias that take the attributes' n_attr maps too (batch norm after
    all but the last); the latent discriminator: the next encoder conv (to 1x1, batch norm), Linear(512, 512),
    Linear(512, n_attr)."""
    n_layers = int(round(math.log2(size / latent)))
    enc, dec, n_in, n_out, s = [], [], 3, init_fm, size
    for i in range(n_layers):
        enc.append(_conv(n_in, n_out, 4, s, s // 2, norm=2 * n_out if i > 0 else 0))
        dec.insert(0, _deconv(n_out + n_attr, n_in, 4, s // 2, s, bias=False, norm=2 * n_in if i > 0 else 0))
        n_in, n_out, s = n_out, min(2 * n_out, max_fm), s // 2
    conv_out = min(init_fm * 2 ** (int(math.log2(size)) - 1), max_fm)
    lat_dis = [_conv(n_in, n_out, 4, s, s // 2, norm=2 * n_out), _linear(conv_out, 512), _linear(512, n_attr)]
    return enc, dec, lat_dis


def _totals(rows):
    params = flops = 0
    for kind, c_in, c_out, k, size_in, size_out, bias, norm in rows:
        params += (k if kind != "dense" else 1) ** 2 * c_in * c_out + (c_out if bias else 0) + norm
        if kind == "conv":
            flops += conv_flops(k, k, c_in, c_out, size_out, size_out)
        elif kind == "transpose":
            flops += transposed_conv_flops(k, k, c_in, c_out, size_in, size_in)
        else:
            flops += dense_flops(c_in, c_out)
    return {"params": params, "flops": flops}


def reference_networks(method, size):
    """{network: {"params", "flops"}} of the reference implementation as the driver builds it (FLOPs per image);
    the names are the driver's "params" keys (SaGAN G, G.AMN, G.SAN, D; Fader ae, ae.enc, ae.dec, lat_dis)."""
    if method == "sagan":
        amn, san = _totals(_sagan_generator_half(4, 3, size)), _totals(_sagan_generator_half(3, 1, size))
        return {
            "G": {key: amn[key] + san[key] for key in amn},
            "G.AMN": amn,
            "G.SAN": san,
            "D": _totals(_sagan_discriminator(size)),
        }
    if method == "fader":
        enc, dec, lat_dis = (_totals(rows) for rows in _fader_layers(size))
        return {"ae": {key: enc[key] + dec[key] for key in enc}, "ae.enc": enc, "ae.dec": dec, "lat_dis": lat_dis}
    raise ValueError(f"no reference architecture for {method!r}")


# ---------------------------------------------------------------------------------------------------------------
# Per case


def iteration_flops(method, networks, batch):
    """Model FLOPs of one training iteration of the driver's recipe (module docstring), from per-image forward FLOPs."""
    if method == "sagan":
        g, d = networks["G"]["flops"], networks["D"]["flops"]
        return batch * (12 * g + 38 * d)
    enc, dec, lat_dis = networks["ae.enc"]["flops"], networks["ae.dec"]["flops"], networks["lat_dis"]["flops"]
    return batch * (4 * enc + 3 * dec + 5 * lat_dis)


def case_flops(method, case, networks, batch):
    """Model FLOPs of one iteration of a compare_peers case (train_iter, or a forward of G / the autoencoder)."""
    if case == "train_iter":
        return iteration_flops(method, networks, batch)
    return batch * networks["G" if method == "sagan" else "ae"]["flops"]


def case_params(method, networks):
    """The parameters a case's table row shows: {network: count} of the compared networks."""
    names = ("G", "D") if method == "sagan" else ("ae", "lat_dis")
    return {name: networks[name]["params"] for name in names}


def relative_difference(ours, reference):
    return abs(ours - reference) / max(abs(reference), 1)
