"""Bits-back coding of a ladder VAE (:class:`~skvae.HierarchicalVAE`) in exact arithmetic.

The coder's copy of a :class:`~skvae.modules.LadderVAEModule` is a
:class:`PortableLadder`: the bottom-up path (hidden layers, one linear head
per latent layer), the top-down networks p(z_l | z_{l+1}) and the decoder
p(x | z_1), all quantized like :class:`~skvae.coding._fixed_point.PortableModel`'s
networks (integer weights, every sum exact in float64 or float32). The
bottom-up path is one chain of ReLU layers; layer l's head reads the chain
after layer l's hidden part. The top-down networks and the decoder read
latent cells in the decoder's input format (``cell * 2**(12 - precision)``).

The precision-weighted posterior of layer l < L,

    1/var_q = 1/var_hat + 1/var_p,
    mu_q = (mu_hat / var_hat + mu_p / var_p) var_q,

runs on the networks' exact outputs with :func:`~skvae.coding._exact.exp`
for the precisions and IEEE ``+ - * /`` and ``sqrt`` (all correctly rounded)
otherwise, so both sides and every machine get the same bits. Log-variances
are clipped to +-40 first, which keeps every intermediate finite.

Coding order per block of rows (:class:`LadderChunkCodec`):

encode: pop z_L ~ q(z_L | x), then for l = L-1 .. 1 pop
    z_l ~ q(z_l | z_{l+1}, x) with z_{l+1} at the popped cell's centre; push
    x under p(x | z_1); push z_1 under p(z_1 | z_2) (binned like q), ...,
    z_{L-1} under p(z_{L-1} | z_L), and z_L under the gridded N(0, I).
decode: the reverse: pop z_L under N(0, I), z_{L-1} .. z_1 under the
    top-down priors, x under p(x | z_1); then push z_1 .. z_L back under the
    posterior, now computable from x.

Every layer is gridded like the single-layer coder's latents (cells of
``2**-latent_precision``), but on [-28, 28] (:data:`LADDER_CLIP`) whatever
``latent_clip``: a lower layer follows its top-down prior, not N(0, I), and
its values reach well beyond 6 (on plants, z_1 of a small ladder up to
about 18); a posterior mean clipped to the grid would cost many bits. The
wider grid costs nothing in rate (the cells are coded under the binned
conditionals; the top layer's N(0, I) table gives the far cells 2**-24
each) and about twice the CDF evaluations per latent symbol.

The expected net cost of a row is the discretized negative ELBO of the
ladder, -E_q log p(x|z_1) + sum_l E_q KL(q(z_l|.) || p(z_l|.)). As in the
single-layer coder, block 0 (the chunk's first row) takes the cell of each
conditional posterior mean instead of popping, and the ramp sizes follow
the bits popped and pushed under the priors. Importance sampling
(``n_particles > 1``) is not built for the ladder.

Bit-Swap's interleaved order (Kingma et al. 2019) would lower the start-up
cost only for a model whose inference runs bottom-up, q(z_{l+1} | z_l);
the ladder's q(z_l | z_{l+1}, x) runs top-down and needs every layer above
before z_l, so every layer is popped before anything is pushed.
"""

import numpy as np

from ._bitsback import ChunkCodec
from ._entropy_models import LatentGrid
from ._exact import exp
from ._fixed_point import (ACTIVATION_BITS, ARITHMETIC_VERSION, LATENT_BOUND, LATENT_SCALE_BITS, PortableModel,
                           _bit_length, _evaluation_plan, _input_bounds, _input_parts,
                           _linear_layers, _next_bounds, _quantize_layer, _quantize_mlp, _worst_case,
                           input_width, layer_arrays, layers_from_arrays, likelihood_from_json,
                           likelihood_to_json)

__all__ = ["PortableLadder", "LadderChunkCodec", "MODEL_KIND"]

MODEL_KIND = "ladder"  # the model configuration's and the file header's record of the model kind
_LOGVAR_CLIP = 40.0
LADDER_CLIP = 28.0  # half-width of a ladder's latent grid (rounded up to at most 31.75 < 32, LATENT_BOUND)


