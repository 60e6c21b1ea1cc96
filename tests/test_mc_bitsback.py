"""Monte-Carlo bits-back (BB-IS, n_particles > 1): exact round trips, k = 1 unchanged, bad input."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder

from _helpers import BLOCK_TORCH, mixed_table
from test_portable_coding import ENVIRONMENTS

# sha256 of the k = 1 files of the cases below, computed with the coder before n_particles existed
# ("table": recomputed when integer columns got mass on every integer, which changes how its model trains;
# all three recomputed for arithmetic version 2, interpolated CDF lookups and 0/1 encoder inputs on the
# affine inputs' scale: the header records the version, and the latent posteriors' masses changed)
K1_DIGESTS = {
    "binary": "8b6495697b87e2eda3fccd6ba100cbcb2ba4d792f9eacb6e6e6eb18230761de9",
    "table": "d18693b6ecfc0d92b38544869ee767f9dfa44b062690f6556dc1e5ec8517f5c8",
    "real": "3bf04659dd4b02fe06177ee7aa0df761150a6b177972d798e7d24d2ecd069e44",
}


@pytest.fixture(scope="module")
def cases(nltcs):
    train, test = nltcs
    binary = VAEDensityEstimator(latent_dim=3, hidden_layer_sizes=(24,), max_epochs=3, batch_size=100,
                                 random_state=0).fit(train[:2000])
    # one Gaussian per real column ('gaussian:1'): the digests above are of files written before the
    # mixture default (GAUSSIAN_COMPONENTS = 4)
    tab = VAEDensityEstimator(likelihood={"gaussian:1": ["size"]}, latent_dim=3, hidden_layer_sizes=(24,),
                              max_epochs=6, random_state=0).fit(mixed_table(500, 0, flag=False))
    rng = np.random.RandomState(0)
    real = np.round(rng.randn(400, 5) @ rng.randn(5, 5) * 8) / 8 + 0.0
    gauss = VAEDensityEstimator(likelihood="gaussian:1", latent_dim=3, hidden_layer_sizes=(24,), max_epochs=6,
                                random_state=0).fit(real)
    return {
        "binary": (BitsBackCoder(binary, chunk_size=500, block_size=64).fit(), test[:800]),
        "table": (BitsBackCoder(tab, quantization={"size": 0.01}, chunk_size=150, block_size=32).fit(),
                  mixed_table(250, 1, flag=False)),
        "real": (BitsBackCoder(gauss, quantization=0.125, chunk_size=150, block_size=32).fit(), real[:250]),
    }


def _same(a, b):
    return a.equals(b) if isinstance(a, pd.DataFrame) else (a.dtype == b.dtype and np.array_equal(a, b))


@pytest.mark.parametrize("name", sorted(K1_DIGESTS))
def test_k1_is_byte_identical_to_the_elbo_coder(cases, name):
    coder, X = cases[name]
    coder.set_params(n_particles=1)
    assert hashlib.sha256(coder.encode(X)).hexdigest() == K1_DIGESTS[name]


@pytest.mark.parametrize("k", [1, 2, 8])
@pytest.mark.parametrize("name", sorted(K1_DIGESTS))
def test_exact_round_trip(cases, name, k):
    coder, X = cases[name]
    coder.set_params(n_particles=k)
    try:
        data = coder.encode(X)
        assert _same(X, coder.decode(data))
        if k > 1:
            assert data != coder.set_params(n_particles=1).encode(X)
    finally:
        coder.set_params(n_particles=1)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError), ("4", TypeError),
                                        (True, TypeError)])
def test_bad_n_particles(cases, bad, error):
    coder, X = cases["binary"]
    with pytest.raises(error, match="n_particles"):
        BitsBackCoder(coder.estimator_, n_particles=bad).fit()


# -- the payload is the -log2 IWAE_k estimate of its own draws --------------------------------------------

@pytest.fixture
def traced(monkeypatch):
    """Every ChunkCodec made while the test runs appends (net bits, -log2 IWAE_k bits) per k-particle block."""
    from skvae.coding import _bitsback

    records = []
    init = _bitsback.ChunkCodec.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.trace = records

    monkeypatch.setattr(_bitsback.ChunkCodec, "__init__", __init__)
    return records


@pytest.mark.parametrize("k", [2, 8])
@pytest.mark.parametrize("name", sorted(K1_DIGESTS))
def test_payload_is_minus_log2_iwae_on_the_same_draws(cases, name, k, traced):
    coder, X = cases[name]
    coder.set_params(n_particles=k)
    try:
        coder.encode(X)
    finally:
        coder.set_params(n_particles=1)
    net = np.array([t[0] for t in traced], dtype=float)
    iwae = np.array([t[1] for t in traced])
    assert len(traced) >= 3  # the importance-sampled blocks of every chunk
    # ANS pushes and pops cost exactly -log2 of constriction's quantized probabilities, which the
    # fixed-point log-weights reproduce; num_valid_bits() is read to the whole bit
    assert np.all(np.abs(net - iwae) <= 2.0 + 1e-4 * iwae), np.c_[net, iwae]
    assert abs(net.sum() - iwae.sum()) <= 1e-3 * iwae.sum() + len(traced)


def test_importance_sampling_saves_bits_where_the_bound_is_tighter(cases):
    """On the same rows the k-particle payload tracks the float model's -IWAE_k, below the -ELBO."""
    coder, X = cases["binary"]
    X = np.tile(X, (3, 1))  # 2,400 rows in one chunk: the one-particle start is a small part
    coder.set_params(n_particles=1, chunk_size=10_000)
    try:
        one = coder.report(X)
        eight = coder.set_params(n_particles=8).report(X)
    finally:
        coder.set_params(n_particles=1, chunk_size=500)
    assert eight.n_particles == 8 and one.n_particles == 1
    assert one.negative_iwae_bits == one.negative_elbo_bits and one.single_particle_rows == 0
    assert eight.negative_iwae_bits < eight.negative_elbo_bits
    assert 1 <= eight.single_particle_rows < 0.1 * len(X)
    assert eight.payload_bits < one.payload_bits
    # within 1 % of the float bound plus the first row and the one-particle rows (at about the -ELBO)
    elbo_row = eight.negative_elbo_bits / len(X)
    allowance = eight.overhead_bits + eight.single_particle_rows * (elbo_row - eight.negative_iwae_bits / len(X))
    assert eight.payload_bits <= 1.01 * (eight.negative_iwae_bits + allowance)


