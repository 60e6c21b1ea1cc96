"""The coder's copy of a VAE: encoder and decoder in exact fixed-point arithmetic.

Floating-point networks do not reproduce across machines: BLAS libraries,
their kernels, the CPU's instruction set and the thread count all change the
order of the sums, and so the last bits of every output. The coder therefore
evaluates a quantized copy of the fitted networks in which every number is an
integer and every intermediate result is exact:

* A layer's inputs are integers ``a`` with ``|a_k| <= U_k``; the input of the
  real network is ``a_k * 2**-F_k``. The layer's weights, with the input
  scales folded in, are rounded to integers ``W`` with at most ``B`` bits,
  the bias to an integer ``b`` on the output scale, so ``y = W a + b`` is the
  layer's output times ``2**F_out``.
* ``B`` is chosen so that ``sum_k |W_jk| U_k + |b_j| <= 2**52`` for every
  unit ``j`` (checked exactly in int64). Every product and every partial sum
  of ``W a + b``, in any order, is then an integer below ``2**53``, which
  float64 holds exactly: BLAS, FMA, blocking and threads give the same bits.
  Where ``sum_k |W_jk| U_k <= 2**24`` is reachable with at least 16-bit
  weights (a first layer fed 0/1 or one-hot inputs), ``B`` is chosen for
  that instead, and the product runs in float32, exact for the same reason
  and twice as fast. Which layers run in float32 follows from the arrays
  alone, and a model whose bounds break these limits is refused.
* The bound ``Y_j = sum_k |W_jk| U_k + |b_j|`` is also the output's range.
  After ReLU the activations are shifted right by ``r`` bits (``rint(y *
  2**-r)``, exact) so that they stay below ``2**ACTIVATION_BITS``; the next
  layer's bounds are ``rint(Y_j * 2**-r)``. Nothing saturates: the bounds are
  worst cases, not estimates from data.
* Encoder inputs are the row's values after the encoder's preprocessing
  (0/1, one-hot and mask codes exactly, times ``2**F`` with the finest
  ``F`` of the network's other inputs, so that all share one scale; affine
  maps ``(x - center) / scale`` in float64, then rounded to ``2**-16`` and
  clipped to +-32; raw real values rounded to ``2**-8`` and clipped to
  +-2**20). Clipping only changes q(z|x), which encoder and decoder compute
  alike, so coding stays lossless. The decoder's input is the latent cell
  index at ``2**-12`` resolution (the finest latent grid), bounded by
  ``32 * 2**12``.

The quantization itself uses only exact operations on the float weights
(scaling by powers of two, ``rint``, integer sums), so the same fitted
estimator gives the same portable model on every machine. The arrays and a
JSON configuration are all a :class:`PortableModel` holds; no pickle and no
torch are needed to use it.
"""

import hashlib
import json

import numpy as np

from ..likelihoods import Bernoulli, Categorical, DiscretizedLogistic, Gaussian, Mixed

__all__ = ["PortableModel", "ARITHMETIC_VERSION", "likelihood_to_json", "likelihood_from_json"]

ARITHMETIC_VERSION = 2   # bump whenever any number handed to the entropy coder may change
# 2: interpolated CDF lookups; 0/1 encoder inputs on the scale of the affine ones they sit beside
READ_ARITHMETIC_VERSIONS = (1, 2)  # decoded (files and model files); only ARITHMETIC_VERSION is written
ACTIVATION_BITS = 26     # hidden activations lie in [0, 2**26]
MAX_WEIGHT_BITS = 24
MIN_WEIGHT_BITS = 8
FLOAT32_MIN_WEIGHT_BITS = 16
_SUM_LIMIT = 2 ** 52     # |W a + b| never exceeds this, so float64 sums are exact
_FLOAT32_LIMIT = 2 ** 24  # |W a| below this: float32 sums are exact
LATENT_SCALE_BITS = 12   # decoder input: z * 2**12 (latent_precision <= 12)
LATENT_BOUND = 32 * 2 ** LATENT_SCALE_BITS   # latent_clip <= 20, rounded up to whole groups of cells

# encoder input formats: (scale bits F, clip in real units) per preprocessing kind; the affine clip is
# skvae.modules.AFFINE_INPUT_CLIP, the float encoder's (not imported: decoding needs no torch)
_INPUT_FORMATS = {"binary": (0, 1.0), "onehot": (0, 1.0), "affine": (16, 32.0), "real": (8, 2.0 ** 20),
                  "mask": (0, 1.0)}


