"""Tests of the bits-back coder (skvae.coding)."""

import json
import pickle
import struct
import zlib

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skvae import VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.coding._container import parse

from _helpers import rewrite_header


@pytest.fixture(scope="module")
def data(nltcs):
    train, test = nltcs
    return train[:2000], test[:1500]


@pytest.fixture(scope="module")
def vae(data):
    return VAEDensityEstimator(latent_dim=3, hidden_layer_sizes=(24,), max_epochs=3, batch_size=100,
                               random_state=0).fit(data[0])


@pytest.fixture(scope="module")
def coder(vae):
    return BitsBackCoder(vae, chunk_size=700, block_size=128).fit()


def _assert_identical(a, b):
    assert type(b) is np.ndarray
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b)


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.int64, np.float32, np.float64, ">f8", ">i4"])
def test_round_trip_keeps_values_dtype_and_shape(coder, data, dtype):
    X = data[1][:900].astype(dtype)
    blob = coder.encode(X)
    assert isinstance(blob, bytes)
    _assert_identical(X, coder.decode(blob))


@pytest.mark.parametrize("n_rows", [0, 1, 2, 699, 700, 701])
def test_round_trip_at_chunk_boundaries(coder, data, n_rows):
    X = data[1][:n_rows]
    _assert_identical(X, coder.decode(coder.encode(X)))


def test_round_trip_tiny_chunks_and_blocks(vae, data):
    X = data[1][:40]
    coder = BitsBackCoder(vae, chunk_size=1, block_size=1).fit()
    blob = coder.encode(X)
    assert len(parse(blob)[1]) == 40
    _assert_identical(X, coder.decode(blob))


def test_round_trip_memmap_and_list(coder, data, tmp_path):
    X = data[1][:500]
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert coder.encode(mm) == coder.encode(X)
    _assert_identical(X.astype(np.int64), coder.decode(coder.encode(X.astype(np.int64).tolist())))


def test_decoder_uses_the_parameters_stored_in_the_file(vae, data):
    X = data[1][:400]
    blob = BitsBackCoder(vae, latent_precision=7, chunk_size=150, block_size=32).fit().encode(X)
    other = BitsBackCoder(vae, latent_precision=3, chunk_size=1000).fit()
    _assert_identical(X, other.decode(blob))


# -- bits back actually saves bits ------------------------------------------------


def test_rate_is_close_to_negative_elbo(vae, data):
    X = data[0][:2000]
    coder = BitsBackCoder(vae, chunk_size=5000).fit()
    report = coder.report(X)
    ideal = report.negative_elbo_bits + report.overhead_bits
    # without bits back the payload would exceed this by about the posterior entropy per row
    assert abs(report.payload_bits - ideal) < 0.02 * ideal
    assert 0 < report.overhead_bits < 500
    assert report.total_bits == 8 * len(coder.encode(X)) == report.payload_bits + report.container_bits
    assert report.bits_per_dim == pytest.approx(report.total_bits / X.size)
    assert report.raw_bits == X.size
    assert min(report.gzip_bits, report.bz2_bits, report.xz_bits) > 0


def test_score_is_negative_bits_per_dim(coder, data):
    X = data[1][:500]
    assert coder.score(X) == pytest.approx(-8 * len(coder.encode(X)) / X.size)


# -- transformer API and fitting rule ---------------------------------------------------------


def test_transform_and_inverse_transform_in_a_pipeline(vae, data):
    X = data[1][:300]
    pipe = make_pipeline(FunctionTransformer(None), BitsBackCoder(vae, chunk_size=128))
    code = pipe.fit(X).transform(X)
    assert code.dtype == np.uint8 and code.ndim == 1
    assert code.tobytes() == pipe[-1].encode(X)
    _assert_identical(X, pipe.inverse_transform(code))
    with pytest.raises(ValueError, match="1-D uint8"):
        pipe[-1].inverse_transform(code.astype(np.int16))


def test_fitted_estimator_is_used_as_is(vae, data):
    before = {k: v.clone() for k, v in vae.net_.module_.state_dict().items()}
    coder = BitsBackCoder(vae).fit(data[0][:100])
    assert coder.estimator_ is vae
    for k, v in vae.net_.module_.state_dict().items():
        assert torch.equal(before[k], v)


