"""Bits-back files decode on other machines: exact arithmetic, the portable model file, versions.

The cross-environment tests encode here and decode in fresh processes whose
BLAS kernels, CPU code paths and thread counts differ (what another computer
does), from the pickle-free model file and from a pickled coder.
"""

import json
import os
import platform
import struct
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.coding import _exact
from skvae.coding._fixed_point import ARITHMETIC_VERSION, _SUM_LIMIT

from _helpers import BLOCK_TORCH, mixed_table, rewrite_header, with_holes

REPO = Path(__file__).resolve().parents[1]


def _cpu_flags():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":")[1].split()}


# What another computer changes: MKL's and OpenBLAS's kernel choice, torch's CPU code path, threads.
ENVIRONMENTS = {
    "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
    "MKL_CBWR=SSE4_2": {"MKL_CBWR": "SSE4_2"},
    "MKL_CBWR=AVX": {"MKL_CBWR": "AVX"},
    "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
    "torch threads 1": {"SKVAE_TEST_TORCH_THREADS": "1"},
    "torch threads 2": {"SKVAE_TEST_TORCH_THREADS": "2"},
    "OMP_NUM_THREADS=2": {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
    "without torch (numpy and constriction only)": {"SKVAE_TEST_BLOCK_TORCH": "1"},
}
if "avx2" in _cpu_flags():
    ENVIRONMENTS["MKL_CBWR=AVX2"] = {"MKL_CBWR": "AVX2"}
if platform.machine() in ("x86_64", "AMD64"):
    ENVIRONMENTS["OPENBLAS_CORETYPE=Prescott"] = {"OPENBLAS_CORETYPE": "Prescott"}
    ENVIRONMENTS["OPENBLAS_CORETYPE=Haswell"] = {"OPENBLAS_CORETYPE": "Haswell"}


@pytest.fixture(scope="module")
def cases(data_home):
    """name -> (fitted coder, rows to encode): binary rows, a mixed table, quantized real columns."""
    from skvae.datasets import load_debd

    plants = load_debd("plants", data_home=data_home, download_if_missing=False)
    binary = VAEDensityEstimator(latent_dim=16, hidden_layer_sizes=(100,), max_epochs=2, random_state=0)
    binary.fit(plants.train[:3000])
    table = VAEDensityEstimator(likelihood="auto", latent_dim=4, hidden_layer_sizes=(32, 32), max_epochs=8,
                                random_state=0).fit(mixed_table(600, 0))
    rng = np.random.RandomState(0)
    real = np.round(rng.randn(400, 5) @ rng.randn(5, 5) * 8) / 8 + 0.0
    gaussian = VAEDensityEstimator(likelihood="gaussian", latent_dim=3, hidden_layer_sizes=(32,), max_epochs=8,
                                   random_state=0).fit(real)
    holes = VAEDensityEstimator(latent_dim=4, hidden_layer_sizes=(32, 32), max_epochs=8, random_state=0)
    holes.fit(with_holes(mixed_table(600, 0).convert_dtypes(), 0.15, 0))  # the encoder also reads the mask
    return {
        "binary": (BitsBackCoder(binary, chunk_size=700).fit(), plants.test[:1500]),
        "table": (BitsBackCoder(table, quantization={"size": 0.01}, chunk_size=150).fit(), mixed_table(300, 1)),
        "real": (BitsBackCoder(gaussian, quantization=0.125).fit(), real[:300]),
        "holes": (BitsBackCoder(holes, chunk_size=150).fit(),
                  with_holes(mixed_table(300, 1).convert_dtypes(), 0.2, 1)),
    }



@pytest.fixture(scope="module")
def encoded(cases, tmp_path_factory):
    """Model files, pickled coders, the encoded bytes and the expected outputs, on disk."""
    folder = tmp_path_factory.mktemp("portable")
    for name, (coder, X) in cases.items():
        coder.save(folder / f"{name}.npz")
        joblib.dump(coder, folder / f"{name}.joblib")
        (folder / f"{name}.bb").write_bytes(coder.encode(X))
        pd.to_pickle(X, folder / f"{name}.expected.pkl")
    return folder


_DECODE_SCRIPT = BLOCK_TORCH + """
if os.environ.get("SKVAE_TEST_BLOCK_TORCH"):
    routes = ("model_file",)  # a pickled coder holds torch objects
else:
    import torch
    if os.environ.get("SKVAE_TEST_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["SKVAE_TEST_TORCH_THREADS"]))
    routes = ("model_file", "pickle")
import joblib, numpy as np, pandas as pd
from skvae.coding import BitsBackCoder
folder = sys.argv[1]
for route in routes:
    for name in ("binary", "table", "real", "holes"):
        path = os.path.join(folder, name)
        coder = BitsBackCoder.load(path + ".npz") if route == "model_file" else joblib.load(path + ".joblib")
        data = open(path + ".bb", "rb").read()
        try:
            out = coder.decode(data)
        except ValueError as exc:
            out = f"{type(exc).__name__}: {exc}"
        else:
            assert coder.encode(out) == data, f"{route} {name}: re-encoding gave other bytes"
        pd.to_pickle(out, os.path.join(folder, f"{name}.{route}.{os.environ['SKVAE_TEST_ENV_ID']}.pkl"))
if os.environ.get("SKVAE_TEST_BLOCK_TORCH"):
    assert not [m for m in sys.modules if m.startswith(("torch", "skorch"))]
"""


def _assert_same(expected, got):
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    else:
        assert type(got) is np.ndarray and got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected)


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_files_decode_exactly_in_other_environments(encoded, environment):
    env_id = "".join(c if c.isalnum() else "_" for c in environment)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKL_", "OPENBLAS_", "ATEN_"))}
    env.update(ENVIRONMENTS[environment], PYTHONPATH=str(REPO), SKVAE_TEST_ENV_ID=env_id)
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, str(encoded)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    routes = ("model_file",) if "SKVAE_TEST_BLOCK_TORCH" in env else ("model_file", "pickle")
    for route in routes:  # the pickle-free file, and a coder pickled with joblib
        for name in ("binary", "table", "real", "holes"):
            got = pd.read_pickle(encoded / f"{name}.{route}.{env_id}.pkl")
            assert not isinstance(got, str), f"{route}, {name}: {got}"
            _assert_same(pd.read_pickle(encoded / f"{name}.expected.pkl"), got)


