import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skvae import ELBOMonitor, VAEDensityEstimator  # noqa: E402
from skvae.plotting import (  # noqa: E402
    plot_gap_decomposition,
    plot_learning_curves,
    plot_rate_distortion,
    plot_weighted_samples,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    X = np.random.RandomState(0).binomial(1, 0.3, size=(120, 8))
    a = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=6, random_state=0,
                            callbacks=[ELBOMonitor(X[60:], every=2)]).fit(X[:60])
    b = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=4, random_state=1,
                            callbacks=[ELBOMonitor(X[60:], every=1), ELBOMonitor(X[:60], name="train")]
                            ).fit(X[:60])
    return a, b


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return line


def test_learning_curves_plot_the_history(fitted):
    a, b = fitted
    ax = plot_learning_curves([a, b], labels=["a", "b"], best_elbo=-3.0)
    # a: train from -train_loss at every epoch, held-out every 2nd epoch.
    train_a = _line(ax, "a train")
    np.testing.assert_array_equal(train_a.get_xdata(), np.arange(1, 7))
    np.testing.assert_allclose(train_a.get_ydata(), -np.asarray(a.history_[:, "train_loss"]))
    test_a = _line(ax, "a held-out")
    np.testing.assert_array_equal(test_a.get_xdata(), [2, 4, 6])
    np.testing.assert_allclose(test_a.get_ydata(), a.history_[:, "test_elbo"])
    # b recorded a train ELBO: 'auto' prefers it over the training loss.
    np.testing.assert_allclose(_line(ax, "b train").get_ydata(), b.history_[:, "train_elbo"])
    assert _line(ax, "best possible").get_ydata()[0] == -3.0
    assert ax.get_xlabel() == "epoch"


def test_learning_curves_options_and_errors(fitted):
    a, b = fitted
    ax = plot_learning_curves(b, train="train_loss")
    np.testing.assert_allclose(_line(ax, "VAEDensityEstimator train").get_ydata(),
                               -np.asarray(b.history_[:, "train_loss"]))
    ax = plot_learning_curves(a, train=None)
    assert [ln.get_label() for ln in ax.get_lines()] == ["VAEDensityEstimator held-out"]
    fig, given = plt.subplots()
    assert plot_learning_curves(a, ax=given) is given
    with pytest.raises(ValueError, match="labels"):
        plot_learning_curves([a, b], labels=["only one"])
    with pytest.raises(ValueError, match="not fitted"):
        plot_learning_curves(VAEDensityEstimator())
    with pytest.raises(ValueError, match="train"):
        plot_learning_curves(a, train="loss")
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curves([])


def test_gap_decomposition_from_bunches_and_dict():
    from sklearn.utils import Bunch

    gaps = [Bunch(egg=1.0, aigg=0.7, gmgg=0.3, egg_bpd=0.1, aigg_bpd=0.07, gmgg_bpd=0.03),
            Bunch(egg=2.0, aigg=1.5, gmgg=0.5, egg_bpd=0.2, aigg_bpd=0.15, gmgg_bpd=0.05)]
    ax = plot_gap_decomposition([10, 20], gaps)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 3 and labels[1].startswith("AIGG")
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.7, 1.5])
    ax = plot_gap_decomposition([10, 20], gaps, units="bpd")
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), [0.03, 0.05])
    assert "bits" in ax.get_ylabel()
    with pytest.raises(ValueError, match="units"):
        plot_gap_decomposition([10, 20], gaps, units="bits")
    with pytest.raises(ValueError, match="steps"):
        plot_gap_decomposition([10], gaps)


def test_rate_distortion_plot():
    from sklearn.utils import Bunch

    results = [Bunch(rate=np.array([1.0, 3.0]), distortion=np.array([10.0, 20.0]), mutual_information=1.5),
               Bunch(rate=np.array([2.0, 4.0]), distortion=np.array([8.0, 10.0]), mutual_information=2.5)]
    ax = plot_rate_distortion([5, 10], results, labels="vae")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [2.0, 3.0])  # mean rate
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [1.5, 2.5])
    np.testing.assert_allclose(ax.right_ax_.get_lines()[0].get_ydata(), [15.0, 9.0])
    assert len(ax.get_legend().get_texts()) == 3
    # Drawing a second method on the same axes reuses the twin axis.
    same = plot_rate_distortion([5, 10], results, labels="other", ax=ax)
    assert same is ax and len(ax.right_ax_.get_lines()) == 2
    with pytest.raises(KeyError):
        plot_rate_distortion([5, 10], {"rate": [1, 2]})


def test_weighted_samples_grid():
    X = np.zeros((5, 6))
    X[np.arange(5), np.arange(5)] = 1
    weights = np.array([0.5, 3.0, 1.0, 0.1, 2.0])
    fig = plot_weighted_samples(X, weights, shape=(2, 3), n_cols=2)
    assert len(fig.axes) == 5
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["w=3", "w=2", "w=1", "w=0.5", "w=0.1"]
    # The highest weight (row 1) comes first, reshaped in C order.
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), X[1].reshape(2, 3))
    fig = plot_weighted_samples(X, weights, shape=(2, 3), sort=False, order="F")
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), X[0].reshape((2, 3), order="F"))
    with pytest.raises(ValueError, match="shape"):
        plot_weighted_samples(X, weights, shape=(4, 4))
    with pytest.raises(ValueError, match="weights"):
        plot_weighted_samples(X, weights[:3], shape=(2, 3))
    with pytest.raises(ValueError, match="order"):
        plot_weighted_samples(X, weights, shape=(2, 3), order="K")
    with pytest.raises(ValueError, match="n_cols"):
        plot_weighted_samples(X, weights, shape=(2, 3), n_cols=0)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install skvae\[plot\]"):
        plot_weighted_samples(np.zeros((1, 4)), np.ones(1), shape=(2, 2))