def _chain_plan(layers, bounds):
    """Evaluation plans of consecutive ReLU layers (each followed by its shift) and the bounds after each."""
    plans = []
    for layer in layers:
        plans.append(_evaluation_plan([layer], bounds)[0])
        _, out_bounds = _worst_case(layer["weight"], layer["bias"], bounds)
        bounds = _next_bounds(out_bounds, int(layer["shift"]))
    return plans, bounds


def _apply(entry, a, relu):
    weight, bias, scale = entry
    if weight.dtype == np.float32:
        a = (a.astype(np.float32) @ weight).astype(np.float64) + bias
    else:
        a = a @ weight + bias
    return np.rint(np.maximum(a, 0.0) * scale) if relu else a


def _feature_layers(sequential):
    """(weight, bias) of the Linear layers of a Linear + ReLU (+ dropout) stack (a ladder's hidden part)."""
    import torch.nn as nn

    layers = [m for m in sequential if not isinstance(m, (nn.ReLU, nn.Dropout, nn.Identity))]
    if not all(isinstance(m, nn.Linear) for m in layers) or \
            sum(isinstance(m, nn.ReLU) for m in sequential) != len(layers):
        raise ValueError("BitsBackCoder codes ladders of ReLU MLPs only")
    return [(m.weight.detach().cpu().double().numpy(), m.bias.detach().cpu().double().numpy()) for m in layers]


def precision_weighted(mu_a, logvar_a, mu_b, logvar_b):
    """The product of two diagonal Gaussians, exactly reproducible: (mean, standard deviation)."""
    prec_a = exp(-np.clip(logvar_a, -_LOGVAR_CLIP, _LOGVAR_CLIP))
    prec_b = exp(-np.clip(logvar_b, -_LOGVAR_CLIP, _LOGVAR_CLIP))
    prec = prec_a + prec_b
    return (mu_a * prec_a + mu_b * prec_b) / prec, np.sqrt(1.0 / prec)


