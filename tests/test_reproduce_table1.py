"""Smoke tests of benchmarks/reproduce_table1.py: resume, selection on valid, time limit."""

import importlib
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.utils import Bunch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

TINY = ["--methods", "vanilla,dropout,air,rha,wsa", "--checkpoints", "2,4", "--every", "1",
        "--select-epoch", "2", "--warmup", "1", "--grids", '{"dropout": [0.1, 0.3], "air": [0.1, 0.8]}',
        "--setting", '{"hidden_layer_sizes": [8], "latent_dim": 2, "batch_size": 50}']
# Columns that depend on the clock, not on the computation.
CLOCK = {"s_per_epoch", "train_s_total", "eval_s", "encode_s", "decode_s", "finished_utc", "command"}


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("reproduce_table1")
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def data(nltcs):
    train, test = nltcs
    return Bunch(train=train[:200], valid=train[200:300], test=test[:100])


def _run(script, data, folder, *extra):
    argv = ["run", *TINY, "--results-dir", str(folder / "results"), "--checkpoint-dir", str(folder / "ckpt"),
            *extra]
    return script.main(argv, data=data)


def _rows(script, folder, name):
    rows = script.read_rows(folder / "results" / name)
    return sorted(({k: v for k, v in r.items() if k not in CLOCK} for r in rows),
                  key=lambda r: (r["run"], int(r["epoch"])))


def _drop_epoch(script, path, epoch):
    """Remove the rows of ``epoch`` from a results CSV, as a process killed before writing them would."""
    kept = [r for r in script.read_rows(path) if int(r["epoch"]) != epoch]
    path.unlink()
    for r in kept:
        script.append_row(path, r)


def _weights(folder, run):
    return joblib.load(folder / "ckpt" / f"{run}.joblib")["estimator"].net_.module_.state_dict()


def test_resumed_run_equals_uninterrupted_run(script, data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(script, data, a, "--seeds", "0", "--horizon", "2") is False  # stopped at epoch 2
    first = _rows(script, a, "table1.csv")
    assert {int(r["epoch"]) for r in first} == {2}
    assert _run(script, data, a, "--seeds", "0") is True  # resumed from the saved estimators to 4
    assert _run(script, data, b, "--seeds", "0") is True  # one uninterrupted invocation

    table_a, table_b = _rows(script, a, "table1.csv"), _rows(script, b, "table1.csv")
    assert table_a == table_b
    assert {int(r["epoch"]) for r in table_a} == {2, 4}
    assert all(r["round_trip"] == "True" for r in table_a)
    assert all(float(r["test_bpd_bitsback"]) > 0 for r in table_a)
    # every checkpoint is also coded with coarser pixel probabilities
    precision = _rows(script, a, "table1_precision.csv")
    assert [(r["run"], r["epoch"]) for r in precision] == [(r["run"], r["epoch"]) for r in table_a]
    assert precision == _rows(script, b, "table1_precision.csv")
    assert all(float(r[f"file_bpd_precision_{p}"]) > 0 for r in precision for p in script.PRECISIONS)
    assert _rows(script, a, "table1_curves.csv") == _rows(script, b, "table1_curves.csv")
    for run in ("vanilla_s0", "rha_s0", "wsa_s0"):
        wa, wb = _weights(a, run), _weights(b, run)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)

    # a finished experiment is not trained again
    before = (a / "ckpt" / "wsa_s0.joblib").stat().st_mtime_ns
    assert _run(script, data, a, "--seeds", "0") is True
    assert (a / "ckpt" / "wsa_s0.joblib").stat().st_mtime_ns == before
    assert _rows(script, a, "table1.csv") == table_a


