"""Files and model files of coder arithmetic version 1 (before interpolated CDF lookups) still decode exactly.

The fixtures in tests/data/arithmetic_v1 were written by the code of version 1 (commit d30a228, with
tests/data/arithmetic_v1/make_fixtures.py): a 0/1 array and two mixed tables (categorical, bool, integer
and real columns, one with missing cells), each as a model file, an encoded file and the original data.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skvae.coding import BitsBackCoder
from skvae.coding._container import parse, write_chunk, write_preamble, write_trailer
from skvae.coding._fixed_point import ARITHMETIC_VERSION

DATA = os.path.join(os.path.dirname(__file__), "data", "arithmetic_v1")
CASES = ("binary", "table", "table_missing")


def path(name):
    return os.path.join(DATA, name)


def original(case):
    if case == "binary":
        return np.load(path("binary.npy"))
    with open(path(f"{case}.dtypes.json")) as f:
        spec = json.load(f)
    dtypes = {c: ("object" if d == "category" else d) for c, d in spec["dtypes"].items()}
    table = pd.read_csv(path(f"{case}.csv"), dtype=dtypes)
    for column, categories in spec["categories"].items():
        table[column] = pd.Categorical(table[column], categories=categories)
    return table


def assert_same(decoded, expected):
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(decoded, expected, check_exact=True)
    else:
        assert decoded.dtype == expected.dtype and np.array_equal(decoded, expected)


def read(case):
    with open(path(f"{case}.bb"), "rb") as f:
        return f.read()


def rewrite_arithmetic(data, version):
    """The file with its header's arithmetic version replaced (chunks, trailer and CRCs rewritten)."""
    import io

    header, chunks, digest = parse(data)
    header["arithmetic"] = version
    out = io.BytesIO()
    write_preamble(out, header)
    for chunk in chunks:
        write_chunk(out, chunk.n_rows, chunk.words, chunk.ramp, chunk.rows_crc)
    write_trailer(out, digest)
    return out.getvalue()


@pytest.mark.parametrize("case", CASES)
def test_version_1_files_decode_exactly_with_their_version_1_model_files(case):
    data = read(case)
    assert parse(data)[0]["arithmetic"] == 1
    coder = BitsBackCoder.load(path(f"{case}.model.npz"))
    assert coder.model_.arithmetic_version == 1
    assert_same(coder.decode(data), original(case))


@pytest.mark.parametrize("case", CASES)
def test_re_encoding_with_a_version_1_model_writes_version_2_and_round_trips(case, tmp_path):
    coder = BitsBackCoder.load(path(f"{case}.model.npz"))
    X = coder.decode(read(case))
    data = coder.encode(X)
    assert parse(data)[0]["arithmetic"] == ARITHMETIC_VERSION == 2
    assert_same(coder.decode(data), X)
    # the model file saved again keeps its version (its weights were quantized for it) and its fingerprint
    coder.save(tmp_path / "again.npz")
    again = BitsBackCoder.load(tmp_path / "again.npz")
    assert again.model_.arithmetic_version == 1 and again.fingerprint_ == coder.fingerprint_
    assert_same(again.decode(read(case)), original(case))
    assert_same(again.decode(data), X)


def test_a_version_1_file_is_refused_clearly_by_a_version_2_model():
    coder = BitsBackCoder.load(path("binary.model.npz"))
    X = original("binary")
    from skvae.coding._fixed_point import PortableModel

    current = PortableModel.from_arrays({**coder.model_.config(), "arithmetic_version": 2}, coder.model_.arrays())
    coder.model_, coder.fingerprint_ = current, current.fingerprint()
    assert_same(coder.decode(coder.encode(X)), X)
    with pytest.raises(ValueError, match="arithmetic version 1, written by a model of that version.*"
                                         "model file saved by the coder that wrote it"):
        coder.decode(read("binary"))


@pytest.mark.parametrize("version", [0, 3, "1", True, None])
def test_other_arithmetic_versions_are_refused(version):
    coder = BitsBackCoder.load(path("table.model.npz"))
    data = rewrite_arithmetic(read("table"), version)
    message = "header fields are missing" if version is None else f"arithmetic version {version!r}"
    with pytest.raises(ValueError, match=message):
        coder.decode(data)


def test_a_model_file_of_version_3_is_refused(tmp_path):
    from skvae.coding import _model_file

    model, params, quantization, schema, names = _model_file.read_model_file(path("binary.model.npz"))
    model.arithmetic_version = 3
    _model_file.write_model_file(tmp_path / "v3.npz", model, params, quantization, schema, names)
    with pytest.raises(ValueError, match="arithmetic version 3"):
        BitsBackCoder.load(tmp_path / "v3.npz")


def test_version_1_files_decode_under_mkl_cbwr_compatible():
    code = ("import sys; sys.path.insert(0, %r); import test_arithmetic_versions as t\n"
            "for case in t.CASES:\n"
            "    t.test_version_1_files_decode_exactly_with_their_version_1_model_files(case)\n"
            "print('ok')" % os.path.dirname(__file__))
    env = {**os.environ, "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