class PortableLadder(PortableModel):
    """Fixed-point copy of a ladder VAE: bottom-up path, heads, top-down priors and decoder.

    ``latent_dim`` is the width of all layers together; ``latent_dims`` the
    widths of z_1 .. z_L.
    """

    kind = MODEL_KIND

    def __init__(self, likelihood, n_features, latent_dims, inputs, features, heads, head_bits, top_down,
                 top_down_bits, decoder, decoder_bits):
        self.likelihood = likelihood
        self.n_features = int(n_features)
        self.latent_dims = [int(d) for d in latent_dims]
        self.latent_dim = sum(self.latent_dims)
        self.inputs = inputs
        self.features = features
        self.heads = heads
        self.head_bits = [int(b) for b in head_bits]
        self.top_down = top_down
        self.top_down_bits = [int(b) for b in top_down_bits]
        self.decoder_layers = decoder
        self.decoder_bits = int(decoder_bits)
        self._check()
        bounds = _input_bounds(inputs)[1]
        self._features, self._heads = [], []
        for level in range(len(self.latent_dims)):
            plans, bounds = _chain_plan(features[level], bounds)
            self._features.append(plans)
            self._heads.append(_evaluation_plan(heads[level], bounds)[0])
        self._top_down = [_evaluation_plan(layers, np.full(self.latent_dims[level + 1], LATENT_BOUND,
                                                             dtype=np.int64))
                          for level, layers in enumerate(top_down)]
        self._decoder = _evaluation_plan(decoder, np.full(self.latent_dims[0], LATENT_BOUND, dtype=np.int64))

    @classmethod
    def from_module(cls, module, likelihood, n_features):
        """Quantize a fitted :class:`~skvae.modules.LadderVAEModule` (exact operations only)."""
        inputs = _input_parts(module.preprocess, likelihood, n_features)
        scale_bits, bounds = _input_bounds(inputs)
        features, heads, head_bits = [], [], []
        for stack, head in zip(module.bottom_up, module.heads):
            layers = []
            for weight, bias in _feature_layers(stack):
                w, b, out_bits, out_bounds = _quantize_layer(weight, bias, scale_bits, bounds)
                shift = max(0, _bit_length(out_bounds.max(initial=0)) - ACTIVATION_BITS)
                bounds = _next_bounds(out_bounds, shift)
                scale_bits = np.full(len(b), out_bits - shift)
                layers.append({"weight": w, "bias": b, "shift": shift})
            features.append(layers)
            w, b, out_bits, _ = _quantize_layer(head.weight.detach().cpu().double().numpy(),
                                                head.bias.detach().cpu().double().numpy(), scale_bits, bounds)
            heads.append([{"weight": w, "bias": b, "shift": 0}])
            head_bits.append(out_bits)
        dims = module.latent_dims
        top_down, top_down_bits = [], []
        for level, mlp in enumerate(module.top_down):
            layers, bits = _quantize_mlp(_linear_layers(mlp), np.full(dims[level + 1], LATENT_SCALE_BITS),
                                         np.full(dims[level + 1], LATENT_BOUND, dtype=np.int64))
            top_down.append(layers)
            top_down_bits.append(bits)
        decoder, decoder_bits = _quantize_mlp(_linear_layers(module.decoder.net), np.full(dims[0], LATENT_SCALE_BITS),
                                              np.full(dims[0], LATENT_BOUND, dtype=np.int64))
        return cls(likelihood, n_features, dims, inputs, features, heads, head_bits, top_down, top_down_bits,
                   decoder, decoder_bits)

    def _groups(self):
        """(name, list of layer lists) of every network, in storage order."""
        return [("bottom_up", self.features), ("head", self.heads), ("top_down", self.top_down),
                ("decoder", [self.decoder_layers])]

    def _check(self):
        dims = self.latent_dims
        if not dims or min(dims) < 1:
            raise ValueError(f"a ladder needs latent layers of positive width, got {dims}")
        if not (len(self.features) == len(self.heads) == len(self.head_bits) == len(dims)
                and len(self.top_down) == len(self.top_down_bits) == len(dims) - 1):
            raise ValueError("the ladder's networks do not match its latent layers")
        n_params = self.likelihood.n_params(self.n_features)
        width = input_width(self.inputs, self.n_features)

        def check(name, layers, n_in, n_out=None, allow_empty=False):
            if not layers and not allow_empty:
                raise ValueError(f"the {name} has no layers")
            for layer in layers:
                w, b = layer["weight"], layer["bias"]
                if w.ndim != 2 or w.shape[1] != n_in or b.shape != (w.shape[0],):
                    raise ValueError(f"the {name}'s layer arrays have inconsistent shapes "
                                     f"{w.shape} and {b.shape} (expected {n_in} inputs)")
                if w.dtype.kind != "i" or b.dtype.kind != "i" or np.abs(w).max(initial=0) > 2 ** 24:
                    raise ValueError(f"the {name}'s weights must be integers of at most 24 bits")
                if not 0 <= int(layer["shift"]) <= 62:
                    raise ValueError(f"the {name} has a bad shift {layer['shift']!r}")
                n_in = w.shape[0]
            if n_out is not None and n_in != n_out:
                raise ValueError(f"the {name} has {n_in} outputs, expected {n_out}")
            return n_in

        for level, dim in enumerate(dims):
            width = check(f"bottom-up path of layer {level + 1}", self.features[level], width, allow_empty=True)
            if len(self.heads[level]) != 1:
                raise ValueError(f"the head of layer {level + 1} must be one linear layer")
            check(f"head of layer {level + 1}", self.heads[level], width, 2 * dim)
        for level, layers in enumerate(self.top_down):
            check(f"top-down network of layer {level + 1}", layers, dims[level + 1], 2 * dims[level])
        check("decoder", self.decoder_layers, dims[0], n_params)

    # -- evaluation ---------------------------------------------------------------

    def bottom_up(self, x):
        """[(mu_hat_l, logvar_hat_l) for l = 1 .. L] of rows x (float64), exactly."""
        a = self._input(np.asarray(x, dtype=np.float64))
        out = []
        for plans, head, bits, dim in zip(self._features, self._heads, self.head_bits, self.latent_dims):
            for entry in plans:
                a = _apply(entry, a, relu=True)
            h = np.ldexp(_apply(head, a, relu=False), -bits)
            out.append((h[:, :dim], h[:, dim:]))
        return out

    def _cells_input(self, cells, width, precision):
        return np.ldexp(np.asarray(cells, dtype=np.float64).reshape(-1, width), LATENT_SCALE_BITS - precision)

    def prior(self, level, cells, precision):
        """(mu_p, logvar_p) of p(z_level | z_{level+1}) (0-based level < L - 1) at z_{level+1}'s cells."""
        z = self._cells_input(cells, self.latent_dims[level + 1], precision)
        out = np.ldexp(self._run(self._top_down[level], z), -self.top_down_bits[level])
        dim = self.latent_dims[level]
        return out[:, :dim], out[:, dim:]

    def decode(self, cells, precision):
        """The likelihood's parameters at z_1's cells ``z = cells * 2**-precision``."""
        z = self._cells_input(cells, self.latent_dims[0], precision)
        return np.ldexp(self._run(self._decoder, z), -self.decoder_bits)

    def encode(self, x):
        raise TypeError("a ladder's posterior is conditional on the layers above; use bottom_up and prior")

    # -- storage ------------------------------------------------------------------

    def config(self):
        return {"arithmetic_version": ARITHMETIC_VERSION, "kind": MODEL_KIND,
                "likelihood": likelihood_to_json(self.likelihood), "n_features": self.n_features,
                "latent_dims": list(self.latent_dims), "inputs": self.inputs, "head_bits": self.head_bits,
                "top_down_bits": self.top_down_bits, "decoder_bits": self.decoder_bits,
                "shifts": {name: [[int(layer["shift"]) for layer in layers] for layers in groups]
                           for name, groups in self._groups()}}

    def arrays(self):
        return {key: array for name, groups in self._groups() for g, layers in enumerate(groups)
                for key, array in layer_arrays(f"{name}.{g}", layers).items()}

    @classmethod
    def from_arrays(cls, config, arrays):
        if config.get("arithmetic_version") != ARITHMETIC_VERSION:
            raise ValueError(f"the model uses arithmetic version {config.get('arithmetic_version')!r}; this "
                             f"skvae implements version {ARITHMETIC_VERSION}")
        try:
            likelihood = likelihood_from_json(config["likelihood"])
            shifts = config["shifts"]
            if not isinstance(shifts, dict):
                raise TypeError("bad shifts")
            groups = {name: [layers_from_arrays(arrays, f"{name}.{g}", layer_shifts)
                             for g, layer_shifts in enumerate(shifts[name])]
                      for name in ("bottom_up", "head", "top_down", "decoder")}
            if len(groups["decoder"]) != 1:
                raise ValueError("the ladder must have one decoder")
            return cls(likelihood, config["n_features"], config["latent_dims"], config["inputs"],
                       groups["bottom_up"], groups["head"], config["head_bits"], groups["top_down"],
                       config["top_down_bits"], groups["decoder"][0], config["decoder_bits"])
        except KeyError as exc:
            raise ValueError(f"the model file lacks {exc}") from None
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"the model file is malformed: {exc}") from None


