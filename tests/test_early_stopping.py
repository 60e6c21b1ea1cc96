"""early_stopping / validation_fraction / n_iter_no_change / tol on every estimator."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skvae import ReverseHalfAsleep, VAEDensityEstimator, WSAVAE

FAST = dict(latent_dim=8, hidden_layer_sizes=(64,), batch_size=50, random_state=0)


@pytest.fixture(scope="module")
def rows(data_home):
    from skvae.datasets import load_debd

    dna = load_debd("dna", data_home=data_home, download_if_missing=False)
    return dna.train[:300], dna.test[:300]


class _CountRows(Callback):
    def initialize(self):
        self.per_epoch = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.per_epoch.append(0)

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.per_epoch[-1] += len(batch)


def test_stops_when_the_held_out_elbo_stalls_and_keeps_the_best_weights(rows):
    X, _ = rows
    counter = _CountRows()
    vae = VAEDensityEstimator(**FAST, max_epochs=300, early_stopping=True, n_iter_no_change=5,
                              callbacks=[counter]).fit(X)
    valid = vae.history_[:, "valid_elbo"]
    best = int(np.argmax(valid))
    assert len(valid) < 300 and len(valid) == best + 1 + 5  # five epochs without improvement after the best
    assert vae.best_validation_score_ == valid[best]
    _, train_index, valid_index = vae._validation_split_
    assert len(valid_index) == 30 and not set(train_index) & set(valid_index)
    assert set(counter.per_epoch) == {270}  # the held-out rows are never trained on
    # the restored weights are the best epoch's: the held-out score is that epoch's again
    assert vae.score(X[valid_index]) == pytest.approx(valid[best], abs=1e-9)


def test_early_stopping_is_deterministic_and_off_by_default(rows):
    X, test = rows
    fit = lambda **kw: VAEDensityEstimator(**FAST, max_epochs=60, n_iter_no_change=3, **kw).fit(X)
    a, b = fit(early_stopping=True), fit(early_stopping=True)
    assert np.array_equal(a.score_samples(test), b.score_samples(test))
    plain = fit()
    assert len(plain.history_) == 60 and "valid_elbo" not in plain.history_[-1]
    assert not hasattr(plain, "best_validation_score_")


def test_partial_fit_trains_on_every_row(rows):
    X, _ = rows
    counter = _CountRows()
    vae = VAEDensityEstimator(**FAST, early_stopping=True, callbacks=[counter])
    vae.partial_fit(X).partial_fit(X)
    assert counter.per_epoch == [300, 300]


def test_grid_search_with_early_stopping(rows):
    X, _ = rows
    search = GridSearchCV(VAEDensityEstimator(**FAST, max_epochs=40, early_stopping=True, n_iter_no_change=3),
                          {"lr": [1e-3, 3e-3]}, cv=2).fit(X)
    assert search.best_params_["lr"] in (1e-3, 3e-3) and np.isfinite(search.best_score_)


def test_wsa_counts_only_after_the_warm_up(rows):
    X, _ = rows
    wsa = WSAVAE(**FAST, max_epochs=40, warmup_epochs=6, early_stopping=True, n_iter_no_change=1,
                 tol=1e9).fit(X)  # no epoch can improve by 1e9 nats: stop at the first counted chance
    assert len(wsa.history_) == 8  # epochs 1-6 warm up, epoch 7 sets the best, epoch 8 fails to beat it


def test_wsa_early_stops_by_default_with_patience_30(rows):
    """WSAVAE() holds out 10 % of the rows and stops 30 counted epochs after its best (issue 17's default)."""
    X, _ = rows
    counter = _CountRows()
    wsa = WSAVAE(**FAST, warmup_epochs=2, tol=1e9, callbacks=[counter]).fit(X)  # only epoch 3 can set a best
    assert len(wsa.history_) == 2 + 1 + 30 < wsa.max_epochs
    assert set(counter.per_epoch) == {270}  # 30 of the 300 rows held out in every epoch
    assert wsa.best_validation_score_ == wsa.history_[2, "valid_elbo"]


def test_rha_encoder_only_phase_is_not_cut_short(rows):
    X, _ = rows
    rha = ReverseHalfAsleep(**FAST, mode="post_hoc", max_epochs=3, rha_epochs=4, early_stopping=True,
                            n_iter_no_change=1, tol=1e9).fit(X)
    phases = list(rha.history_[:, "phase"])
    assert phases == ["vae", "vae", "rha", "rha", "rha", "rha"]  # the VAE stage stopped early, then 4 RHA epochs


@pytest.mark.parametrize("param, value, error", [("validation_fraction", 0.0, ValueError),
                                                 ("validation_fraction", 1.0, ValueError),
                                                 ("n_iter_no_change", 0, ValueError), ("tol", -1.0, ValueError),
                                                 ("early_stopping", "yes", TypeError)])
def test_bad_early_stopping_parameters(rows, param, value, error):
    kwargs = {"early_stopping": True, param: value}
    with pytest.raises(error, match=param):
        VAEDensityEstimator(**FAST, max_epochs=1, **kwargs).fit(rows[0])


def test_too_few_rows_to_hold_out_some(rows):
    with pytest.raises(ValueError, match="leaves no rows to train"):
        VAEDensityEstimator(**FAST, max_epochs=1, early_stopping=True, validation_fraction=0.5).fit(rows[0][:1])
