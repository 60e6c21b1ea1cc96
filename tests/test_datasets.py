"""Loaders of the benchmark data: real files in ../shared/data, and the download path offline."""

import gzip
import json
import hashlib
import http.server
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from skvae.datasets import (
    DEBD_NAMES,
    get_data_home,
    load_binarized_mnist,
    load_caltech_silhouettes,
    load_debd,
)
from skvae.datasets import _loaders

# (n_features, train, valid, test) from ../shared/data/README.md (checked there by loading every file).
DEBD_SHAPES = {
    "nltcs": (16, 16181, 2157, 3236),
    "msnbc": (17, 291326, 38843, 58265),
    "kdd": (64, 180092, 19907, 34955),
    "plants": (69, 17412, 2321, 3482),
    "baudio": (100, 15000, 2000, 3000),
    "jester": (100, 9000, 1000, 4116),
    "bnetflix": (100, 15000, 2000, 3000),
    "accidents": (111, 12758, 1700, 2551),
    "tretail": (135, 22041, 2938, 4408),
    "pumsb_star": (163, 12262, 1635, 2452),
    "dna": (180, 1600, 400, 1186),
    "kosarek": (190, 33375, 4450, 6675),
    "msweb": (294, 29441, 3270, 5000),
    "book": (500, 8700, 1159, 1739),
    "tmovie": (500, 4524, 1002, 591),
    "cwebkb": (839, 2803, 558, 838),
    "cr52": (889, 6532, 1028, 1540),
    "c20ng": (910, 11293, 3764, 3764),
    "bbc": (1058, 1670, 225, 330),
    "ad": (1556, 2461, 327, 491),
}


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _write_plain_debd(folder, name, data_home, train_stem="train"):
    """Gunzip the shared files of `name` into folder/<name>.{train_stem,valid,test}.data."""
    folder.mkdir(parents=True, exist_ok=True)
    for src, dst in (("ts", train_stem), ("valid", "valid"), ("test", "test")):
        raw = gzip.decompress((data_home / "twenty_datasets" / name / f"{name}.{src}.data.gz").read_bytes())
        (folder / f"{name}.{dst}.data").write_bytes(raw)


def _no_partial_files(root):
    return [p for p in Path(root).rglob("*") if p.name.endswith(".part")] == []


# ----------------------------------------------------------------------------- real files


def test_debd_names_cover_the_table():
    assert DEBD_NAMES == tuple(DEBD_SHAPES)


@pytest.mark.parametrize("name", DEBD_NAMES)
def test_debd_shapes_values_and_dtype(data_home, name):
    data = load_debd(name, data_home=data_home, download_if_missing=False)
    n_features, n_train, n_valid, n_test = DEBD_SHAPES[name]
    assert data.name == name and data.n_features == n_features
    assert data.train.shape == (n_train, n_features)
    assert data.valid.shape == (n_valid, n_features)
    assert data.test.shape == (n_test, n_features)
    for X in (data.train, data.valid, data.test):
        assert X.dtype == np.uint8
        assert set(np.unique(X)) <= {0, 1}
    assert name in data.DESCR and "kdd has 64 columns" in data.DESCR


def test_debd_quirks_kdd_and_tmovie(data_home):
    assert load_debd("kdd", data_home=data_home, split="test").shape[1] == 64
    assert load_debd("tmovie", data_home=data_home, split="train").shape[0] == 4524


def test_fast_parser_matches_loadtxt(data_home, nltcs):
    train, test = nltcs
    np.testing.assert_array_equal(load_debd("nltcs", data_home=data_home, split="train"), train)
    np.testing.assert_array_equal(load_debd("nltcs", data_home=data_home, split="test"), test)
    ref = np.loadtxt(data_home / "twenty_datasets/ad/ad.valid.data.gz", delimiter=",", dtype=np.uint8, ndmin=2)
    np.testing.assert_array_equal(load_debd("ad", data_home=data_home, split="valid"), ref)


def test_split_argument_returns_the_array(data_home):
    bunch = load_debd("dna", data_home=data_home)
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(load_debd("dna", data_home=data_home, split=split), bunch[split])


@pytest.mark.parametrize("name", ["NLTCS", "mnist", "", 3, None])
def test_bad_name_lists_valid_names(data_home, name):
    with pytest.raises(ValueError, match="nltcs, msnbc.*, ad"):
        load_debd(name, data_home=data_home)


@pytest.mark.parametrize("split", ["ts", "validation", "TRAIN", 0])
def test_bad_split(data_home, split):
    with pytest.raises(ValueError, match="split must be"):
        load_debd("nltcs", data_home=data_home, split=split)
    with pytest.raises(ValueError, match="split must be"):
        load_caltech_silhouettes(data_home=data_home, split=split)
    with pytest.raises(ValueError, match="split must be"):
        load_binarized_mnist(data_home=data_home, split=split)