@pytest.mark.parametrize("method", ["vanilla", "rha", "wsa"])
def test_staged_and_reloaded_training_equals_one_fit(script, data, tmp_path, method):
    # the script trains in stages of one epoch and reloads the joblib checkpoint at each level
    _run(script, data, tmp_path, "--seeds", "0", "--methods", method)
    staged = joblib.load(tmp_path / "ckpt" / f"{method}_s0.joblib")["estimator"]
    proto = script.protocol(script.parse_args(["run", *TINY]))
    plain = script.make_estimator(method, None, 0, proto).set_params(max_epochs=4, warm_start=False)
    plain.fit(data.train)
    a, b = staged.net_.module_.state_dict(), plain.net_.module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    if method == "wsa":  # warm-up counted across stages: WSA epochs ran after epoch 1 only
        assert [bool(np.isfinite(row["weight_mean"])) for row in staged.history_] == [False, True, True, True]
        assert np.allclose(staged.history_[:, "train_loss"], plain.history_[:, "train_loss"])


def test_rows_lost_by_a_killed_process_are_recomputed(script, data, tmp_path):
    _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla")
    full = _rows(script, tmp_path, "table1.csv")
    _drop_epoch(script, tmp_path / "results" / "table1.csv", 4)
    _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla")
    assert _rows(script, tmp_path, "table1.csv") == full


def test_choice_on_valid_is_used_for_every_seed(script, data, tmp_path):
    assert _run(script, data, tmp_path, "--seeds", "0,1", "--methods", "dropout,air") is True
    selection = script.read_rows(tmp_path / "results" / "table1_selection.csv")
    for method in ("dropout", "air"):
        rows = [r for r in selection if r["method"] == method]
        assert len(rows) == 2 and sum(r["chosen"] == "True" for r in rows) == 1
        best = max(rows, key=lambda r: -float(r["valid_bpd_elbo"]))
        assert best["chosen"] == "True"
        p = float(best["param"])
        seed1 = sorted(f.name for f in (tmp_path / "ckpt").glob(f"{method}_*_s1.joblib"))
        assert seed1 == [f"{script.run_name(method, p, 1)}.joblib"]  # only the chosen p/rho for other seeds
        table = script.read_rows(tmp_path / "results" / "table1.csv")
        assert {(float(r["param"]), int(r["epoch"])) for r in table
                if r["method"] == method and r["seed"] == "1"} == {(p, 2), (p, 4)}
    # the chosen dropout run is also scored with its dropout layers left on, at every checkpoint
    on = script.read_rows(tmp_path / "results" / "table1_dropout_on.csv")
    p = next(float(r["param"]) for r in selection if r["method"] == "dropout" and r["chosen"] == "True")
    assert {(r["seed"], int(r["epoch"])) for r in on if float(r["param"]) == p} == {
        (s, e) for s in ("0", "1") for e in (2, 4)}
    assert all(float(r["test_bpd_elbo_dropout_on"]) != float(r["test_bpd_elbo"]) for r in on)
    text = (tmp_path / "results" / "table1.md").read_text()
    assert "Status: COMPLETE" in text and "chose p and ρ on the test set" in text
    assert "dropout left on" in text
    assert "| 4 | Dropout | " in text  # the table of files with coarser pixel probabilities


def test_time_limit_and_protocol_change(script, data, tmp_path):
    assert _run(script, data, tmp_path, "--seeds", "0", "--max-minutes", "0") is False
    assert not list((tmp_path / "ckpt").glob("*.joblib"))
    assert "Status: PARTIAL" in (tmp_path / "results" / "table1.md").read_text()
    _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla", "--horizon", "1")
    with pytest.raises(ValueError, match="different protocol"):
        _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla", "--every", "2")
    assert np.isfinite(float(script.read_rows(tmp_path / "results" / "table1_curves.csv")[0]["test_bpd_elbo"]))


@pytest.mark.parametrize("variant, base", [("wsa_batch_mean", "WeightedSelfAugmentation"),
                                           ("wsa_small_disc", "WeightedSelfAugmentation"),
                                           ("wsa_default", "WeightedSelfAugmentation"),
                                           ("vanilla_train_valid", "VAEDensityEstimator")])