# -- likelihoods as JSON -----------------------------------------------------------

def likelihood_to_json(likelihood):
    """A JSON-ready description of a fitted likelihood the coder supports."""
    if isinstance(likelihood, Mixed):
        return {"kind": "mixed", "parts": [[likelihood_to_json(part), list(map(int, cols))]
                                            for part, cols in likelihood.parts]}
    if isinstance(likelihood, Bernoulli):
        return {"kind": "bernoulli"}
    if isinstance(likelihood, Categorical):
        return {"kind": "categorical", "n_categories": list(likelihood.n_categories)}
    if isinstance(likelihood, DiscretizedLogistic):
        return {"kind": "integer", "low": likelihood.low.tolist(), "high": likelihood.high.tolist(),
                "min_log_scale": float(likelihood.min_log_scale)}
    if isinstance(likelihood, Gaussian):
        return {"kind": "gaussian", "min_log_scale": float(likelihood.min_log_scale),
                "max_log_scale": float(likelihood.max_log_scale),
                "center": None if likelihood.center is None else likelihood.center.tolist(),
                "scale": None if likelihood.scale is None else likelihood.scale.tolist(),
                # only for mixtures: one-component model files keep their bytes and fingerprints
                **({"n_components": likelihood.n_components} if likelihood.n_components != 1 else {})}
    raise ValueError(f"BitsBackCoder cannot code the likelihood {likelihood!r} (supported: bernoulli, "
                     f"categorical, integer, gaussian with a quantization grid, and tables of these)")


def likelihood_from_json(spec):
    """Inverse of :func:`likelihood_to_json`; ValueError for anything malformed."""
    try:
        kind = spec["kind"]
        if kind == "mixed":
            return Mixed([(likelihood_from_json(part), [int(c) for c in cols]) for part, cols in spec["parts"]])
        if kind == "bernoulli":
            return Bernoulli()
        if kind == "categorical":
            return Categorical(spec["n_categories"])
        if kind == "integer":
            return DiscretizedLogistic(spec["low"], spec["high"], float(spec["min_log_scale"]))
        if kind == "gaussian":
            return Gaussian(float(spec["min_log_scale"]), float(spec["max_log_scale"]), spec["center"],
                            spec["scale"], n_components=spec.get("n_components", 1))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad likelihood description {spec!r}: {exc}") from None
    raise ValueError(f"unknown likelihood kind {spec.get('kind')!r}")


def _column_kinds(likelihood, n_features):
    """'binary' for 0/1 columns, else 'other', per column."""
    if isinstance(likelihood, Mixed):
        kinds = [None] * n_features
        for part, cols in likelihood.parts:
            for c, kind in zip(cols, _column_kinds(part, len(cols))):
                kinds[c] = kind
        return kinds
    return ["binary" if isinstance(likelihood, Bernoulli) else "other"] * n_features


def _input_parts(preprocess, likelihood, n_features):
    """The encoder's preprocessing as a list of [kind, columns, extra], in the network's input order.

    Kinds: 'binary' (0/1 as they are), 'real' (raw values), 'onehot' (extra:
    the category counts), 'affine' (extra: center and scale per column).
    """
    from ..modules import Affine, ColumnwiseInput, OneHot

    kinds = _column_kinds(likelihood, n_features)

    def part(module, columns):
        if module is None or type(module).__name__ == "Identity":
            kind = "binary" if all(kinds[c] == "binary" for c in columns) else "real"
            return [kind, columns, None]
        if isinstance(module, OneHot):
            return ["onehot", columns, list(module.n_categories)]
        if isinstance(module, Affine):
            return ["affine", columns, [module.center.double().tolist(), module.scale.double().tolist()]]
        raise ValueError(f"BitsBackCoder cannot code a model whose encoder preprocesses with "
                         f"{type(module).__name__}")

    if isinstance(preprocess, ColumnwiseInput):
        parts = [part(module, getattr(preprocess, f"columns_{i}").tolist())
                 for i, module in enumerate(preprocess.parts)]
        if preprocess.mask_channels:  # a table fitted with missing cells: 0/1 missingness of every column
            parts.append(["mask", list(range(n_features)), None])
        return parts
    return [part(preprocess, list(range(n_features)))]