# -- chunk parallelism, the container, the model file, the command line ---------------------------------

@pytest.mark.parametrize("k", [2, 8])
def test_n_jobs_gives_the_same_bytes_and_decodes(cases, k):
    coder, X = cases["binary"]  # 800 rows, chunks of 500: two chunks
    coder.set_params(n_particles=k)
    try:
        data = coder.encode(X)
        coder.set_params(n_jobs=2)
        assert coder.encode(X) == data
        assert _same(X, coder.decode(data))
    finally:
        coder.set_params(n_particles=1, n_jobs=None)


@pytest.mark.parametrize("k", [2, 8])
@pytest.mark.parametrize("name", sorted(K1_DIGESTS))
def test_chunks_stay_within_the_max_rows_bound(cases, name, k):
    """What decoding may allocate: every chunk of a real file holds far fewer rows than its bound."""
    from skvae.coding._container import parse

    coder, X = cases[name]
    coder.set_params(n_particles=k)
    try:
        header, chunks, _ = parse(coder.encode(X))
        codec = coder._codec(header["params"], header.get("grid"), header["n_particles"])
    finally:
        coder.set_params(n_particles=1)
    assert header["n_particles"] == k
    for chunk in chunks:
        assert 2 * chunk.n_rows <= codec.max_rows(len(chunk.words))


def test_corrupted_particle_fields_raise_value_errors(cases):
    from _helpers import rewrite_header

    coder, X = cases["binary"]
    coder.set_params(n_particles=4)
    try:
        data = coder.encode(X)
        for bad in (1, 0, -2, 5000, "4", 2.5):
            with pytest.raises(ValueError, match="n_particles"):
                coder.decode(rewrite_header(data, n_particles=bad))
        with pytest.raises(ValueError):  # another k: other cells, then a checksum or consistency failure
            coder.decode(rewrite_header(data, n_particles=5))
        with pytest.raises(ValueError):  # read as a k = 1 file: the ramp field's count becomes a block size
            coder.decode(rewrite_header(data, n_particles=None))
    finally:
        coder.set_params(n_particles=1)


def test_save_and_load_keep_n_particles(cases, tmp_path):
    import json
    import zipfile

    coder, X = cases["table"]
    coder.set_params(n_particles=3)
    try:
        data = coder.encode(X)
        coder.save(tmp_path / "k3.npz")
        coder.set_params(n_particles=1).save(tmp_path / "k1.npz")
    finally:
        coder.set_params(n_particles=1)
    loaded = BitsBackCoder.load(tmp_path / "k3.npz")
    assert loaded.n_particles == 3
    assert loaded.encode(X) == data and _same(X, loaded.decode(data))
    assert BitsBackCoder.load(tmp_path / "k1.npz").n_particles == 1
    with zipfile.ZipFile(tmp_path / "k1.npz") as z:  # k = 1 model files are as before: no key
        assert "n_particles" not in json.loads(np.load(z.open("config.npy")).tobytes())["params"]


def _save_with_particles(coder, path, k):
    """Save the module-scoped coder with ``n_particles=k``, leaving it at k = 1."""
    coder.set_params(n_particles=k)
    try:
        coder.save(path)
    finally:
        coder.set_params(n_particles=1)


def test_a_model_file_with_a_bad_n_particles_is_refused(cases, tmp_path):
    from test_portable_coding import _rewrite_model_file

    coder, _ = cases["binary"]
    _save_with_particles(coder, tmp_path / "k2.npz", 2)
    for bad in (0, 5000, "2", 1.5):
        def edit(config, arrays, bad=bad):
            config["params"]["n_particles"] = bad
        _rewrite_model_file(tmp_path / "k2.npz", tmp_path / "bad.npz", edit)
        with pytest.raises(ValueError, match="n_particles"):
            BitsBackCoder.load(tmp_path / "bad.npz")


