"""Bits-back coding of one chunk of rows on a single ANS stack.

A chunk is split into blocks of rows; all rows of a block are processed
together (one network call, one ``constriction`` call per symbol type), which
is the same as bits-back coding with the block as the unit "row":

encode block b (b = 0, 1, ...):
    1. posterior q(z|x) of each row (the encoder);
    2. pop z ~ q(z|x) from the stack (block 0: take the cell of the posterior
       mean instead, so a chunk needs no initial bits);
    3. push x under p(x|z) (decoder at the cell centres);
    4. push z under the discretized prior.

decode block b (b = last, ..., 0) undoes these steps in reverse: pop z under
the prior, pop x under p(x|z), recompute q(z|x) from the recovered rows and
push z back under it, which returns exactly the bits the encoder borrowed.

Block 0 is the chunk's first row alone. The next blocks (the "ramp") grow
from there, sized by the encoder, and their sizes are stored in the chunk
record; after the ramp every block has ``block_size`` rows (the last one
fewer). A pop yields fair samples of q(z|x) only from bits that look random
under it. The prior codes that the previous block pushed last are such bits;
the data codes beneath them are not (a row the model finds surprising leaves
a fixed bit pattern, which decodes to a latent far in the tail and costs
many bits later). So a ramp block pops about as many bits as the previous
block pushed under the prior, growing by at least a tenth per block; a full
block pops, in expectation, fewer bits than the block before it pushed under
the prior, since the difference is the KL term of the ELBO.

Monte-Carlo bits-back (``n_particles = k > 1``, BB-IS of Ruan et al. 2021):
a block pops k draws z_1..z_k of q(z|x), computes the fixed-point log
importance weights ``log2 w_i = log2 p(x|z_i) + log2 p(z_i) - log2 q(z_i|x)``
with the probabilities constriction actually codes with (2**-24 floor
included), pops the index j under Cat(w), pushes the k - 1 other draws back
under q, then x under p(x|z_j), z_j under the prior and j under the uniform
law. The net cost of a row is exactly ``-log2((1/k) sum_i w_i)``, the IWAE_k
estimate on its own draws. Decoding pops j, z_j, x, recomputes q and the
other draws from the stack, then pushes j under Cat(w) and the k draws back.
A k-particle row pops about k times the posterior entropy before it pushes
anything, so a chunk starts with one particle per row (the first row, then
ramp blocks as above) until the stack holds one k-particle row; the ramp
continues with k particles in blocks of ``max(1, rows so far * growth //
2**16)`` rows, ``growth`` chosen so that a block pops about half of what the
stack holds and stored as the first varint of the chunk's ramp field (the
sizes of the one-particle blocks follow). A chunk whose k-particle block
still finds the stack empty is coded again with a slower growth.

The networks are the fixed-point copies of :mod:`skvae.coding._fixed_point`
and the entropy models those of :mod:`skvae.coding._entropy_models`, so both
sides compute the same probabilities on any machine, with any BLAS and any
number of threads; neither needs torch.
"""

import math
from contextlib import contextmanager

import numpy as np
import constriction

from ._entropy_models import _categorical
from ._exact import LOG2_FRACTION_BITS, index_weights

__all__ = ["ChunkCodec", "block_bounds"]

_RAMP_SAFETY = 0.5  # a k-particle ramp block pops about this fraction of what the stack holds


def block_bounds(n_rows, block_size, ramp, growth=0):
    """(start, stop) of each block: row 0, the ramp blocks, then full blocks.

    ``growth`` > 0 (k > 1 only) inserts the importance-sampled ramp after the
    given one: each block has ``max(1, start * growth // 2**16)`` rows, where
    ``start`` is the number of rows before it, until that reaches
    ``block_size``.
    """
    sizes = [1] + list(ramp) if n_rows else []
    start = sum(sizes)
    if start > n_rows:
        raise ValueError("corrupted chunk: block sizes exceed the chunk")
    while growth and start < n_rows:
        size = max(1, (start * growth) >> 16)
        if size >= block_size:
            break
        sizes.append(min(size, n_rows - start))
        start += sizes[-1]
    while start < n_rows:
        sizes.append(min(block_size, n_rows - start))
        start += sizes[-1]
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return bounds


