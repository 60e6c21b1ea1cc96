"""BitsBackCoder codes HierarchicalVAE (ladder) models: exact round trips, rate, portability, file kinds."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skvae import HierarchicalVAE, VAEDensityEstimator
from skvae.coding import BitsBackCoder
from skvae.coding._ladder import PortableLadder

from _helpers import BLOCK_TORCH, mixed_table, rewrite_header, with_holes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ladder(nltcs):
    """A fitted 3-layer ladder on nltcs, its coder (several chunks) and test rows."""
    train, test = nltcs
    model = HierarchicalVAE(latent_dims=(8, 4, 2), hidden_layer_sizes=(64,), ladder_hidden_sizes=(32,),
                            max_epochs=12, warmup_epochs=4, random_state=0).fit(train[:6000])
    return model, BitsBackCoder(model, chunk_size=300, block_size=64).fit(), test[:900]


@pytest.fixture(scope="module")
def encoded(ladder):
    _, coder, X = ladder
    return coder.encode(X)


def test_round_trip_is_exact(ladder, encoded):
    _, coder, X = ladder
    assert isinstance(coder.model_, PortableLadder) and coder.model_.latent_dims == [8, 4, 2]
    Y = coder.decode(encoded)
    assert Y.dtype == X.dtype and Y.shape == X.shape and np.array_equal(X, Y)


def test_rate_is_close_to_the_ladder_negative_elbo(ladder, encoded):
    model, coder, X = ladder
    report = coder.report(X)
    assert report.total_bits == 8 * len(encoded)
    neg_elbo_bits = -model.score_samples(X).sum() / math.log(2)
    # the float model's -ELBO (report: 16 draws a row) and the estimator's score agree
    assert report.negative_elbo_bits == pytest.approx(neg_elbo_bits, rel=0.03)
    # the ANS streams cost the discretized -ELBO plus the start-up cost of three chunks
    assert 0 < report.overhead_bits < 0.03 * report.payload_bits
    assert report.payload_bits == pytest.approx(report.negative_elbo_bits + report.overhead_bits, rel=0.03)
    assert report.payload_bits == pytest.approx(neg_elbo_bits, rel=0.05)
    assert report.n_particles == 1 and report.single_particle_rows == 0


def test_the_upper_layers_carry_bits(ladder):
    """The ladder is coded as a ladder: every layer's code changes when its top-down prior changes."""
    model, coder, X = ladder
    rates = model.elbo_components(X).rates.mean(0)
    assert (rates > 0.05).all()  # no collapsed layer: each one's conditional enters the code
    a, b = coder.model_.bottom_up(X[:5].astype(np.float64))[2], coder.model_.prior(0, np.zeros(20), 5)
    assert a[0].shape == (5, 2) and b[0].shape == (5, 8)


def test_the_same_bytes_with_any_n_jobs(ladder, encoded):
    _, coder, X = ladder
    parallel = BitsBackCoder(coder.estimator_, chunk_size=300, block_size=64, n_jobs=2).fit()
    assert parallel.encode(X) == encoded
    assert np.array_equal(parallel.decode(encoded), X)


def test_model_file_round_trip(ladder, encoded, tmp_path):
    _, coder, X = ladder
    coder.save(tmp_path / "ladder.npz")
    loaded = BitsBackCoder.load(tmp_path / "ladder.npz")
    assert isinstance(loaded.model_, PortableLadder) and loaded.fingerprint_ == coder.fingerprint_
    assert np.array_equal(loaded.decode(encoded), X)
    assert loaded.encode(X) == encoded
    with np.load(tmp_path / "ladder.npz", allow_pickle=False) as archive:
        config = json.loads(archive["config"].tobytes())
    assert config["model"]["kind"] == "ladder"


_DECODE_SCRIPT = BLOCK_TORCH + """
import numpy as np
from skvae.coding import BitsBackCoder
folder = sys.argv[1]
coder = BitsBackCoder.load(os.path.join(folder, "ladder.npz"))
data = open(os.path.join(folder, "ladder.bb"), "rb").read()
out = coder.decode(data)
assert coder.encode(out) == data, "re-encoding gave other bytes"
np.save(os.path.join(folder, "decoded.npy"), out)
if os.environ.get("SKVAE_TEST_BLOCK_TORCH"):
    assert not [m for m in sys.modules if m.startswith(("torch", "skorch"))]
"""


@pytest.mark.parametrize("environment", [{"MKL_CBWR": "COMPATIBLE"}, {"SKVAE_TEST_BLOCK_TORCH": "1"},
                                         {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}],
                         ids=["MKL_CBWR=COMPATIBLE", "without torch", "two threads"])
def test_files_decode_exactly_in_other_environments(ladder, encoded, tmp_path, environment):
    _, coder, X = ladder
    coder.save(tmp_path / "ladder.npz")
    (tmp_path / "ladder.bb").write_bytes(encoded)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKL_", "OPENBLAS_", "ATEN_"))}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(environment, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, str(tmp_path)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(tmp_path / "decoded.npy")
    assert got.dtype == X.dtype and np.array_equal(got, X)


