"""The command line on tables: a CSV with a header in the model's column types, integer arrays keep their dtype."""

import numpy as np
import pandas as pd
import pytest

from skvae import VAEDensityEstimator
from skvae.cli import main
from skvae.coding import BitsBackCoder

from _helpers import mixed_table

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "table.npz"
    BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(mixed_table(150, 0)).save(path)
    return path


def test_a_csv_with_a_header_round_trips_in_the_models_types(table_model, tmp_path):
    df = mixed_table(40, 1)
    df.to_csv(tmp_path / "t.csv", index=False)
    assert main(["compress", str(table_model), str(tmp_path / "t.csv"), str(tmp_path / "t.bb")]) == 0
    assert main(["decompress", str(table_model), str(tmp_path / "t.bb"), str(tmp_path / "back.csv")]) == 0
    assert (tmp_path / "back.csv").read_text() == (tmp_path / "t.csv").read_text()
    back = BitsBackCoder.load(table_model).decode((tmp_path / "t.bb").read_bytes())
    pd.testing.assert_frame_equal(back, df)


def test_a_csv_with_other_columns_or_unreadable_values_is_refused(table_model, tmp_path, capsys):
    df = mixed_table(10, 1)
    df.rename(columns={"size": "weight"}).to_csv(tmp_path / "renamed.csv", index=False)
    assert main(["compress", str(table_model), str(tmp_path / "renamed.csv"), str(tmp_path / "x.bb")]) == 1
    assert "has the columns ['color', 'count', 'flag', 'weight']" in capsys.readouterr().err
    df.assign(count=["many"] + list(df["count"][1:])).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["compress", str(table_model), str(tmp_path / "bad.csv"), str(tmp_path / "x.bb")]) == 1
    assert "column 'count'" in capsys.readouterr().err
    assert not (tmp_path / "x.bb").exists()


def test_a_table_is_not_written_to_npy(table_model, tmp_path, capsys):
    mixed_table(10, 1).to_csv(tmp_path / "t.csv", index=False)
    assert main(["compress", str(table_model), str(tmp_path / "t.csv"), str(tmp_path / "t.bb")]) == 0
    assert main(["decompress", str(table_model), str(tmp_path / "t.bb"), str(tmp_path / "t.npy")]) == 1
    assert "write it to a .csv file" in capsys.readouterr().err


def test_an_int64_npy_decompresses_to_int64(tmp_path):
    X = np.random.RandomState(0).poisson(3, (100, 5)).astype(np.int64)  # not 0/1: the table path
    BitsBackCoder(VAEDensityEstimator(**SMALL)).fit(X).save(tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", X)
    assert main(["compress", str(tmp_path / "m.npz"), str(tmp_path / "x.npy"), str(tmp_path / "x.bb")]) == 0
    assert main(["decompress", str(tmp_path / "m.npz"), str(tmp_path / "x.bb"), str(tmp_path / "y.npy")]) == 0
    Y = np.load(tmp_path / "y.npy")
    assert Y.dtype == np.int64 and np.array_equal(Y, X)
    np.savetxt(tmp_path / "x.csv", X, fmt="%d", delimiter=",")  # headerless text takes the model's dtype
    assert main(["compress", str(tmp_path / "m.npz"), str(tmp_path / "x.csv"), str(tmp_path / "c.bb")]) == 0
    assert BitsBackCoder.load(tmp_path / "m.npz").decode((tmp_path / "c.bb").read_bytes()).dtype == np.int64