# -- quantization -----------------------------------------------------------------

def _bit_length(value):
    return int(value).bit_length()


def _worst_case(w, b, bounds):
    """(max |W a|, max |W a + b|) per output over all inputs with |a_k| <= bounds_k, exactly (int64)."""
    if np.abs(w).max(initial=0) * float(np.max(bounds, initial=0)) * w.shape[1] >= 2.0 ** 62:
        raise ValueError("the coder's network has weights or inputs too large to be summed exactly")
    sums = np.abs(w) @ bounds
    return sums, sums + np.abs(b)


def _quantize_layer(weight, bias, scale_bits, bounds):
    """Integer weights, bias and output bounds of one linear layer.

    ``scale_bits`` (F_k) and ``bounds`` (U_k) describe the integer inputs.
    Returns ``(W, b, out_bits, out_bounds)``: ``W a + b`` is the output times
    ``2**out_bits``, and ``|W a + b| <= out_bounds`` elementwise.
    """
    weight = np.asarray(weight, dtype=np.float64) * np.ldexp(1.0, -np.asarray(scale_bits))[None, :]
    bias = np.asarray(bias, dtype=np.float64)
    if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
        raise ValueError("the model has non-finite weights and cannot be coded")
    n_in = weight.shape[1]
    largest = float(np.abs(weight).max(initial=0.0))
    exponent = int(np.frexp(largest)[1]) if largest > 0 else 0   # largest < 2**exponent
    bounds = np.asarray(bounds, dtype=np.int64)
    float64_start = min(MAX_WEIGHT_BITS, 51 - _bit_length(bounds.max(initial=1)) - _bit_length(n_in))
    float32_bits = range(MAX_WEIGHT_BITS, FLOAT32_MIN_WEIGHT_BITS - 1, -1) \
        if bounds.max(initial=0) <= _FLOAT32_LIMIT and n_in < 2 ** 14 else ()
    for bits, limit in [(b, _FLOAT32_LIMIT) for b in float32_bits] + \
            [(b, _SUM_LIMIT) for b in range(float64_start, MIN_WEIGHT_BITS - 1, -1)]:
        out_bits = bits - exponent
        w = np.rint(np.ldexp(weight, out_bits)).astype(np.int64)   # |w| <= 2**bits
        b = np.rint(np.ldexp(bias, out_bits))
        if np.abs(b).max(initial=0) > _SUM_LIMIT:
            continue
        b = b.astype(np.int64)
        sums, out_bounds = _worst_case(w, b, bounds)
        if sums.max(initial=0) <= limit and out_bounds.max(initial=0) <= _SUM_LIMIT:
            return w, b, out_bits, out_bounds
    raise ValueError(f"a layer with {n_in} inputs cannot be evaluated exactly with {MIN_WEIGHT_BITS}-bit "
                     f"weights (inputs too wide or weights/biases of extreme range)")


def _next_bounds(out_bounds, shift):
    """Bounds of ``rint(relu(y) * 2**-shift)`` given ``|y| <= out_bounds``."""
    return np.rint(np.ldexp(out_bounds.astype(np.float64), -shift)).astype(np.int64)


def _evaluation_plan(layers, bounds):
    """Per layer (W^T, b, 2**-shift) ready for BLAS, W^T in float32 where its sums stay below 2**24.

    Recomputes every bound from the arrays, so a damaged or forged model
    whose sums could round is refused instead of decoding differently on
    another machine.
    """
    plan = []
    for index, layer in enumerate(layers):
        w, b, shift = layer["weight"], layer["bias"], int(layer["shift"])
        sums, out_bounds = _worst_case(w, b, bounds)
        if out_bounds.max(initial=0) > _SUM_LIMIT:
            raise ValueError(f"layer {index} can reach {int(out_bounds.max())}, above 2**52: its sums would "
                             f"not be exact")
        exact32 = sums.max(initial=0) <= _FLOAT32_LIMIT and np.max(bounds, initial=0) <= _FLOAT32_LIMIT
        plan.append((w.T.astype(np.float32 if exact32 else np.float64), b.astype(np.float64), 2.0 ** -shift))
        bounds = _next_bounds(out_bounds, shift)
    return plan


_UNIT_KINDS = ("binary", "onehot", "mask")