def test_get_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SKVAE_DATA", raising=False)
    assert get_data_home() == str(tmp_path / "home" / "skvae_data")
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "env"))
    assert get_data_home() == str(tmp_path / "env")
    assert get_data_home(tmp_path / "arg") == str(tmp_path / "arg")
    assert get_data_home("~/x") == str(tmp_path / "home" / "x")


def test_env_var_is_used_by_the_loaders(monkeypatch, data_home, nltcs):
    monkeypatch.setenv("SKVAE_DATA", str(data_home))
    np.testing.assert_array_equal(load_debd("nltcs", split="test", download_if_missing=False), nltcs[1])
    assert load_caltech_silhouettes(split="valid", download_if_missing=False).shape == (2264, 784)


@pytest.mark.parametrize("layout", ["twenty_datasets/{n}", "{n}"])
@pytest.mark.parametrize("train_stem", ["train", "ts"])
def test_plain_debd_layouts(tmp_path, data_home, layout, train_stem):
    _write_plain_debd(tmp_path / layout.format(n="dna"), "dna", data_home, train_stem)
    got = load_debd("dna", data_home=tmp_path, download_if_missing=False)
    ref = load_debd("dna", data_home=data_home)
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(got[split], ref[split])
    assert all(Path(p).parent == tmp_path / layout.format(n="dna") for p in got.filenames.values())


def test_gzip_files_directly_under_name(tmp_path, data_home):
    shutil.copytree(data_home / "twenty_datasets" / "nltcs", tmp_path / "nltcs")
    assert load_debd("nltcs", data_home=tmp_path, split="valid", download_if_missing=False).shape == (2157, 16)


def test_non_binary_or_wrong_width_file_is_rejected(tmp_path):
    folder = tmp_path / "nltcs"
    folder.mkdir()
    (folder / "nltcs.test.data").write_text("0,1,2" + ",0" * 13 + "\n")
    with pytest.raises(ValueError, match="other than 0 and 1"):
        load_debd("nltcs", data_home=tmp_path, split="test", download_if_missing=False)
    (folder / "nltcs.test.data").write_text("0,1\n1,0\n")
    with pytest.raises(ValueError, match="2 columns, expected 16"):
        load_debd("nltcs", data_home=tmp_path, split="test", download_if_missing=False)