def test_unfitted_estimator_is_cloned_and_fitted(data):
    est = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0)
    coder = BitsBackCoder(est).fit(data[0][:200])
    assert coder.estimator_ is not est and not hasattr(est, "net_")
    assert hasattr(coder.estimator_, "net_")
    with pytest.raises(ValueError, match="X is required"):
        BitsBackCoder(est).fit()


def test_default_estimator_is_a_vae():
    X = (np.random.RandomState(0).rand(30, 4) < 0.5).astype(np.uint8)
    coder = BitsBackCoder().fit(X)
    assert isinstance(coder.estimator_, VAEDensityEstimator)
    _assert_identical(X, coder.decode(coder.encode(X)))


def test_model_snapshot_is_frozen_at_fit(data):
    est = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0)
    est.fit(data[0][:200])
    coder = BitsBackCoder(est).fit()
    blob = coder.encode(data[1][:100])
    est.partial_fit(data[0][:200])  # the user keeps training the estimator
    assert coder.encode(data[1][:100]) == blob


def test_clone_and_params(coder):
    params = coder.get_params(deep=False)
    assert params["chunk_size"] == 700 and params["latent_precision"] == 5
    assert clone(coder).get_params(deep=False)["block_size"] == 128


# -- refusals ---------------------------------------------------------------------------------


def test_gaussian_likelihood_is_refused(data):
    est = VAEDensityEstimator(likelihood="gaussian", latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1,
                              random_state=0).fit(data[0][:100].astype(float))
    with pytest.raises(ValueError, match="no lossless code.*quantization"):
        BitsBackCoder(est, quantization=None).fit()
    unfitted = VAEDensityEstimator(likelihood="gaussian", max_epochs=1000)  # refused before training
    with pytest.raises(ValueError, match="no lossless code"):
        BitsBackCoder(unfitted, quantization=None).fit(data[0][:100].astype(float))
    with pytest.raises(TypeError, match="skvae density estimator"):
        BitsBackCoder(FunctionTransformer()).fit(data[0][:100])


def test_bad_input_is_refused(coder, data):
    X = data[1][:20].astype(np.float64)
    bad = X.copy()
    bad[3, 5] = 2.0
    with pytest.raises(ValueError, match="column 5"):
        coder.encode(bad)
    neg = X.copy()
    neg[np.nonzero(neg == 0)[0][0], np.nonzero(neg == 0)[1][0]] = -0.0
    with pytest.raises(ValueError, match="bit for bit"):
        coder.encode(neg)
    with pytest.raises(TypeError, match="dtype"):
        coder.encode(X.astype(object))
    with pytest.raises(ValueError, match="2-D"):
        coder.encode(X[0])
    with pytest.raises(ValueError, match="features"):
        coder.encode(X[:, :5])


@pytest.mark.parametrize("param, value", [("latent_precision", 30), ("latent_precision", -1), ("chunk_size", 0),
                                          ("likelihood_precision", 40), ("latent_clip", 0.5)])
def test_bad_parameters_are_refused(vae, param, value):
    with pytest.raises(ValueError, match=param):
        BitsBackCoder(vae, **{param: value}).fit()


# -- the container --------------------------------------------------------------------------


def test_container_layout_has_no_pickle(coder, data, monkeypatch):
    X = data[1][:800]
    blob = coder.encode(X)
    assert blob[:8] == b"SKVAEBB\x00" and blob[-40:-32] == b"SKVAEEND"
    header, chunks, digest = parse(blob)
    assert header["shape"] == [800, 16] and header["dtype"] == "|u1" and header["n_chunks"] == 2
    assert header["params"]["chunk_size"] == 700 and header["constriction_version"] == "0.5"
    assert struct.unpack_from("<I", blob, 10)[0] <= 96  # a compact header
    assert [c.n_rows for c in chunks] == [700, 100]
    columns = [{"kind": "bernoulli", "count": 16}]
    layout = json.dumps([header["dtype"], header["shape"], columns, header["grid"]], sort_keys=True)
    assert digest == __import__("hashlib").sha256(layout.encode() + X.tobytes()).digest()

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used while decoding")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    _assert_identical(X, coder.decode(blob))