def _unit_bits(inputs, arithmetic=ARITHMETIC_VERSION):
    """Scale bits F of the 0/1 inputs (binary, one-hot, mask): those of the finest other input, else 0.

    A layer's integer weights share one output scale, so an input on a 2**16
    times finer scale than its neighbours gets 2**16 times smaller integer
    weights: next to one-hot codes at ``F = 0``, the weights of affine inputs
    (``F = 16``) kept only their top few bits of 24. On a common scale every
    input's weights keep the same precision. Networks fed 0/1 inputs alone
    keep ``F = 0`` (and their float32 first layers). Models of arithmetic
    version 1 (model files saved before) were quantized with ``F = 0``
    throughout and are evaluated so.
    """
    if arithmetic == 1:
        return 0
    return max((_INPUT_FORMATS[kind][0] for kind, _, _ in inputs), default=0)


def _input_bounds(inputs, arithmetic=ARITHMETIC_VERSION):
    """Integer encoder inputs: scale bits F_k and bounds U_k, per network input."""
    scale_bits, bounds = [], []
    unit_bits = _unit_bits(inputs, arithmetic)
    for kind, columns, extra in inputs:
        width = sum(extra) if kind == "onehot" else len(columns)
        bits, clip = _INPUT_FORMATS[kind]
        if kind in _UNIT_KINDS:
            bits = unit_bits
        scale_bits += [bits] * width
        bounds += [int(clip * 2 ** bits)] * width
    return np.array(scale_bits, dtype=np.int64), np.array(bounds, dtype=np.int64)


def _linear_layers(mlp):
    import torch.nn as nn

    layers = [m for m in mlp if not isinstance(m, (nn.ReLU, nn.Dropout, nn.Identity))]
    if not all(isinstance(m, nn.Linear) for m in layers) or \
            sum(isinstance(m, nn.ReLU) for m in mlp) != len(layers) - 1:
        raise ValueError("BitsBackCoder codes ReLU MLP encoders and decoders only")
    return [(m.weight.detach().cpu().double().numpy(), m.bias.detach().cpu().double().numpy()) for m in layers]


def _quantize_mlp(layers, scale_bits, bounds):
    """Quantize a ReLU MLP; returns the list of layer dicts and the output scale bits."""
    out = []
    for index, (weight, bias) in enumerate(layers):
        w, b, out_bits, out_bounds = _quantize_layer(weight, bias, scale_bits, bounds)
        shift = 0
        if index < len(layers) - 1:
            shift = max(0, _bit_length(out_bounds.max(initial=0)) - ACTIVATION_BITS)
            bounds = _next_bounds(out_bounds, shift)
            scale_bits = np.full(len(b), out_bits - shift)
        out.append({"weight": w, "bias": b, "shift": shift})
    return out, int(out_bits)


def layer_arrays(prefix, layers):
    """``{prefix.i.weight, prefix.i.bias: int64 array}`` of a list of quantized layers (how files store them)."""
    out = {}
    for i, layer in enumerate(layers):
        out[f"{prefix}.{i}.weight"] = layer["weight"].astype("<i8")
        out[f"{prefix}.{i}.bias"] = layer["bias"].astype("<i8")
    return out


def layers_from_arrays(arrays, prefix, shifts):
    """The layers :func:`layer_arrays` stored under ``prefix``, one per entry of ``shifts``; KeyError if one is
    missing, TypeError if a shift is not a number."""
    return [{"weight": np.asarray(arrays[f"{prefix}.{i}.weight"]), "bias": np.asarray(arrays[f"{prefix}.{i}.bias"]),
             "shift": int(shift)} for i, shift in enumerate(shifts)]


def input_width(inputs, n_features):
    """Width of the encoder input that a portable model's input description gives, or ValueError if it is
    malformed (a stored description is read from a file, so every part is checked)."""
    try:
        width = 0
        for kind, cols, extra in inputs:
            if kind not in _INPUT_FORMATS or not all(0 <= int(c) < n_features for c in cols):
                raise ValueError
            if kind == "onehot" and len(extra) != len(cols):
                raise ValueError
            if kind == "affine" and not len(extra[0]) == len(extra[1]) == len(cols):
                raise ValueError
            width += sum(extra) if kind == "onehot" else len(cols)
    except (ValueError, TypeError, IndexError):
        raise ValueError(f"bad encoder input description {inputs!r}") from None
    return width