def test_missing_file_without_download(tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False"):
        load_debd("nltcs", data_home=tmp_path, download_if_missing=False)
    with pytest.raises(OSError, match="download_if_missing=False"):
        load_caltech_silhouettes(data_home=tmp_path, download_if_missing=False)


def test_silhouettes_npz(data_home):
    data = load_caltech_silhouettes(data_home=data_home, download_if_missing=False)
    assert data.filename.endswith(".npz")
    assert data.train.shape == (4100, 784) and data.valid.shape == (2264, 784) and data.test.shape == (2307, 784)
    for split in ("train", "valid", "test"):
        assert data[split].dtype == np.uint8 and set(np.unique(data[split])) <= {0, 1}
        labels = data[f"{split}_labels"]
        assert labels.shape == (len(data[split]),) and labels.min() >= 1 and labels.max() <= 101
    assert len(data.classnames) == 101 and data.image_shape == (28, 28)
    assert 0.5 < data.train.mean() < 0.6  # object = 0, background = 1, as stored
    assert "column-major" in data.DESCR and "OBJECT IS 0" in data.DESCR


def test_silhouettes_data_home_may_be_the_folder_of_the_file(data_home):
    folder = data_home / "caltech101_silhouettes"
    data = load_caltech_silhouettes(data_home=folder, download_if_missing=False)
    assert data.filename == str(folder / "caltech101_silhouettes_28_split1.npz")
    np.testing.assert_array_equal(data.test, load_caltech_silhouettes(data_home=data_home, split="test"))


def test_silhouettes_mat_equals_npz(tmp_path, data_home):
    folder = tmp_path / "caltech101_silhouettes"
    folder.mkdir()
    shutil.copy(data_home / "caltech101_silhouettes" / "caltech101_silhouettes_28_split1.mat", folder)
    from_mat = load_caltech_silhouettes(data_home=tmp_path, download_if_missing=False)
    from_npz = load_caltech_silhouettes(data_home=data_home)
    assert from_mat.filename.endswith(".mat")
    for key in ("train", "valid", "test", "train_labels", "valid_labels", "test_labels", "classnames"):
        np.testing.assert_array_equal(from_mat[key], from_npz[key])
        assert from_mat[key].dtype == from_npz[key].dtype
    np.testing.assert_array_equal(load_caltech_silhouettes(data_home=tmp_path, split="test"), from_npz.test)


# ----------------------------------------------------------------------------- the download path


def test_registry_checksums_match_the_shared_files(data_home):
    """The DEBD checksums are those of the gunzipped shared files; Silhouettes that of the .mat."""
    for name in DEBD_NAMES:
        for src, split in (("ts", "train"), ("valid", "valid"), ("test", "test")):
            remote = _loaders.REMOTE[f"twenty_datasets/{name}/{name}.{split}.data"]
            raw = gzip.decompress((data_home / "twenty_datasets" / name / f"{name}.{src}.data.gz").read_bytes())
            assert remote.sha256 == _sha256(raw), (name, split)
            assert remote.url.startswith("https://raw.githubusercontent.com/") and _loaders._DEBD_COMMIT in remote.url
            assert remote.url.endswith(f"/datasets/{name}/{name}.{split}.data")
    mat = data_home / "caltech101_silhouettes" / "caltech101_silhouettes_28_split1.mat"
    assert _loaders.REMOTE["caltech101_silhouettes/caltech101_silhouettes_28_split1.mat"].sha256 == _sha256(
        mat.read_bytes()
    )


@pytest.fixture
def nltcs_source(tmp_path, data_home, monkeypatch):
    """Plain DEBD nltcs files in a 'remote' folder; the registry points at them with file:// URLs."""
    remote = tmp_path / "remote"
    _write_plain_debd(remote, "nltcs", data_home)
    for split in ("train", "valid", "test"):
        path = remote / f"nltcs.{split}.data"
        key = f"twenty_datasets/nltcs/nltcs.{split}.data"
        monkeypatch.setitem(_loaders.REMOTE, key, _loaders.RemoteFile(path.as_uri(), _sha256(path.read_bytes())))
    return remote


def test_download_from_file_url(tmp_path, data_home, nltcs_source):
    home = tmp_path / "home"
    got = load_debd("nltcs", data_home=home)
    ref = load_debd("nltcs", data_home=data_home)
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(got[split], ref[split])
        assert (home / "twenty_datasets" / "nltcs" / f"nltcs.{split}.data").is_file()
    assert _no_partial_files(home)
    # Now cached: loads with downloads forbidden, even with the source gone.
    shutil.rmtree(nltcs_source)
    np.testing.assert_array_equal(load_debd("nltcs", data_home=home, split="test", download_if_missing=False), ref.test)


def test_download_checksum_mismatch_leaves_nothing(tmp_path, nltcs_source, monkeypatch):
    key = "twenty_datasets/nltcs/nltcs.test.data"
    monkeypatch.setitem(_loaders.REMOTE, key, _loaders.RemoteFile(_loaders.REMOTE[key].url, "0" * 64))
    home = tmp_path / "home"
    with pytest.raises(OSError, match="checksum mismatch") as info:
        load_debd("nltcs", data_home=home, split="test")
    assert str(home) in str(info.value) and _loaders.REMOTE[key].url in str(info.value)
    assert not (home / "twenty_datasets" / "nltcs" / "nltcs.test.data").exists()
    assert _no_partial_files(home)


def test_offline_error_names_url_and_data_home(tmp_path, monkeypatch):
    # A port that was just free on 127.0.0.1: the connection is refused, nothing leaves the machine.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/nltcs.test.data"
    monkeypatch.setitem(_loaders.REMOTE, "twenty_datasets/nltcs/nltcs.test.data", _loaders.RemoteFile(url, "0" * 64))
    home = tmp_path / "home"
    with pytest.raises(OSError, match="could not download") as info:
        load_debd("nltcs", data_home=home, split="test")
    assert url in str(info.value) and str(home) in str(info.value)
    assert _no_partial_files(home)


@pytest.fixture
def http_root(tmp_path):
    """A static file server on 127.0.0.1 serving tmp_path/www; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _point_mnist_at(monkeypatch, base_url):
    for split in ("train", "valid", "test"):
        url = f"{base_url}/binarized_mnist_{split}.amat"
        key = f"binarized_mnist/binarized_mnist_{split}.amat"
        monkeypatch.setitem(_loaders.REMOTE, key, _loaders.RemoteFile(url, None))


def test_binarized_mnist_download_over_http(tmp_path, http_root, monkeypatch):
    root, base_url = http_root
    rng = np.random.RandomState(0)
    expected = {split: rng.binomial(1, 0.2, size=(n, 784)).astype(np.uint8) for split, n in
                (("train", 7), ("valid", 3), ("test", 4))}  # fmt: skip
    for split, X in expected.items():
        np.savetxt(root / f"binarized_mnist_{split}.amat", X, fmt="%d", delimiter=" ")
    _point_mnist_at(monkeypatch, base_url)
    home = tmp_path / "home"
    with pytest.warns(UserWarning, match="without a checksum"):
        data = load_binarized_mnist(data_home=home)
    for split, X in expected.items():
        assert data[split].dtype == np.uint8
        np.testing.assert_array_equal(data[split], X)
    assert data.n_features == 784 and "Larochelle" in data.DESCR
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cached now: no download, no warning
        np.testing.assert_array_equal(load_binarized_mnist(data_home=home, split="valid"), expected["valid"])


def test_binarized_mnist_bad_download_is_removed(tmp_path, http_root, monkeypatch):
    root, base_url = http_root
    (root / "binarized_mnist_test.amat").write_text(" ".join(["2"] * 784) + "\n")
    _point_mnist_at(monkeypatch, base_url)
    home = tmp_path / "home"
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="other than 0 and 1"):
        load_binarized_mnist(data_home=home, split="test")
    assert not (home / "binarized_mnist" / "binarized_mnist_test.amat").exists()


def test_binarized_mnist_http_404(tmp_path, http_root, monkeypatch):
    _, base_url = http_root
    _point_mnist_at(monkeypatch, base_url)
    with pytest.raises(OSError, match="binarized_mnist_train.amat"):
        load_binarized_mnist(data_home=tmp_path / "home", split="train")
    assert _no_partial_files(tmp_path / "home")


def test_silhouettes_download_verifies_real_checksum(tmp_path, data_home, monkeypatch):
    key = "caltech101_silhouettes/caltech101_silhouettes_28_split1.mat"
    mat = data_home / "caltech101_silhouettes" / "caltech101_silhouettes_28_split1.mat"
    # Same checksum as the registry's: the download is accepted only if the bytes are the real file.
    monkeypatch.setitem(_loaders.REMOTE, key, _loaders.RemoteFile(mat.as_uri(), _loaders.REMOTE[key].sha256))
    got = load_caltech_silhouettes(data_home=tmp_path)
    assert got.filename == str(tmp_path / key) and got.test.shape == (2307, 784)
    np.testing.assert_array_equal(got.train, load_caltech_silhouettes(data_home=data_home).train)


# ----------------------------------------------------------------------------- the benchmark harness


@pytest.fixture(scope="module")
def harness():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_harness.py"
    spec = importlib.util.spec_from_file_location("_harness_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_run_one_chooses_on_valid_and_records(harness, nltcs):
    from sklearn.utils import Bunch

    from skvae import VAEDensityEstimator

    train, test = nltcs
    data = Bunch(train=train[:600], valid=train[600:800], test=test[:100])
    grid = [{"latent_dim": 2, "hidden_layer_sizes": (8,)}, {"latent_dim": 4, "hidden_layer_sizes": (16,)}]
    seen = []

    def factory(**params):
        seen.append(params)
        return VAEDensityEstimator(max_epochs=3, random_state=0, n_eval_samples=3, **params)

    row = harness.run_one(
        factory, "nltcs", grid, data=data, patience=2, iwae_samples=20, iwae_max_rows=40, log=seen.append
    )
    assert [p for p in seen if isinstance(p, dict)] == grid and row["grid_size"] == 2
    valids = [float(m.split("valid ELBO ")[1].split()[0]) for m in seen if isinstance(m, str)]
    assert row["valid_elbo"] == pytest.approx(max(valids), abs=1e-3)
    assert row["iwae_rows"] == 40 and row["n_test"] == 100 and row["iwae_samples"] == 20
    assert np.isfinite(row["test_iwae"]) and row["test_elbo"] < 0
    assert row["bits_per_dim"] == pytest.approx(-row["test_iwae"] / (16 * np.log(2)))
    assert json.loads(row["settings"])["n_eval_samples"] == 3  # restored after the IWAE pass


def test_harness_evaluate_restores_n_eval_samples_and_iwae_beats_elbo(harness, nltcs):
    from skvae import VAEDensityEstimator

    train, test = nltcs
    vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=2, random_state=0).fit(train[:500])
    out = harness.evaluate(vae, test[:200], iwae_samples=50)
    assert vae.n_eval_samples == 1 and out["iwae_rows"] == 200
    assert out["test_elbo"] == pytest.approx(vae.score(test[:200]))
    assert out["test_iwae"] > out["test_elbo"]


def test_harness_append_row_grows_header(harness, tmp_path):
    path = tmp_path / "r.csv"
    harness.append_row(path, {"dataset": "a", "x": 1.5})
    harness.append_row(path, {"dataset": "b", "y": "z"})
    rows = harness.read_rows(path)
    assert rows == [{"dataset": "a", "x": "1.5", "y": ""}, {"dataset": "b", "x": "", "y": "z"}]
    harness.write_markdown(tmp_path / "r.md", rows + [{"dataset": "c", "x": -6.037, "y": 12}], "python bench.py --x")
    text = (tmp_path / "r.md").read_text()
    assert "python bench.py --x" in text and "| a | 1.50 |  |" in text and "| c | -6.04 | 12 |" in text