def test_command_line_n_particles(cases, tmp_path, capsys):
    from skvae.cli import main
    from skvae.coding._container import parse

    coder, X = cases["binary"]
    coder.save(tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", X)
    assert main(["compress", str(tmp_path / "m.npz"), str(tmp_path / "x.npy"), str(tmp_path / "x.bb"),
                 "--n-particles", "4"]) == 0
    data = (tmp_path / "x.bb").read_bytes()
    assert parse(data)[0]["n_particles"] == 4
    assert data == coder.set_params(n_particles=4).encode(X)
    coder.set_params(n_particles=1)
    assert main(["decompress", str(tmp_path / "m.npz"), str(tmp_path / "x.bb"), str(tmp_path / "y.npy")]) == 0
    assert _same(X, np.load(tmp_path / "y.npy"))
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "m.npz"), str(tmp_path / "x.npy"), str(tmp_path / "z.bb"),
                 "--n-particles", "0"]) != 0
    assert "n_particles" in capsys.readouterr().err


def test_bad_n_particles_set_after_fit(cases):
    coder, X = cases["binary"]
    for bad, error in [(0, ValueError), (4097, ValueError), (3.0, TypeError), (None, TypeError)]:
        coder.set_params(n_particles=bad)
        try:
            with pytest.raises(error, match="n_particles"):
                coder.encode(X)
            with pytest.raises(error, match="n_particles"):
                coder.save("/nonexistent/never-written.npz")
        finally:
            coder.set_params(n_particles=1)


# -- other machines ------------------------------------------------------------------------------------

_DECODE_K = BLOCK_TORCH + r"""
import numpy as np, pandas as pd
from skvae.coding import BitsBackCoder
folder = sys.argv[1]
for name in ("binary", "table", "real"):
    coder = BitsBackCoder.load(f"{folder}/{name}.npz")
    data = open(f"{folder}/{name}.bb", "rb").read()
    X = coder.decode(data)
    pd.to_pickle((X, coder.encode(X) == data), f"{folder}/{name}.{sys.argv[2]}.pkl")
"""


@pytest.mark.parametrize("environment", [e for e in ENVIRONMENTS if e.startswith(("MKL_CBWR=COMPATIBLE", "MKL_CBWR=AVX",
                                                                               "OPENBLAS_CORETYPE=Prescott",
                                                                               "ATEN_", "without torch"))])
def test_k_particle_files_decode_in_other_environments(cases, tmp_path, environment):
    import os
    import subprocess
    import sys

    from test_portable_coding import REPO

    for name, (coder, X) in cases.items():
        coder.set_params(n_particles=8)
        try:
            (tmp_path / f"{name}.bb").write_bytes(coder.encode(X))
            coder.save(tmp_path / f"{name}.npz")
        finally:
            coder.set_params(n_particles=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKL_", "OPENBLAS_", "ATEN_"))}
    env.update(ENVIRONMENTS[environment], PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", _DECODE_K, str(tmp_path), "env"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (coder, X) in cases.items():
        got, re_encoded_equal = pd.read_pickle(tmp_path / f"{name}.env.pkl")
        assert _same(X, got) and re_encoded_equal


def test_a_chunk_that_runs_its_stack_dry_is_coded_again(cases, traced, monkeypatch):
    """Too fast a k-particle ramp pops from an empty stack; the codec notices and slows the ramp down."""
    from skvae.coding import _bitsback

    coder, X = cases["binary"]
    attempts = []
    once = _bitsback.ChunkCodec._encode_once

    def spy(self, symbols, safety):
        attempts.append(safety)
        return once(self, symbols, safety)

    monkeypatch.setattr(_bitsback, "_RAMP_SAFETY", 64.0)  # blocks of 64x what the stack holds
    monkeypatch.setattr(_bitsback.ChunkCodec, "_encode_once", spy)
    coder.set_params(n_particles=4)
    try:
        data = coder.encode(X)
        assert _same(X, coder.decode(data))
    finally:
        coder.set_params(n_particles=1)
    assert attempts[0] == 64.0 and len(attempts) > 2 and min(attempts) < 64.0
    net = np.array([t[0] for t in traced], dtype=float)
    iwae = np.array([t[1] for t in traced])
    assert np.all(np.abs(net - iwae) <= 2.0 + 1e-4 * iwae)  # the kept attempt's blocks only


def test_report_of_a_loaded_coder_has_no_float_bounds(cases, tmp_path):
    coder, X = cases["binary"]
    _save_with_particles(coder, tmp_path / "k2.npz", 2)
    r = BitsBackCoder.load(tmp_path / "k2.npz").report(X)
    assert r.n_particles == 2 and np.isnan(r.negative_elbo_bits) and np.isnan(r.negative_iwae_bits)
    assert r.single_particle_rows >= 2  # two chunks, each starting with its first row