class PortableModel:
    """Fixed-point encoder and decoder of a fitted VAE, with its likelihood.

    Build it with :meth:`from_module`, or from stored arrays with
    :meth:`from_arrays`. :meth:`encode` and :meth:`decode` return the
    networks' outputs as float64 arrays that are the same bit for bit on every
    platform.

    ``arithmetic_version`` is :data:`ARITHMETIC_VERSION` for every model
    built now; a model file of version 1 (0/1 encoder inputs at scale
    ``2**0``, see :func:`_unit_bits`) loads as a version-1 model, evaluated
    exactly as then.
    """

    arithmetic_version = ARITHMETIC_VERSION  # also that of subclasses (PortableLadder) that do not set it

    def __init__(self, likelihood, n_features, latent_dim, inputs, encoder, encoder_bits, decoder, decoder_bits,
                 arithmetic_version=ARITHMETIC_VERSION):
        if arithmetic_version not in READ_ARITHMETIC_VERSIONS:
            raise ValueError(f"the model uses arithmetic version {arithmetic_version!r}; this skvae implements "
                             f"versions {', '.join(map(str, READ_ARITHMETIC_VERSIONS))}")
        self.arithmetic_version = int(arithmetic_version)
        self.likelihood = likelihood
        self.n_features = int(n_features)
        self.latent_dim = int(latent_dim)
        self.inputs = inputs
        self.encoder_layers = encoder
        self.decoder_layers = decoder
        self.encoder_bits = int(encoder_bits)
        self.decoder_bits = int(decoder_bits)
        self._check()
        self._encoder = _evaluation_plan(encoder, _input_bounds(inputs, self.arithmetic_version)[1])
        self._decoder = _evaluation_plan(decoder, np.full(self.latent_dim, LATENT_BOUND, dtype=np.int64))

    @classmethod
    def from_module(cls, module, likelihood, n_features):
        """Quantize a fitted :class:`~skvae.modules.VAEModule` (exact operations only)."""
        inputs = _input_parts(module.encoder.preprocess, likelihood, n_features)
        encoder, encoder_bits = _quantize_mlp(_linear_layers(module.encoder.net), *_input_bounds(inputs))
        latent_dim = module.latent_dim
        decoder, decoder_bits = _quantize_mlp(_linear_layers(module.decoder.net),
                                              np.full(latent_dim, LATENT_SCALE_BITS),
                                              np.full(latent_dim, LATENT_BOUND, dtype=np.int64))
        return cls(likelihood, n_features, latent_dim, inputs, encoder, encoder_bits, decoder, decoder_bits)

    def _check(self):
        n_params = self.likelihood.n_params(self.n_features)
        width = input_width(self.inputs, self.n_features)
        for name, layers, n_in, n_out in (("encoder", self.encoder_layers, width, 2 * self.latent_dim),
                                          ("decoder", self.decoder_layers, self.latent_dim, n_params)):
            if not layers:
                raise ValueError(f"the {name} has no layers")
            for layer in layers:
                w, b = layer["weight"], layer["bias"]
                if w.ndim != 2 or w.shape[1] != n_in or b.shape != (w.shape[0],):
                    raise ValueError(f"the {name}'s layer arrays have inconsistent shapes "
                                     f"{w.shape} and {b.shape} (expected {n_in} inputs)")
                if w.dtype.kind != "i" or b.dtype.kind != "i" or np.abs(w).max(initial=0) > 2 ** MAX_WEIGHT_BITS:
                    raise ValueError(f"the {name}'s weights must be integers of at most {MAX_WEIGHT_BITS} bits")
                if not 0 <= int(layer["shift"]) <= 62:
                    raise ValueError(f"the {name} has a bad shift {layer['shift']!r}")
                n_in = w.shape[0]
            if n_in != n_out:
                raise ValueError(f"the {name} has {n_in} outputs, expected {n_out}")

    # -- evaluation ---------------------------------------------------------------

    def _input(self, x):
        """Integer encoder inputs of rows x (float64 values as the likelihood sees them)."""
        blocks = []
        unit = 2.0 ** _unit_bits(self.inputs, self.arithmetic_version)  # a 0/1 input's 1 (see _unit_bits); exact
        for kind, columns, extra in self.inputs:
            values = x if columns == list(range(x.shape[1])) else x[:, columns]
            missing = np.isnan(values)  # a missing cell (tables) feeds zeros, as in the float encoder
            if kind == "mask":
                blocks.append(missing * unit)
                continue
            if kind == "binary":  # 0/1 already: exact integers
                blocks.append(np.where(missing, 0.0, values) * unit)
                continue
            if kind == "onehot":  # NaN equals no category
                for j, k in enumerate(extra):
                    blocks.append((values[:, j:j + 1] == np.arange(k)[None, :]) * unit)
                continue
            if kind == "affine":
                center, half = (np.asarray(e, dtype=np.float64) for e in extra)
                values = (values - center) / half
            bits, clip = _INPUT_FORMATS[kind]
            values = np.clip(np.rint(np.ldexp(values, bits)), -clip * 2 ** bits, clip * 2 ** bits)
            blocks.append(np.where(missing, 0.0, values))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)

    @staticmethod
    def _run(layers, a):
        for index, (weight, bias, scale) in enumerate(layers):
            # exact: integers below 2**53 (float32 layers: below 2**24) whatever the summation order
            if weight.dtype == np.float32:
                a = (a.astype(np.float32) @ weight).astype(np.float64) + bias
            else:
                a = a @ weight + bias
            if index < len(layers) - 1:
                a = np.rint(np.maximum(a, 0.0) * scale)
        return a

    def encode(self, x):
        """(mu, logvar) of q(z|x) for rows x (float64), each of shape (n, latent_dim)."""
        out = np.ldexp(self._run(self._encoder, self._input(np.asarray(x, dtype=np.float64))), -self.encoder_bits)
        return out[:, :self.latent_dim], out[:, self.latent_dim:]

    def decode(self, cells, precision):
        """The likelihood's parameters at latent cells ``z = cells * 2**-precision``."""
        z = np.ldexp(np.asarray(cells, dtype=np.float64).reshape(-1, self.latent_dim), LATENT_SCALE_BITS - precision)
        return np.ldexp(self._run(self._decoder, z), -self.decoder_bits)

    # -- storage ------------------------------------------------------------------

    def config(self):
        """The JSON-ready configuration (everything but the arrays)."""
        return {"arithmetic_version": self.arithmetic_version, "likelihood": likelihood_to_json(self.likelihood),
                "n_features": self.n_features, "latent_dim": self.latent_dim, "inputs": self.inputs,
                "encoder_bits": self.encoder_bits, "decoder_bits": self.decoder_bits,
                "encoder_shifts": [int(layer["shift"]) for layer in self.encoder_layers],
                "decoder_shifts": [int(layer["shift"]) for layer in self.decoder_layers]}

    def arrays(self):
        """The integer arrays by name (little-endian int64)."""
        return {**layer_arrays("encoder", self.encoder_layers), **layer_arrays("decoder", self.decoder_layers)}

    @classmethod
    def from_arrays(cls, config, arrays):
        """Rebuild from :meth:`config` and :meth:`arrays`; ValueError names what is wrong."""
        version = config.get("arithmetic_version")
        if version not in READ_ARITHMETIC_VERSIONS or isinstance(version, bool):
            raise ValueError(f"the model uses arithmetic version {version!r}; this skvae implements versions "
                             f"{', '.join(map(str, READ_ARITHMETIC_VERSIONS))}")
        try:
            likelihood = likelihood_from_json(config["likelihood"])
            layers = {name: layers_from_arrays(arrays, name, config[f"{name}_shifts"])
                      for name in ("encoder", "decoder")}
            return cls(likelihood, config["n_features"], config["latent_dim"], config["inputs"], layers["encoder"],
                       config["encoder_bits"], layers["decoder"], config["decoder_bits"], version)
        except KeyError as exc:
            raise ValueError(f"the model file lacks {exc}") from None
        except TypeError as exc:
            raise ValueError(f"the model file is malformed: {exc}") from None

    def fingerprint(self):
        """SHA-256 (hex) of the configuration and every array: identifies the code."""
        h = hashlib.sha256(b"skvae-portable-model\0")
        h.update(json.dumps(self.config(), sort_keys=True).encode())
        for name, array in sorted(self.arrays().items()):
            h.update(f"{name}\0{array.shape}\0".encode())
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()