def test_truncated_input_raises_value_error(coder, data):
    blob = coder.encode(data[1][:800])
    for cut in [0, 5, 13, 40, len(blob) // 2, len(blob) - 41, len(blob) - 1]:
        with pytest.raises(ValueError):
            coder.decode(blob[:cut])
    with pytest.raises(ValueError, match="unexpected bytes"):
        coder.decode(blob + b"\0")


def test_corrupted_bytes_raise_value_error(coder, data):
    blob = coder.encode(data[1][:800])
    rng = np.random.RandomState(0)
    positions = [0, 9, 20, len(blob) // 3, len(blob) // 2, len(blob) - 50, len(blob) - 3]
    positions += list(rng.randint(0, len(blob), size=20))
    for pos in positions:
        damaged = bytearray(blob)
        damaged[pos] ^= 0x5A
        with pytest.raises(ValueError):
            coder.decode(bytes(damaged))


def test_corrupted_stream_with_valid_crc_never_returns_a_wrong_array(coder, data):
    X = data[1][:800]
    blob = coder.encode(X)
    header_len = struct.unpack_from("<I", blob, 10)[0]
    record = 14 + header_len + 4
    n_rows, n_words, ramp_len, _, rows_crc = struct.unpack_from("<IIIII", blob, record)
    start = record + 20 + ramp_len
    for word in [0, n_words // 2, n_words - 1]:
        damaged = bytearray(blob)
        damaged[start + 4 * word] ^= 0x01
        crc = zlib.crc32(bytes(damaged[start:start + 4 * n_words]),
                         zlib.crc32(bytes(damaged[record + 20:start])))
        struct.pack_into("<IIIII", damaged, record, n_rows, n_words, ramp_len, crc, rows_crc)
        with pytest.raises(ValueError):
            coder.decode(bytes(damaged))


def test_different_model_is_detected(coder, vae, data):
    blob = coder.encode(data[1][:100])
    other = VAEDensityEstimator(latent_dim=3, hidden_layer_sizes=(24,), max_epochs=1, batch_size=100,
                                random_state=1).fit(data[0][:300])
    with pytest.raises(ValueError, match="different model"):
        BitsBackCoder(other).fit().decode(blob)


def test_incompatible_constriction_version_is_refused(coder, data):
    blob = rewrite_header(coder.encode(data[1][:100]), constriction_version="0.4.1")
    with pytest.raises(ValueError, match="constriction 0.4.1"):
        coder.decode(blob)


def test_unknown_format_version_is_refused(coder, data):
    blob = bytearray(coder.encode(data[1][:100]))
    struct.pack_into("<H", blob, 8, 99)
    with pytest.raises(ValueError, match="version 99"):
        coder.decode(bytes(blob))


# -- determinism and parallel chunks ----------------------------------------------------------


def test_parallel_chunks_give_identical_bytes(vae, data):
    # threads instead of loky processes keep the test fast; process workers get the
    # pickled coder, which the other-process test below covers
    X = data[1][:1200]
    serial = BitsBackCoder(vae, chunk_size=300).fit()
    parallel = clone(serial).set_params(estimator=vae, n_jobs=2).fit()
    blob = serial.encode(X)
    with joblib.parallel_config(backend="threading"):
        assert parallel.encode(X) == blob
        _assert_identical(X, parallel.decode(blob))


# -- command line ------------------------------------------------------------------------------


def test_cli_round_trip_npy_and_csv(vae, data, tmp_path, capsys):
    from skvae.cli import main

    X = data[1][:300]
    joblib.dump(vae, tmp_path / "vae.joblib")
    np.save(tmp_path / "x.npy", X)
    assert main(["compress", str(tmp_path / "vae.joblib"), str(tmp_path / "x.npy"), str(tmp_path / "x.bb"),
                 "--chunk-size", "128"]) == 0
    assert parse((tmp_path / "x.bb").read_bytes())[0]["params"]["chunk_size"] == 128
    assert main(["decompress", str(tmp_path / "vae.joblib"), str(tmp_path / "x.bb"), str(tmp_path / "y.npy")]) == 0
    _assert_identical(X, np.load(tmp_path / "y.npy"))
    # the portable model file: exported once, then read without unpickling anything
    assert main(["export-model", str(tmp_path / "vae.joblib"), str(tmp_path / "vae.npz")]) == 0
    assert main(["decompress", str(tmp_path / "vae.npz"), str(tmp_path / "x.bb"), str(tmp_path / "z.npy")]) == 0
    _assert_identical(X, np.load(tmp_path / "z.npy"))
    np.savetxt(tmp_path / "x.csv", X, fmt="%d", delimiter=",")
    assert main(["compress", str(tmp_path / "vae.npz"), str(tmp_path / "x.csv"), str(tmp_path / "c.bb")]) == 0
    assert main(["decompress", str(tmp_path / "vae.npz"), str(tmp_path / "c.bb"), str(tmp_path / "y.csv")]) == 0
    assert (tmp_path / "y.csv").read_text() == (tmp_path / "x.csv").read_text()
    assert main(["export-model", str(tmp_path / "vae.npz"), str(tmp_path / "again.npz")]) == 1
    assert "already a portable model file" in capsys.readouterr().err


def test_cli_errors_are_one_line_messages(coder, data, tmp_path, capsys):
    from skvae.cli import main

    joblib.dump(coder, tmp_path / "coder.joblib")
    (tmp_path / "x.bb").write_bytes(coder.encode(data[1][:100])[:-7])
    assert main(["decompress", str(tmp_path / "coder.joblib"), str(tmp_path / "x.bb"), str(tmp_path / "y.npy")]) == 1
    assert "truncated" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()
    np.save(tmp_path / "bad.npy", np.full((3, 16), 2, dtype=np.uint8))
    assert main(["compress", str(tmp_path / "coder.joblib"), str(tmp_path / "bad.npy"), str(tmp_path / "b.bb")]) == 1
    assert "0/1 values" in capsys.readouterr().err
    assert not (tmp_path / "b.bb").exists()
    for command in ("compress", "decompress"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "model" in capsys.readouterr().out


def test_cli_failures_keep_existing_outputs(coder, data, tmp_path, capsys):
    from skvae.cli import main

    coder.save(tmp_path / "model.npz")
    (tmp_path / "x.bb").write_bytes(coder.encode(data[1][:100]))
    np.save(tmp_path / "bad.npy", np.full((3, 16), 2, dtype=np.uint8))
    for name in ("old.bb", "old.npy"):
        (tmp_path / name).write_text("precious")
    model = str(tmp_path / "model.npz")
    assert main(["compress", model, str(tmp_path / "bad.npy"), str(tmp_path / "old.bb")]) == 1
    (tmp_path / "cut.bb").write_bytes((tmp_path / "x.bb").read_bytes()[:-9])
    assert main(["decompress", model, str(tmp_path / "cut.bb"), str(tmp_path / "old.npy")]) == 1
    np.save(tmp_path / "same.npy", data[1][:50])
    assert main(["compress", model, str(tmp_path / "same.npy"), str(tmp_path / "same.npy")]) == 1
    assert "is the input" in capsys.readouterr().err
    assert np.array_equal(np.load(tmp_path / "same.npy"), data[1][:50])
    assert [(tmp_path / n).read_text() for n in ("old.bb", "old.npy")] == ["precious", "precious"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]  # no temporary file left
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle at all")
    assert main(["decompress", str(tmp_path / "junk.joblib"), str(tmp_path / "x.bb"), str(tmp_path / "y.npy")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "neither a skvae model file" in err


def test_grid_search_picks_a_coder_by_score(data):
    from sklearn.model_selection import GridSearchCV

    est = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=1, random_state=0)
    search = GridSearchCV(BitsBackCoder(est), {"latent_precision": [2, 5]}, cv=2).fit(data[0][:400])
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores < 0) and np.all(scores > -5)  # 200-row folds: the header and first row weigh in
    assert search.best_params_["latent_precision"] == [2, 5][int(np.argmax(scores))]


# -- hostile files and extreme values ------------------------------------------------------------


def test_edited_dtype_or_shape_fails_the_integrity_check(coder, data):
    X = data[1][:300]
    blob = coder.encode(X)
    with pytest.raises(ValueError, match="SHA-256"):
        coder.decode(rewrite_header(blob, dtype="|i1"))  # same bytes, other meaning, header CRC recomputed
    with pytest.raises(ValueError, match="SHA-256"):
        coder.decode(rewrite_header(blob, dtype="|b1"))


def test_a_chunk_claiming_more_rows_than_its_stream_can_hold_is_refused_before_allocating(coder, data):
    original = coder.encode(data[1][:50])
    header = parse(original)[0]
    params = {**header["params"], "chunk_size": 2 ** 31 - 1}
    # a forger who has the model recomputes every unkeyed check: fingerprint and CRCs
    columns = coder._codec(params).columns.schema()
    blob = rewrite_header(original, shape=[2 ** 31 - 1, 16], params=params,
                          fingerprint=coder._file_fingerprint(params, columns))
    header_len = struct.unpack_from("<I", blob, 10)[0]
    record = 14 + header_len + 4
    forged = bytearray(blob)
    struct.pack_into("<I", forged, record, 2 ** 31 - 1)  # n_rows is not under the stream CRC
    with pytest.raises(ValueError, match="claims 2147483647 rows"):
        coder.decode(bytes(forged))


def test_extreme_values_and_parameters_give_value_errors(data):
    rng = np.random.RandomState(0)
    X = np.round(rng.randn(200, 2), 2) + 0.0
    vae = VAEDensityEstimator(likelihood="gaussian", latent_dim=2, hidden_layer_sizes=(8,), max_epochs=2,
                              random_state=0).fit(X)
    with pytest.raises(ValueError, match="too many quantization steps"):
        BitsBackCoder(vae, quantization=1e-300).fit().encode(X)
    far = X.copy()
    far[5, 1] = 1e300
    with pytest.raises(ValueError, match=r"column 1 holds 1e\+300"):
        BitsBackCoder(vae, quantization=0.01).fit().encode(far)
    with pytest.raises(ValueError, match="latent_clip"):
        BitsBackCoder(vae, latent_clip=float("nan"), quantization=0.01).fit()
    off_grid = X.copy()
    off_grid[3, 1] = 0.123
    with pytest.raises(ValueError, match=r"^column 1 holds 0.123, which is not on the quantization grid"):
        BitsBackCoder(vae, quantization=0.01).fit().encode(off_grid)  # a plain int, not np.int64(1)


def test_a_huge_integer_in_a_table_is_named_not_a_type_error():
    Z = np.random.RandomState(0).randint(0, 5, (200, 3)).astype(np.uint64)
    vae = VAEDensityEstimator(likelihood={"integer": [0, 1, 2]}, latent_dim=2, hidden_layer_sizes=(8,),
                              max_epochs=1, random_state=0).fit(Z)
    Z[0, 1] = np.iinfo(np.uint64).max
    with pytest.raises(ValueError, match="column 1 holds 1.8446744073709552e\\+19, beyond the integers"):
        BitsBackCoder(vae).fit().encode(Z)


def test_a_panic_in_the_entropy_coder_becomes_a_value_error(coder, data, monkeypatch):
    import constriction

    class Panic(BaseException):  # what pyo3 raises for a Rust panic
        pass

    def panic(*args, **kwargs):
        raise Panic("Invalid model parameter")

    blob = coder.encode(data[1][:100])
    monkeypatch.setattr(constriction.stream.stack, "AnsCoder", lambda *args: type("C", (), {
        "encode_reverse": panic, "decode": panic, "num_valid_bits": lambda self: 10 ** 6,
        "is_empty": lambda self: True, "get_compressed": lambda self: np.zeros(2, np.uint32)})())
    with pytest.raises(ValueError, match="entropy coder failed.*Invalid model parameter"):
        coder.encode(data[1][:100])
    with pytest.raises(ValueError, match="entropy coder failed"):
        coder.decode(blob)