# -- the model file ---------------------------------------------------------------------------


def test_model_file_round_trip(cases, encoded):
    for name, (coder, X) in cases.items():
        loaded = BitsBackCoder.load(encoded / f"{name}.npz")
        assert loaded.fingerprint_ == coder.fingerprint_
        assert loaded.get_params()["chunk_size"] == coder.chunk_size and loaded.quantization == coder.quantization
        assert not hasattr(loaded, "estimator_")
        _assert_same(X, loaded.decode(coder.encode(X)))
        assert loaded.encode(X) == coder.encode(X)
        assert np.isnan(loaded.report(X).negative_elbo_bits)


def test_model_file_holds_no_pickle(encoded):
    with np.load(encoded / "table.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype.kind in "iu" for name in archive.files)
        config = json.loads(archive["config"].tobytes())
    assert config["format"] == "skvae-coder-model" and config["model"]["arithmetic_version"] == ARITHMETIC_VERSION
    assert [c["name"] for c in config["schema"]["columns"]] == ["color", "count", "flag", "size"]


def test_damaged_model_files_raise_value_errors(encoded, tmp_path):
    blob = (encoded / "binary.npz").read_bytes()
    for cut in (0, 10, len(blob) // 2, len(blob) - 10):
        (tmp_path / "cut.npz").write_bytes(blob[:cut])
        with pytest.raises(ValueError, match="model file"):
            BitsBackCoder.load(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="model file"):
        BitsBackCoder.load(encoded / "binary.joblib")  # a pickle is refused, not executed


def _rewrite_model_file(source, target, edit):
    with np.load(source, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(arrays["config"].tobytes())
    edit(config, arrays)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    with open(target, "wb") as f:
        np.savez(f, **arrays)


def test_model_file_of_another_version_or_shape_is_refused(encoded, tmp_path):
    source, target = encoded / "binary.npz", tmp_path / "edited.npz"
    edits = {
        "version 7": lambda c, a: c.update(version=7),
        "arithmetic version 99": lambda c, a: c["model"].update(arithmetic_version=99),
        "inconsistent shapes": lambda c, a: a.update({"decoder.0.weight": a["decoder.0.weight"][:, :-1]}),
        "do not match its fingerprint": lambda c, a: a["encoder.0.bias"].__setitem__(0, a["encoder.0.bias"][0] + 1),
        "lacks": lambda c, a: a.pop("encoder.1.weight"),
        "integers": lambda c, a: a.update({"encoder.0.weight": a["encoder.0.weight"].astype(float)}),
    }
    for message, edit in edits.items():
        _rewrite_model_file(source, target, edit)
        with pytest.raises(ValueError, match=message):
            BitsBackCoder.load(target)


def test_save_is_atomic(cases, tmp_path, monkeypatch):
    coder = cases["binary"][0]
    target = tmp_path / "model.npz"
    target.write_bytes(b"precious")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        coder.save(target)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


# -- versions in the container ------------------------------------------------------------------


def test_a_coder_fitted_by_the_float_version_asks_to_be_refitted(cases):
    import copy

    old = copy.copy(cases["real"][0])
    del old.model_  # what unpickling a skvae 0.1 coder gives: module_ but no model_
    with pytest.raises(ValueError, match="fitted by skvae 0.1.*fit it again"):
        old.encode(cases["real"][1])


def test_files_of_another_arithmetic_or_format_version_are_refused(cases):
    coder, X = cases["real"]
    data = coder.encode(X[:20])
    previous = ARITHMETIC_VERSION - 1  # files of the previous arithmetic (1: nearest-entry CDF lookups)
    with pytest.raises(ValueError, match=f"arithmetic version {previous}"):
        coder.decode(rewrite_header(data, arithmetic=previous))
    with pytest.raises(ValueError, match=f"arithmetic version {ARITHMETIC_VERSION + 1}"):
        coder.decode(rewrite_header(data, arithmetic=ARITHMETIC_VERSION + 1))
    with pytest.raises(ValueError, match="header fields are missing"):
        coder.decode(rewrite_header(data, arithmetic=None))
    old = bytearray(data)
    struct.pack_into("<H", old, 8, 1)
    with pytest.raises(ValueError, match="format version 1.*older skvae"):
        coder.decode(bytes(old))


# -- the exact arithmetic ----------------------------------------------------------------------


def test_shipped_normal_cdf_table_is_the_integer_computation():
    shipped = np.frombuffer(__import__("base64").b64decode(
        __import__("skvae.coding._cdf_table", fromlist=["x"]).NORMAL_CDF_TABLE), dtype="<f8")
    assert np.array_equal(shipped, _exact.compute_normal_cdf_table())


def test_exact_functions_are_close_to_the_real_ones():
    from scipy.special import expit, ndtr

    t = np.linspace(-9, 9, 20001)
    assert np.abs(_exact.normal_cdf(t) - ndtr(t)).max() < 2e-6
    x = np.linspace(-40, 40, 20001)
    assert np.abs(_exact.exp(x) / np.exp(x) - 1).max() < 1e-6
    assert np.abs(_exact.sigmoid(x) - expit(x)).max() < 1e-6
    lookup = _exact.NORMAL.progression(-9.0, 18 / 20000, 20001, np.zeros(1), np.ones(1))[0]
    assert np.abs(lookup - ndtr(t)).max() < 1e-3
    assert np.all(np.diff(_exact.NORMAL.table) >= 0) and np.all(np.diff(_exact.LOGISTIC.table) >= 0)
    p = _exact.bernoulli_probabilities(x, 16)
    assert p.min() == 2.0 ** -16 and p.max() == 1 - 2.0 ** -16
    assert np.abs(p - np.clip(expit(x), 2.0 ** -16, 1 - 2.0 ** -16)).max() < 2e-4


def _worst_case_sums(layers, bounds):
    """Largest possible |W a + b| of each layer, in exact Python integers."""
    largest = []
    for layer in layers:
        w = np.abs(layer["weight"]).astype(object)
        sums = w @ np.asarray(bounds, dtype=object) + np.abs(layer["bias"]).astype(object)
        largest.append(max(sums))
        shift = int(layer["shift"])
        bounds = [-((-int(v)) >> shift) for v in sums]  # ceil(v / 2**shift) >= rint(v / 2**shift)
    return largest


def test_fixed_point_sums_stay_exact_in_float64(cases):
    """Every layer's worst-case |W a + b| is at most 2**52, so any summation order is exact in float64."""
    from skvae.coding._fixed_point import _INPUT_FORMATS, LATENT_BOUND

    for coder, _ in cases.values():
        model = coder.model_
        inputs = []
        for kind, columns, extra in model.inputs:
            bits, clip = _INPUT_FORMATS[kind]
            inputs += [int(clip * 2 ** bits)] * (sum(extra) if kind == "onehot" else len(columns))
        latents = [LATENT_BOUND] * model.latent_dim
        for layers, bounds in ((model.encoder_layers, inputs), (model.decoder_layers, latents)):
            assert max(_worst_case_sums(layers, bounds)) <= _SUM_LIMIT
    coder = cases["binary"][0]
    x = np.random.RandomState(0).randint(0, 2, (500, coder.n_features_in_)).astype(np.float64)
    hidden = x @ coder.model_._encoder[0][0] + coder.model_._encoder[0][1]
    exact = x.astype(np.int64).astype(object) @ coder.model_.encoder_layers[0]["weight"].T.astype(object) \
        + coder.model_.encoder_layers[0]["bias"].astype(object)
    assert np.array_equal(hidden.astype(np.int64).astype(object), exact)  # float64 BLAS == integer arithmetic


def test_portable_model_follows_the_float_model(cases):
    import torch

    coder, X = cases["binary"]
    x = np.asarray(X[:200], dtype=np.float64)
    mu, logvar = coder.model_.encode(x)
    with torch.no_grad():
        mu_float, logvar_float = coder.module_.encoder(torch.as_tensor(x, dtype=torch.float32))
    assert np.abs(mu - mu_float.numpy()).max() < 1e-3
    assert np.abs(logvar - logvar_float.numpy()).max() < 1e-3
    cells = np.random.RandomState(0).randint(-150, 150, (200, coder.model_.latent_dim))
    with torch.no_grad():
        logits_float = coder.module_.decoder(torch.as_tensor(cells / 32.0, dtype=torch.float32)).numpy()
    assert np.abs(coder.model_.decode(cells, 5) - logits_float).max() < 1e-3


def test_quantized_rate_is_within_a_fraction_of_a_percent_of_the_float_elbo(cases):
    coder, X = cases["binary"]
    report = coder.report(X)
    ideal = report.negative_elbo_bits + report.overhead_bits
    assert abs(report.payload_bits / ideal - 1) < 0.003
