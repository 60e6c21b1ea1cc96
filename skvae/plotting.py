"""Figures for the diagnostics: learning curves, gap decomposition, rate/distortion, weighted samples.

matplotlib is an optional dependency (``pip install skvae[plot]``); it is
imported only when a plotting function is called. Every function draws on
the ``ax`` it is given (or a new figure) and returns what it drew on.
"""

import math
import numbers

import numpy as np

__all__ = [
    "plot_learning_curves",
    "plot_gap_decomposition",
    "plot_rate_distortion",
    "plot_weighted_samples",
    "plot_layer_rates",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("skvae.plotting needs matplotlib: pip install skvae[plot]") from exc
    return plt


def _new_axes(ax, figsize=(6, 4)):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _history_series(history, key):
    """(epochs, values) of the history rows that hold ``key``."""
    epochs, values = [], []
    for row in history:
        if key in row:
            epochs.append(row["epoch"])
            values.append(row[key])
    return np.asarray(epochs), np.asarray(values, dtype=float)


def plot_learning_curves(estimators, labels=None, test_key="test_elbo", train="auto",
                         best_elbo=None, ax=None):
    """Train and held-out ELBO per epoch of one or several fitted estimators.

    The held-out curve is the ``test_key`` entry of ``history_`` recorded by
    :class:`skvae.ELBOMonitor` (plotted only at the epochs it was recorded).
    The training curve (dashed) is ``train_elbo`` when an
    ``ELBOMonitor(X_train, name='train')`` recorded it, else minus the
    per-epoch ``train_loss``: the running mean of the training objective
    during the epoch, which equals the ELBO only for a plain VAE with
    ``beta=1`` and no AIR (for WSA or RHA it is their own training loss).

    Parameters
    ----------
    estimators : fitted estimator or list of them
    labels : list of str, optional
        One per estimator; defaults to the class names.
    test_key : str, default='test_elbo'
        History key of the held-out ELBO.
    train : {'auto', 'train_elbo', 'train_loss', None}, default='auto'
        Which training curve to draw; None draws none.
    best_elbo : float, optional
        A horizontal reference line, e.g. minus the data's entropy
        (:func:`skvae.datasets.sine_bernoulli_entropy`), the best any model
        can reach.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator, ELBOMonitor
    >>> from skvae.plotting import plot_learning_curves
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=4,
    ...                           callbacks=[ELBOMonitor(X[100:])], random_state=0).fit(X[:100])
    >>> ax = plot_learning_curves(vae)
    >>> len(ax.get_lines())
    2
    """
    if not isinstance(estimators, (list, tuple)):
        estimators = [estimators]
    if not estimators:
        raise ValueError("estimators is empty")
    if labels is None:
        labels = [type(est).__name__ for est in estimators]
    if len(labels) != len(estimators):
        raise ValueError(f"got {len(labels)} labels for {len(estimators)} estimators")
    if train not in ("auto", "train_elbo", "train_loss", None):
        raise ValueError(f"train must be 'auto', 'train_elbo', 'train_loss' or None, got {train!r}")
    for est in estimators:
        if not hasattr(est, "history_"):
            raise ValueError(f"{type(est).__name__} is not fitted: it has no history_")
    ax = _new_axes(ax)
    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (est, label) in enumerate(zip(estimators, labels)):
        color = colors[i % len(colors)]
        key = train
        if key == "auto":
            key = "train_elbo" if _history_series(est.history_, "train_elbo")[0].size else "train_loss"
        if key is not None:
            epochs, values = _history_series(est.history_, key)
            if key == "train_loss":
                values = -values
            if epochs.size:
                ax.plot(epochs, values, ls="--", color=color, label=f"{label} train")
        epochs, values = _history_series(est.history_, test_key)
        if epochs.size:
            ax.plot(epochs, values, ls="-", color=color, label=f"{label} held-out")
    if best_elbo is not None:
        ax.axhline(best_elbo, color="k", lw=0.8, ls=":", label="best possible")
    ax.set_xlabel("epoch")
    ax.set_ylabel("ELBO (nats per row)")
    ax.legend(fontsize="small")
    return ax


def _series(results, keys):
    """Columns ``keys`` from a list of Bunch/dict results or a dict of sequences."""
    if isinstance(results, dict):
        return {k: np.asarray(results[k], dtype=float) for k in keys}
    out = {}
    for k in keys:
        out[k] = np.asarray([np.mean(r[k]) for r in results], dtype=float)
    return out


def _check_steps(steps, n):
    steps = np.asarray(steps)
    if steps.ndim != 1 or len(steps) != n:
        raise ValueError(f"steps must be a 1-D sequence of length {n} (one per result), got shape {steps.shape}")
    return steps


def plot_gap_decomposition(steps, gaps, units="nats", ax=None):
    """EGG, AIGG and GMGG at training checkpoints.

    Parameters
    ----------
    steps : sequence of int
        The checkpoint of each result (e.g. epochs).
    gaps : list of Bunch or dict of sequences
        Outputs of :func:`skvae.diagnostics.generalization_gaps`, one per
        checkpoint, or a dict with keys ``egg``, ``aigg``, ``gmgg``
        (``*_bpd`` with ``units='bpd'``).
    units : {'nats', 'bpd'}, default='nats'
        Nats per row, or bits per dimension.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae.plotting import plot_gap_decomposition
    >>> gaps = {"egg": [1.0, 3.0], "aigg": [0.8, 2.5], "gmgg": [0.2, 0.5]}
    >>> len(plot_gap_decomposition([10, 20], gaps).get_legend().get_texts())
    3
    """
    if units not in ("nats", "bpd"):
        raise ValueError(f"units must be 'nats' or 'bpd', got {units!r}")
    suffix = "" if units == "nats" else "_bpd"
    keys = [k + suffix for k in ("egg", "aigg", "gmgg")]
    data = _series(gaps, keys)
    steps = _check_steps(steps, len(data[keys[0]]))
    ax = _new_axes(ax)
    names = {"egg": "EGG (train − test ELBO)", "aigg": "AIGG (encoder)", "gmgg": "GMGG (decoder)"}
    for key, marker in zip(keys, "os^"):
        ax.plot(steps, data[key], marker=marker, label=names[key.split("_")[0]])
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("gap (nats per row)" if units == "nats" else "gap (bits per dimension)")
    ax.legend(fontsize="small")
    return ax


def plot_rate_distortion(steps, results, labels=None, ax=None):
    """Mean rate, mean distortion and mutual information over training.

    Rate and mutual information share the left axis; the distortion, usually
    far larger, is drawn on a twin right axis (``ax.right_ax_``).

    Parameters
    ----------
    steps : sequence of int
        The checkpoint of each result.
    results : list of Bunch or dict of sequences
        Outputs of :func:`skvae.diagnostics.rate_distortion`, one per
        checkpoint (per-row arrays are averaged), or a dict with keys
        ``rate``, ``distortion`` and ``mutual_information``.
    labels : str, optional
        A prefix for the legend entries (e.g. the method's name).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        The left axis; the twin axis is attached as ``ax.right_ax_``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae.plotting import plot_rate_distortion
    >>> res = {"rate": [2.0, 3.0], "distortion": [90.0, 80.0], "mutual_information": [1.5, 2.0]}
    >>> ax = plot_rate_distortion([5, 10], res)
    >>> len(ax.get_lines()), len(ax.right_ax_.get_lines())
    (2, 1)
    """
    keys = ("rate", "distortion", "mutual_information")
    data = _series(results, keys)
    steps = _check_steps(steps, len(data["rate"]))
    prefix = "" if labels is None else f"{labels} "
    ax = _new_axes(ax)
    ax.plot(steps, data["rate"], color="C0", label=f"{prefix}rate KL(q(z|x)‖p(z))")
    ax.plot(steps, data["mutual_information"], color="C2", label=f"{prefix}I(X;Z)")
    right = getattr(ax, "right_ax_", None) or ax.twinx()
    right.plot(steps, data["distortion"], color="C3", ls="--", label=f"{prefix}distortion")
    ax.right_ax_ = right
    ax.set_xlabel("epoch")
    ax.set_ylabel("rate, I(X;Z) (nats)")
    right.set_ylabel("distortion (nats)")
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small")
    return ax


def plot_weighted_samples(X, weights, shape, n_cols=8, sort=True, order="C", cmap="gray", fig=None):
    """A grid of image-shaped rows titled with their weights.

    Meant for the samples a WSA model draws with their discriminator weights
    (``X, w = wsa.sample_with_weights(n, random_state)``), but any rows and
    weights work.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
    weights : array-like of shape (n_rows,)
    shape : tuple of int
        Image shape, e.g. ``(28, 28)``; its product must be ``n_features``.
    n_cols : int, default=8
    sort : bool, default=True
        Show rows from the highest weight to the lowest.
    order : {'C', 'F'}, default='C'
        Reshape order ('F' for column-major data such as Caltech-101 Silhouettes).
    cmap : str, default='gray'
    fig : matplotlib Figure, optional

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skvae.plotting import plot_weighted_samples
    >>> X = np.random.RandomState(0).binomial(1, 0.5, size=(6, 16))
    >>> fig = plot_weighted_samples(X, np.arange(6.0), shape=(4, 4), n_cols=3)
    >>> len(fig.axes)
    6
    """
    X = np.asarray(X, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    if weights.shape != (X.shape[0],):
        raise ValueError(f"weights must have shape ({X.shape[0]},), got {weights.shape}")
    shape = tuple(shape)
    if not shape or not all(isinstance(s, numbers.Integral) and s > 0 for s in shape) \
            or math.prod(shape) != X.shape[1]:
        raise ValueError(f"shape {shape} does not match {X.shape[1]} features")
    if not isinstance(n_cols, numbers.Integral) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}")
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    plt = _pyplot()
    index = np.argsort(-weights, kind="stable") if sort else np.arange(len(weights))
    n_cols = min(n_cols, max(len(index), 1))
    n_rows = max(1, -(-len(index) // n_cols))
    if fig is None:
        fig = plt.figure(figsize=(1.4 * n_cols, 1.6 * n_rows))
    for k, i in enumerate(index):
        ax = fig.add_subplot(n_rows, n_cols, k + 1)
        image = X[i].reshape(shape, order=order)
        if image.ndim == 1:
            image = image[None, :]
        ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(f"w={weights[i]:.3g}", fontsize=8)
        ax.set_axis_off()
    return fig


def plot_layer_rates(betas, rates, distortion=None, ax=None):
    """Per-layer rates of hierarchical models against their betas, as stacked bars.

    One bar per model (configuration of betas), split into the rates
    R_1 (next to the data), ..., R_L of its layers, so that the bar's height
    is the total rate: how a change of the betas moves information between
    layers. The distortion, if given, is drawn as points on a twin right
    axis (``ax.right_ax_``).

    Parameters
    ----------
    betas : sequence of sequences of float
        Each model's betas, z_1 first (the bar labels).
    rates : sequence of sequences of float, or list of Bunch
        Each model's mean rate per layer in nats (same length as its betas),
        or outputs of ``HierarchicalVAE.elbo_components`` /
        :func:`skvae.diagnostics.rate_distortion` (their ``rates`` are averaged
        over rows, and their ``distortion`` is used when ``distortion`` is None).
    distortion : sequence of float, optional
        Each model's mean distortion in nats.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvae.plotting import plot_layer_rates
    >>> ax = plot_layer_rates([(1, 1), (1, 4)], [[5.0, 2.0], [6.5, 0.4]], distortion=[60.0, 61.0])
    >>> len(ax.patches), len(ax.right_ax_.get_lines())
    (4, 1)
    """
    betas = [tuple(float(b) for b in row) for row in betas]
    if not betas:
        raise ValueError("betas must hold at least one model's betas")
    bunches = [r for r in rates if hasattr(r, "keys") and "rates" in r]
    if bunches and len(bunches) == len(rates):
        if distortion is None and all("distortion" in r for r in bunches):
            distortion = [float(np.mean(r["distortion"])) for r in bunches]
        rates = [np.asarray(r["rates"], dtype=float).reshape(-1, len(b)).mean(0) for r, b in zip(bunches, betas)]
    rates = [np.asarray(r, dtype=float).ravel() for r in rates]
    if len(rates) != len(betas):
        raise ValueError(f"rates has {len(rates)} models, betas {len(betas)}")
    for i, (r, b) in enumerate(zip(rates, betas)):
        if len(r) != len(b):
            raise ValueError(f"model {i} has {len(b)} betas but {len(r)} layer rates")
    if distortion is not None and len(distortion) != len(betas):
        raise ValueError(f"distortion has {len(distortion)} values, betas {len(betas)}")
    n_layers = max(len(b) for b in betas)
    ax = _new_axes(ax)
    x = np.arange(len(betas))
    bottom = np.zeros(len(betas))
    for level in range(n_layers):
        heights = np.array([r[level] if level < len(r) else 0.0 for r in rates])
        ax.bar(x, heights, bottom=bottom, color=f"C{level}", label=f"R{level + 1} (z{level + 1})")
        bottom += heights
    ax.set_ylim(0.0, 1.15 * max(float(bottom.max()), 1e-9))  # room above the tallest bar for the legend
    ax.set_xticks(x)
    ax.set_xticklabels(["(" + ", ".join(f"{b:g}" for b in row) + ")" for row in betas], rotation=30)
    ax.set_xlabel("betas (z1, ..., zL)")
    ax.set_ylabel("rate (nats)")
    handles, labels = ax.get_legend_handles_labels()
    if distortion is not None:
        right = getattr(ax, "right_ax_", None) or ax.twinx()
        values = np.asarray(distortion, dtype=float)
        right.plot(x, values, "k^", ls="none", label="distortion")
        span = max(float(values.max() - values.min()), 1e-6 * max(1.0, abs(float(values.max()))))
        right.set_ylim(float(values.min()) - 0.1 * span, float(values.max()) + 0.35 * span)  # legend room
        right.set_ylabel("distortion (nats)")
        ax.right_ax_ = right
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize="small", loc="upper center", ncol=n_layers + (distortion is not None))
    return ax