def portable_from_module(module, likelihood, n_features):
    """The portable copy of a fitted module: a :class:`PortableLadder` for a ladder, else a :class:`PortableModel`."""
    if hasattr(module, "top_down"):
        return PortableLadder.from_module(module, likelihood, n_features)
    return PortableModel.from_module(module, likelihood, n_features)


def portable_from_arrays(config, arrays):
    """The portable model of a stored configuration: its ``kind`` picks the class (absent: single-layer)."""
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind is None:
        return PortableModel.from_arrays(config, arrays)
    if kind == MODEL_KIND:
        return PortableLadder.from_arrays(config, arrays)
    raise ValueError(f"unknown model kind {kind!r}")


class LadderChunkCodec(ChunkCodec):
    """:class:`~skvae.coding._bitsback.ChunkCodec` of a :class:`PortableLadder` (one particle).

    Latent cells of a block are kept per layer, z_1 first, each (n * d_l,) flat.
    """

    def __init__(self, model, columns, grid, block_size, n_particles=1):
        if int(n_particles) != 1:
            raise ValueError(f"n_particles={n_particles}: hierarchical models (HierarchicalVAE) code with "
                             "n_particles=1 only; importance-sampled bits-back over a latent hierarchy is "
                             "not built")
        # every layer on a grid of half-width LADDER_CLIP, whatever latent_clip: the lower layers follow
        # their top-down priors, not N(0, I), and reach far beyond 6 (a clipped mean costs many bits)
        wide = LatentGrid(grid.precision, max(LADDER_CLIP, grid.n_half * grid.step))
        if wide.n_half * wide.step * 2 ** LATENT_SCALE_BITS > LATENT_BOUND:
            raise ValueError("the ladder's latent grid leaves the range its fixed-point networks accept")
        super().__init__(model, columns, wide, block_size, 1)

    def _prior_params(self, level, cells_above):
        return self.grid.posterior_params(*self.model.prior(level, cells_above, self.grid.precision))

    def _layer_posterior(self, estimate, prior_raw):
        """Grid-unit (mean, std) of q(z_l | z_{l+1}, x) from the bottom-up estimate and the raw prior."""
        mu, std = precision_weighted(*estimate, *prior_raw)
        grid = self.grid
        mean = np.clip(mu.ravel() / grid.step, -grid.n_half, grid.n_half)
        return mean, np.clip(std.ravel() / grid.step, 2.0 ** -10, 4.0 * grid.n_cells)

    def _walk_posterior(self, symbols, take):
        """Go down the ladder: ``take(level, mean, std)`` returns each layer's cells, top layer first.

        Returns the cells per layer (z_1 first) and the posterior (mean, std) per layer.
        """
        estimates = self.model.bottom_up(self.columns.network_input(symbols))
        n_layers = len(estimates)
        cells, params = [None] * n_layers, [None] * n_layers
        top = n_layers - 1
        for level in range(top, -1, -1):
            if level == top:
                mean, std = self.grid.posterior_params(*estimates[top])
            else:
                raw = self.model.prior(level, cells[level + 1], self.grid.precision)
                mean, std = self._layer_posterior(estimates[level], raw)
            params[level] = (mean, std)
            cells[level] = take(level, mean, std)
        return cells, params

    def _encode_block(self, coder, block, first, prior, particles=1):
        grid = self.grid
        if first:
            popped = 0.0

            def take(level, mean, std):
                nonlocal popped
                popped += grid.posterior_entropy_bits(mean, std)
                return grid.nearest(mean)
        else:
            start = coder.num_valid_bits()

            def take(level, mean, std):
                return grid.pop_posterior(coder, mean, std)
        cells, _ = self._walk_posterior(block, take)
        if not first:
            popped = start - coder.num_valid_bits()
        self.columns.push(coder, block, self._decoder_output(cells[0]))
        before = coder.num_valid_bits()
        for level in range(len(cells) - 1):  # z_1 first: the decoder pops them top-down
            grid.push_posterior(coder, cells[level], *self._prior_params(level, cells[level + 1]))
        grid.push_prior(coder, cells[-1], prior)
        return popped, coder.num_valid_bits() - before

    def decode(self, words, n_rows, ramp):
        import constriction

        from ._bitsback import block_bounds, entropy_coder_errors

        grid, columns, dims = self.grid, self.columns, self.model.latent_dims
        prior = grid.prior_model()
        bounds = block_bounds(n_rows, self.block_size, list(ramp))
        with entropy_coder_errors("corrupted chunk"):
            coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))
        out = np.empty((n_rows, columns.n_features), dtype=np.int32)
        with entropy_coder_errors("corrupted chunk"):
            for start, stop in reversed(bounds):
                n = stop - start
                cells = [None] * len(dims)
                cells[-1] = grid.pop_prior(coder, n * dims[-1], prior)
                for level in range(len(dims) - 2, -1, -1):
                    cells[level] = grid.pop_posterior(coder, *self._prior_params(level, cells[level + 1]))
                block = columns.pop(coder, self._decoder_output(cells[0]))
                out[start:stop] = block
                if start == 0:
                    nearest, _ = self._walk_posterior(block, lambda level, mean, std: grid.nearest(mean))
                    if not all(np.array_equal(a, b) for a, b in zip(cells, nearest)):
                        raise ValueError("corrupted chunk: the first row does not decode consistently")
                    continue

                def take(level, mean, std):
                    return cells[level]
                _, params = self._walk_posterior(block, take)
                for level in range(len(dims)):  # the reverse of the encoder's pops: z_1 first, z_L last
                    grid.push_posterior(coder, cells[level], *params[level])
        if not coder.is_empty():
            raise ValueError("corrupted chunk: bits are left over after decoding")
        return out

    def first_row_overhead_bits(self, symbols):
        """Bits the first row of a chunk does not get back: entropy of its discretized posterior, layer by layer."""
        total = 0.0

        def take(level, mean, std):
            nonlocal total
            total += self.grid.posterior_entropy_bits(mean, std)
            return self.grid.nearest(mean)
        self._walk_posterior(symbols[:1], take)
        return total