def test_variants_are_their_base_with_their_parameters(script, data, variant, base):
    proto = {"setting": {"latent_dim": 2, "hidden_layer_sizes": (8,)}, "warmup": 3}
    est = script.make_estimator(variant, None, 0, proto)
    params = est.get_params()
    assert type(est).__name__ == base
    assert base != "WeightedSelfAugmentation" or params["warmup_epochs"] == 3
    for name, value in script.VARIANTS[variant].params.items():
        assert params[name] == value
    assert variant in script.LABELS
    splits = script.VARIANTS[variant].fit_on
    assert len(script.fit_rows(data, variant)) == sum(len(getattr(data, s)) for s in splits)


def test_train_valid_variant_trains_on_both_splits(script, data, tmp_path):
    _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla,vanilla_train_valid")
    proto = script.protocol(script.parse_args(["run", *TINY]))
    plain = script.make_estimator("vanilla", None, 0, proto).set_params(max_epochs=4, warm_start=False)
    plain.fit(np.vstack([data.train, data.valid]))
    staged = joblib.load(tmp_path / "ckpt" / "vanilla_train_valid_s0.joblib")["estimator"]
    a, b = staged.net_.module_.state_dict(), plain.net_.module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    text = (tmp_path / "results" / "table1.md").read_text()
    assert "Vanilla (train+valid)" in text


def test_a_run_held_by_another_invocation_is_skipped(script, data, tmp_path):
    import fcntl

    (tmp_path / "ckpt").mkdir()
    with open(tmp_path / "ckpt" / "vanilla_s0.lock", "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla,rha") is False
        assert not (tmp_path / "ckpt" / "vanilla_s0.joblib").exists()
        assert (tmp_path / "ckpt" / "rha_s0.joblib").exists()  # the other runs went on
    assert _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla,rha") is True
    assert joblib.load(tmp_path / "ckpt" / "vanilla_s0.joblib")["epoch"] == 4


def test_lost_checkpoints_retrain_only_what_is_not_recorded(script, data, tmp_path):
    import shutil

    assert _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla") is True
    full = _rows(script, tmp_path, "table1.csv")
    shutil.rmtree(tmp_path / "ckpt")  # results committed, checkpoints left on another machine
    assert _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla") is True
    assert not list((tmp_path / "ckpt").glob("*.joblib"))  # nothing retrained
    # the last checkpoint's rows lost too: the run is retrained from scratch and gives the same rows
    for name in ("table1.csv", "table1_curves.csv"):
        _drop_epoch(script, tmp_path / "results" / name, 4)
    assert _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla") is True
    assert joblib.load(tmp_path / "ckpt" / "vanilla_s0.joblib")["epoch"] == 4
    assert _rows(script, tmp_path, "table1.csv") == full


def test_report_of_a_partial_invocation_keeps_every_recorded_column(script, data, tmp_path):
    _run(script, data, tmp_path, "--seeds", "0", "--methods", "vanilla,wsa_small_disc")
    _run(script, data, tmp_path, "--seeds", "1", "--methods", "vanilla")  # trains and reports vanilla only
    text = (tmp_path / "results" / "table1.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| epochs | quantity"))
    assert "Vanilla" in header and script.LABELS["wsa_small_disc"] in header
    assert "Vanilla: seed 0: epochs 0..4, seed 1: epochs 0..4" in text


def test_wsa_is_the_old_default_and_wsa_default_is_todays(script):
    """Method "wsa" keeps the old default its recorded rows were trained with; "wsa_default" is WSAVAE()."""
    from skvae.wsa import WSAVAE

    proto = {"setting": {"latent_dim": 2, "hidden_layer_sizes": (8,)}, "warmup": 3}
    old = script.make_estimator("wsa", None, 0, proto).get_params()
    for name, value in script.OLD_WSA_DEFAULT.items():
        assert old[name] == value
    new = script.make_estimator("wsa_default", None, 0, proto).get_params()
    today = WSAVAE().get_params()
    for name in script.OLD_WSA_DEFAULT:
        assert new[name] == today[name]
    assert new["warmup_epochs"] == 3 and "new default" in script.LABELS["wsa_default"]
    assert "old default" in script.LABELS["wsa"]