@contextmanager
def entropy_coder_errors(what):
    """Errors of the entropy coder become ValueError; a Rust panic (a BaseException) included."""
    try:
        yield
    except (ValueError, KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException as exc:
        raise ValueError(f"{what}: the entropy coder failed ({type(exc).__name__}: {exc})") from None


class ChunkCodec:
    """Codes chunks of rows with a fixed model; picklable for joblib workers.

    Parameters
    ----------
    model : PortableModel
        The fixed-point encoder and decoder.
    columns : ColumnModel
    grid : LatentGrid
    block_size : int
        Largest number of rows per network call.
    """

    def __init__(self, model, columns, grid, block_size, n_particles=1):
        self.model = model
        self.columns = columns
        self.grid = grid
        self.block_size = block_size
        self.n_particles = int(n_particles)
        self.trace = None  # a list to record (net bits, -log2 IWAE_k bits) per importance-sampled block

    def _log_weights(self, block, cells, mean_k, std_k):
        """Fixed-point log2 w_i = log2 p(x|z_i) + log2 p(z_i) - log2 q(z_i|x), shape (k, n), int64.

        ``cells`` (k, n * d); ``mean_k`` and ``std_k`` the block's posterior tiled k times (flat).
        """
        k, n, d = self.n_particles, len(block), self.model.latent_dim
        flat = cells.reshape(-1)
        params = self._decoder_output(flat)
        lx = self.columns.log2_probs(np.tile(block, (k, 1)), params).reshape(k, n)
        lp = self.grid.prior_log2(flat).reshape(k, n, d).sum(axis=2)
        lq = self.grid.posterior_log2(flat, mean_k, std_k).reshape(k, n, d).sum(axis=2)
        return lx + lp - lq

    @staticmethod
    def _neg_log_iwae_bits(log_w):
        d = (log_w - log_w.max(axis=0)).astype(np.float64) / 2.0 ** LOG2_FRACTION_BITS
        return float(-(log_w.max(axis=0) / 2.0 ** LOG2_FRACTION_BITS + np.log2(np.exp2(d).sum(axis=0))
                       - math.log2(len(log_w))).sum())

    def _encode_block_is(self, coder, block, prior):
        """BB-IS: pop k draws of q and the index j ~ Cat(w), push back the others, x, z_j and j (uniform)."""
        grid, k, n, d = self.grid, self.n_particles, len(block), self.model.latent_dim
        mean, std = self._posterior(block)
        mean_k, std_k = np.tile(mean, k), np.tile(std, k)
        start_bits = before = coder.num_valid_bits()
        cells = grid.pop_posterior(coder, mean_k, std_k).reshape(k, n * d)  # the k draws in one call
        if coder.num_valid_bits() < 64:
            self._dry = True
        log_w = self._log_weights(block, cells, mean_k, std_k)
        j = coder.decode(_categorical(), index_weights(log_w)).astype(np.intp)
        popped = before - coder.num_valid_bits()
        rows = np.arange(n)
        per_row = cells.reshape(k, n, d)
        others = np.stack([per_row[np.where(s < j, s, s + 1), rows] for s in range(k - 1)])  # (k-1, n, d)
        grid.push_posterior(coder, others.reshape(-1), mean_k[:(k - 1) * n * d], std_k[:(k - 1) * n * d])
        chosen = per_row[j, rows].reshape(-1)
        self.columns.push(coder, block, self._decoder_output(chosen))
        before = coder.num_valid_bits()
        grid.push_prior(coder, chosen, prior)
        coder.encode_reverse(j.astype(np.int32), _categorical(), np.ones((n, k)))
        prior_bits = coder.num_valid_bits() - before  # z_j under the prior and j: random-looking bits
        if self.trace is not None:
            self.trace.append((coder.num_valid_bits() - start_bits, self._neg_log_iwae_bits(log_w)))
        return popped, prior_bits

    def _decode_block_is(self, coder, n, prior):
        grid, k, d = self.grid, self.n_particles, self.model.latent_dim
        j = coder.decode(_categorical(), np.ones((n, k))).astype(np.intp)
        chosen = grid.pop_prior(coder, n * d, prior)
        block = self.columns.pop(coder, self._decoder_output(chosen))
        mean, std = self._posterior(block)
        mean_k, std_k = np.tile(mean, k), np.tile(std, k)
        others = grid.pop_posterior(coder, mean_k[:(k - 1) * n * d], std_k[:(k - 1) * n * d]).reshape(k - 1, n, d)
        per_row = np.empty((k, n, d), dtype=np.int32)
        rows = np.arange(n)
        for s in range(k - 1):
            per_row[np.where(s < j, s, s + 1), rows] = others[s]
        per_row[j, rows] = chosen.reshape(n, d)
        cells = per_row.reshape(k, n * d)
        coder.encode_reverse(j.astype(np.int32), _categorical(), index_weights(self._log_weights(block, cells,
                                                                                                   mean_k, std_k)))
        grid.push_posterior(coder, cells.reshape(-1), mean_k, std_k)
        return block

    def _posterior(self, symbols):
        mu, logvar = self.model.encode(self.columns.network_input(symbols))
        return self.grid.posterior_params(mu, logvar)

    def _decoder_output(self, cells):
        return self.model.decode(cells, self.grid.precision)

    def encode(self, symbols):
        """Compress a chunk of int32 symbols (n, n_features).

        Returns
        -------
        words : ndarray of uint32
            The ANS stream.
        ramp : list of int
            Sizes of the blocks between the first row and the full blocks.
        """
        with entropy_coder_errors("encoding failed"):
            return self._encode(symbols)

    def _encode(self, symbols):
        # k > 1: the k-particle ramp's growth is set from the first rows; should a block later find
        # the stack (nearly) empty after popping its particles (draws from a dry stack are the lowest
        # cells, not draws of q, and the file grows), the chunk is coded again with a slower growth
        mark = None if self.trace is None else len(self.trace)
        safety = _RAMP_SAFETY
        for _ in range(5):
            self._dry = False
            words, ramp = self._encode_once(symbols, safety)
            if not self._dry:
                break
            safety /= 4
            if mark is not None:
                del self.trace[mark:]
        return words, ramp

    def _encode_once(self, symbols, safety):
        prior = self.grid.prior_model()
        coder = constriction.stream.stack.AnsCoder()
        k = self.n_particles
        n_rows, ramp = len(symbols), []
        popped_bits = popped_rows = 0
        start, size, prior_bits = 0, 1, 0.0
        growth = 0  # k > 1: growth of the importance-sampled ramp (see block_bounds); 0: none
        while start < n_rows:
            if start > 0:
                per_row = 1.1 * popped_bits / popped_rows + 1.0
                if k > 1:  # one particle until the stack holds a k-particle row
                    needed = (per_row - 1.0) * k + 1.0 + math.log2(k)
                    if coder.num_valid_bits() - 64 >= needed:
                        # a block may then pop ``safety`` of what the stack holds per row coded so far
                        growth = max(1, int(safety * 65536 * (coder.num_valid_bits() - 64) / (start * needed)))
                        break
                # pop about the prior codes just pushed (random-looking bits), grow at least
                # 10 % a block, and never pop more than the stack holds
                fits_stack = int((coder.num_valid_bits() - 64) // per_row)
                size = max(min(max(int(prior_bits // per_row), math.ceil(1.1 * size)), fits_stack), 1)
                if size >= self.block_size:
                    break
                ramp.append(min(size, n_rows - start))
            stop = start + (ramp[-1] if start > 0 else 1)
            popped, prior_bits = self._encode_block(coder, symbols[start:stop], start == 0, prior)
            popped_bits += popped
            popped_rows += stop - start
            start = stop
        for begin, end in block_bounds(n_rows, self.block_size, ramp, growth)[1 + len(ramp):]:
            self._encode_block(coder, symbols[begin:end], False, prior, k)
        if k > 1:
            ramp = [growth] + ramp
        return coder.get_compressed(), ramp

    def _split_ramp(self, ramp):
        """(one-particle ramp block sizes, growth of the k-particle ramp) from a chunk's ramp field."""
        ramp = list(ramp)
        if self.n_particles == 1:
            return ramp, 0
        if not ramp:
            raise ValueError("corrupted chunk: the ramp field lacks the growth of the k-particle ramp")
        return ramp[1:], ramp[0]

    def _encode_block(self, coder, block, first, prior, particles=1):
        """Code one block; returns the bits popped (the entropy estimate for the first row)
        and the random-looking bits pushed last (under the prior, and the particle index)."""
        if not first and particles > 1:
            return self._encode_block_is(coder, block, prior)  # computes its own posterior
        grid, columns = self.grid, self.columns
        mean, std = self._posterior(block)
        if first:
            cells = grid.nearest(mean)
            popped = grid.posterior_entropy_bits(mean, std)
        else:
            before = coder.num_valid_bits()
            cells = grid.pop_posterior(coder, mean, std)
            popped = before - coder.num_valid_bits()
        columns.push(coder, block, self._decoder_output(cells))
        before = coder.num_valid_bits()
        grid.push_prior(coder, cells, prior)
        return popped, coder.num_valid_bits() - before

    def decode(self, words, n_rows, ramp):
        """Inverse of :meth:`encode`; raises ValueError when the stream is inconsistent."""
        grid, columns = self.grid, self.columns
        prior = grid.prior_model()
        latent_dim = self.model.latent_dim
        ramp, growth = self._split_ramp(ramp)
        n_single = len(ramp)  # blocks 1 .. n_single: one particle; the later ones: k (when k > 1)
        bounds = block_bounds(n_rows, self.block_size, ramp, growth)
        with entropy_coder_errors("corrupted chunk"):  # constriction rejects some malformed streams itself
            coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))
        out = np.empty((n_rows, columns.n_features), dtype=np.int32)
        with entropy_coder_errors("corrupted chunk"):
            for index in reversed(range(len(bounds))):
                start, stop = bounds[index]
                if index > n_single and self.n_particles > 1:
                    out[start:stop] = self._decode_block_is(coder, stop - start, prior)
                    continue
                cells = grid.pop_prior(coder, (stop - start) * latent_dim, prior)
                block = columns.pop(coder, self._decoder_output(cells))
                out[start:stop] = block
                mean, std = self._posterior(block)
                if start == 0:
                    if not np.array_equal(cells, grid.nearest(mean)):
                        raise ValueError("corrupted chunk: the first row does not decode consistently")
                else:
                    grid.push_posterior(coder, cells, mean, std)
        if not coder.is_empty():
            raise ValueError("corrupted chunk: bits are left over after decoding")
        return out

    def max_rows(self, n_words):
        """The most rows a stream of ``n_words`` words can hold (bounds what decoding allocates).

        Every row pays at least the cheapest code of its columns
        (:meth:`ColumnModel.min_bits_per_row`); the latents can give back at
        most a few bits per row beyond what they cost, allowed for generously.
        The same bound holds for k > 1: a row's net cost is then
        ``-log2`` of the mean of its k importance weights, an unbiased
        estimate of p(x) <= 2**-floor, so by Markov's inequality the rows of
        a chunk together undercut their floors by t bits with probability at
        most 2**-t (k = 1 is the case of one weight).
        """
        floor = self.columns.min_bits_per_row()
        if floor <= 0:
            return float("inf")
        return int((32 * n_words + 64 + 16 * self.model.latent_dim) / floor) + 1

    def first_row_overhead_bits(self, symbols):
        """Bits the first row of a chunk does not get back: entropy of its discretized q(z|x)."""
        mean, std = self._posterior(symbols[:1])
        return self.grid.posterior_entropy_bits(mean, std)