def test_the_header_records_the_model_kind(ladder, encoded, nltcs):
    _, coder, X = ladder
    train, _ = nltcs
    single = BitsBackCoder(VAEDensityEstimator(latent_dim=4, hidden_layer_sizes=(16,), max_epochs=1,
                                               random_state=0)).fit(train[:500])
    flat = single.encode(X[:50])
    assert b'"h"' not in flat[:200]  # a single-layer file has no kind field (its bytes are unchanged)
    with pytest.raises(ValueError, match="hierarchical"):
        single.decode(encoded)
    with pytest.raises(ValueError, match="single-layer"):
        coder.decode(flat)
    for forged, target in ((rewrite_header(encoded, model_kind=None), coder),
                           (rewrite_header(flat, model_kind="ladder"), single)):
        with pytest.raises(ValueError, match="encoded with"):
            target.decode(forged)
    for bad in ("bitswap", 3, ["ladder"], {"a": 1}):
        with pytest.raises(ValueError, match="bad model kind"):
            coder.decode(rewrite_header(encoded, model_kind=bad))


def test_damaged_ladder_model_files_raise_value_errors(ladder, tmp_path):
    _, coder, _ = ladder
    coder.save(tmp_path / "ladder.npz")
    with np.load(tmp_path / "ladder.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(arrays["config"].tobytes())
    edits = {
        "missing array": lambda a, c: a.pop("top_down.1.0.weight"),
        "bad kind": lambda a, c: c["model"].update(kind="bitswap"),
        "bad shifts": lambda a, c: c["model"].update(shifts=[1, 2]),
        "wrong width": lambda a, c: c["model"].update(latent_dims=[8, 4, 3]),
        "lost layer": lambda a, c: c["model"]["shifts"]["top_down"][0].pop(),
    }
    for name, edit in edits.items():
        a, c = dict(arrays), json.loads(json.dumps(config))
        edit(a, c)
        a["config"] = np.frombuffer(json.dumps(c, sort_keys=True).encode(), dtype=np.uint8)
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        np.savez(path, **a)
        with pytest.raises(ValueError):
            BitsBackCoder.load(path)


def test_more_than_one_particle_is_refused(ladder, tmp_path):
    model, coder, X = ladder
    with pytest.raises(ValueError, match="n_particles.*n_particles=1"):
        BitsBackCoder(model, n_particles=4).fit()
    other = BitsBackCoder(model).fit().set_params(n_particles=2)
    with pytest.raises(ValueError, match="n_particles"):
        other.encode(X[:10])


def test_tables_code_through_a_ladder():
    model = HierarchicalVAE(latent_dims=(4, 2), hidden_layer_sizes=(32,), max_epochs=4,
                            random_state=0).fit(mixed_table(400, 0))
    coder = BitsBackCoder(model, quantization={"size": 0.01}, chunk_size=120).fit()
    X = mixed_table(200, 1)
    pd.testing.assert_frame_equal(coder.decode(coder.encode(X)), X, check_exact=True)
    holes = HierarchicalVAE(latent_dims=(4, 2), hidden_layer_sizes=(32,), max_epochs=4, random_state=0)
    holes.fit(with_holes(mixed_table(400, 0).convert_dtypes(), 0.15, 0))  # the bottom-up path reads the mask
    coder = BitsBackCoder(holes, chunk_size=120).fit()
    X = with_holes(mixed_table(200, 1).convert_dtypes(), 0.2, 1)
    pd.testing.assert_frame_equal(coder.decode(coder.encode(X)), X, check_exact=True)


def test_one_layer_and_no_hidden_layers(nltcs):
    train, test = nltcs
    for dims, hidden, ladder_sizes in (((5,), (16,), None), ((4, 3), (), ())):
        model = HierarchicalVAE(latent_dims=dims, hidden_layer_sizes=hidden, ladder_hidden_sizes=ladder_sizes,
                                max_epochs=2, random_state=0).fit(train[:1000])
        coder = BitsBackCoder(model, chunk_size=100).fit()
        data = coder.encode(test[:250])
        assert np.array_equal(coder.decode(data), test[:250])


def test_a_lower_layer_far_from_the_standard_normal_costs_its_elbo(ladder):
    """z_1 follows its top-down prior, not N(0, I): the same model with z_1 shifted by +10 codes as well."""
    import copy

    import torch

    model, _, X = ladder
    shifted = copy.deepcopy(model)
    module = shifted.net_.module_
    d = module.latent_dims[0]
    with torch.no_grad():  # q and p of z_1 move by +10, the decoder's first layer takes it back
        module.top_down[0][-1].bias[:d] += 10.0
        module.heads[0].bias[:d] += 10.0
        first = module.decoder.net[0]
        first.bias -= 10.0 * first.weight.sum(1)
    assert shifted.score_samples(X).mean() == pytest.approx(model.score_samples(X).mean(), rel=1e-3)
    assert shifted.transform(X)[:, :d].mean() > 8
    report = BitsBackCoder(shifted, chunk_size=300, block_size=64).fit().report(X)
    assert report.payload_bits == pytest.approx(report.negative_elbo_bits + report.overhead_bits, rel=0.03)
