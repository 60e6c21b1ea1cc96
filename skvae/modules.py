"""torch modules: the MLP encoder and decoder of a VAE, and a discriminator."""

import torch
from torch import nn

__all__ = ["MLP", "GaussianEncoder", "Decoder", "VAEModule", "Discriminator", "OneHot", "Affine", "ColumnwiseInput",
           "LadderVAEModule", "precision_weighted"]


class MLP(nn.Sequential):
    """Fully connected ReLU network with optional dropout after each hidden layer.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers.
    dropout : float, default=0.0
        Dropout probability applied after each hidden activation.
    """

    def __init__(self, n_in, n_out, hidden_layer_sizes=(), dropout=0.0):
        layers = []
        width = n_in
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_out))
        super().__init__(*layers)


class GaussianEncoder(nn.Module):
    """q(z | x) = N(mu(x), diag(exp(logvar(x)))), an MLP with a two-headed output.

    ``preprocess`` maps data rows to the network's input (one-hot codes of
    categorical columns, say; identity when None) and must have ``n_out``.
    ``noise_std`` in :meth:`forward` adds Gaussian noise after preprocessing
    (AIR's denoising input).
    """

    def __init__(self, n_in, latent_dim, hidden_layer_sizes=(), dropout=0.0, preprocess=None):
        super().__init__()
        self.latent_dim = latent_dim
        self.preprocess = preprocess  # None: rows go to the MLP as they are (no extra module call)
        width = preprocess.n_out if preprocess is not None else n_in
        self.net = MLP(width, 2 * latent_dim, hidden_layer_sizes, dropout)

    def forward(self, x, noise_std=0.0):
        h = x if self.preprocess is None else self.preprocess(x)
        if noise_std:
            h = h + noise_std * torch.randn_like(h)
        mu, logvar = self.net(h).chunk(2, dim=-1)
        return mu, logvar


class Decoder(nn.Module):
    """Maps a latent code to the likelihood's parameters."""

    def __init__(self, latent_dim, n_params, hidden_layer_sizes=(), dropout=0.0):
        super().__init__()
        self.net = MLP(latent_dim, n_params, hidden_layer_sizes, dropout)

    def forward(self, z):
        return self.net(z)


class VAEModule(nn.Module):
    """An encoder and a decoder with a standard normal prior p(z).

    The decoder mirrors the encoder's hidden layers in reverse order.
    """

    def __init__(self, n_features, n_params, latent_dim=16, hidden_layer_sizes=(500, 500), dropout=0.0,
                 preprocess=None):
        super().__init__()
        hidden = tuple(hidden_layer_sizes)
        self.encoder = GaussianEncoder(n_features, latent_dim, hidden, dropout, preprocess)
        self.decoder = Decoder(latent_dim, n_params, hidden[::-1], dropout)

    @property
    def latent_dim(self):
        return self.encoder.latent_dim

    def forward(self, x):
        return self.encoder(x)


class Discriminator(nn.Module):
    """MLP that returns one logit per row: log D(x) / (1 - D(x))."""

    def __init__(self, n_features, hidden_layer_sizes=(500, 500), dropout=0.0):
        super().__init__()
        self.net = MLP(n_features, 1, tuple(hidden_layer_sizes), dropout)

    def forward(self, x):
        return self.net(x).squeeze(-1)


class OneHot(nn.Module):
    """One-hot codes of integer-coded categorical columns, concatenated."""

    def __init__(self, n_categories):
        super().__init__()
        self.n_categories = tuple(int(k) for k in n_categories)
        self.n_out = sum(self.n_categories)
        offsets = torch.tensor([0, *self.n_categories[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, x):
        index = x.long() + self.offsets
        out = x.new_zeros(x.shape[:-1] + (self.n_out,))
        return out.scatter_(-1, index, 1.0)


# Encoder inputs of affine-mapped columns are clipped to +-AFFINE_INPUT_CLIP units: a far outlier
# (a count 1,000 ranges above those seen in fit) then gets a sane q(z|x) and a finite bound
# instead of an overflowing one. The portable coder clips at the same bound (skvae.coding._fixed_point).
AFFINE_INPUT_CLIP = 32.0


class Affine(nn.Module):
    """(x - center) / scale per column, clipped to +-AFFINE_INPUT_CLIP: puts columns on a unit scale."""

    def __init__(self, center, scale):
        super().__init__()
        self.n_out = len(center)
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32), persistent=False)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32), persistent=False)

    def forward(self, x):
        return ((x - self.center.to(x.dtype)) / self.scale.to(x.dtype)).clamp(-AFFINE_INPUT_CLIP, AFFINE_INPUT_CLIP)


class ColumnwiseInput(nn.Module):
    """Applies one preprocessing module per group of columns and concatenates.

    Missing entries (NaN) give zeros in every output they feed (the centre of
    an affine-mapped column, no category of a one-hot group). With
    ``mask_channels`` (a model trained on rows with missing cells) the
    missingness mask of every column follows, so the encoder can tell a
    missing cell from an observed one.
    """

    def __init__(self, parts, mask_channels=False):
        super().__init__()
        self.parts = nn.ModuleList(module if module is not None else nn.Identity() for module, _ in parts)
        self.mask_channels = bool(mask_channels)
        n_columns = sum(len(cols) for _, cols in parts)
        self.n_out = sum(module.n_out if module is not None else len(cols) for module, cols in parts) \
            + (n_columns if mask_channels else 0)
        for i, (module, cols) in enumerate(parts):  # buffers follow the module to its device
            self.register_buffer(f"columns_{i}", torch.as_tensor(list(map(int, cols))), persistent=False)
            widths = getattr(module, "n_categories", None) or [1] * len(cols)  # outputs per input column
            spread = torch.repeat_interleave(torch.arange(len(cols)), torch.as_tensor(widths, dtype=torch.long))
            self.register_buffer(f"spread_{i}", spread, persistent=False)

    def forward(self, x):
        missing = torch.isnan(x)
        x = x.masked_fill(missing, 0.0)  # a valid value of every kind; its outputs are zeroed below
        outs = []
        for i, part in enumerate(self.parts):
            cols = getattr(self, f"columns_{i}")
            out_missing = missing.index_select(-1, cols).index_select(-1, getattr(self, f"spread_{i}"))
            outs.append(part(x.index_select(-1, cols)).masked_fill(out_missing, 0.0))
        if self.mask_channels:
            outs.append(missing.to(x.dtype))
        return torch.cat(outs, dim=-1)


def precision_weighted(mu_a, logvar_a, mu_b, logvar_b):
    """The Gaussian proportional to N(mu_a, exp(logvar_a)) N(mu_b, exp(logvar_b)), elementwise.

    Its precision is the sum of the two precisions and its mean their
    precision-weighted mean (the ladder VAE's combination of a bottom-up
    estimate with the top-down prior, Sønderby et al. 2016). Written with a
    sigmoid weight and ``logaddexp`` so that neither variance is inverted.
    """
    weight_a = torch.sigmoid(logvar_b - logvar_a)  # = prec_a / (prec_a + prec_b)
    mu = weight_a * mu_a + (1.0 - weight_a) * mu_b
    logvar = -torch.logaddexp(-logvar_a, -logvar_b)
    return mu, logvar


class LadderVAEModule(nn.Module):
    """A ladder VAE (Sønderby et al. 2016): a latent hierarchy z_1 (next to x), ..., z_L.

    Generative model, top-down: p(z_L) = N(0, I), p(z_l | z_{l+1}) Gaussian
    with mean and log-variance from an MLP of z_{l+1}, and p(x | z_1) from a
    decoder like :class:`VAEModule`'s. Inference: a deterministic bottom-up
    path d_1 = f_1(x), d_l = f_l(d_{l-1}) gives each layer a Gaussian
    estimate N(mu_hat_l, var_hat_l); q(z_L | x) is the top one, and going
    down, q(z_l | z_{l+1}, x) is the precision-weighted combination of
    layer l's estimate with the generative p(z_l | z_{l+1}) at the sampled
    z_{l+1} (the top-down networks are shared by the two models).

    With one layer it is a :class:`VAEModule` in all but the names of its
    parameters: the bottom-up features and head are the encoder's MLP, the
    decoder is the same network.

    Parameters
    ----------
    n_features, n_params : int
        Data columns and the likelihood's parameters per row.
    latent_dims : tuple of int
        Widths of z_1, ..., z_L (z_1 is the layer next to the data).
    hidden_layer_sizes : tuple of int
        Hidden widths between x and z_1: the bottom-up f_1, and reversed, the decoder.
    ladder_hidden_sizes : tuple of int
        Hidden widths of each network between two latent layers (f_l for
        l >= 2 and the top-down p(z_l | z_{l+1})).
    dropout : float, default=0.0
    preprocess : nn.Module or None
        Maps data rows to the bottom-up path's input (see :class:`GaussianEncoder`).
    """

    def __init__(self, n_features, n_params, latent_dims=(32, 16), hidden_layer_sizes=(500, 500),
                 ladder_hidden_sizes=(256,), dropout=0.0, preprocess=None):
        super().__init__()
        self.latent_dims = tuple(int(d) for d in latent_dims)
        hidden, ladder = tuple(hidden_layer_sizes), tuple(ladder_hidden_sizes)
        self.preprocess = preprocess
        width = preprocess.n_out if preprocess is not None else n_features
        features, heads = [], []
        for level, dim in enumerate(self.latent_dims):
            sizes = hidden if level == 0 else ladder
            features.append(_features(width, sizes, dropout))
            width = sizes[-1] if sizes else width
            heads.append(nn.Linear(width, 2 * dim))
        self.bottom_up = nn.ModuleList(features)
        self.heads = nn.ModuleList(heads)
        self.top_down = nn.ModuleList(  # top_down[l]: p(z_l | z_{l+1}) for l = 1 .. L-1 (0-based l-1)
            MLP(self.latent_dims[level + 1], 2 * self.latent_dims[level], ladder, dropout)
            for level in range(len(self.latent_dims) - 1))
        self.decoder = Decoder(self.latent_dims[0], n_params, hidden[::-1], dropout)

    @property
    def latent_dim(self):
        """Width of all latent layers together (the estimators' noise and ``transform`` width)."""
        return sum(self.latent_dims)

    def split(self, z):
        """The layers z_1, ..., z_L of concatenated latents (last axis)."""
        return list(torch.split(z, self.latent_dims, dim=-1))

    def bottom_up_estimates(self, x):
        """[(mu_hat_l, logvar_hat_l) for l = 1 .. L]: each layer's Gaussian from the bottom-up path."""
        h = x if self.preprocess is None else self.preprocess(x)
        out = []
        for features, head in zip(self.bottom_up, self.heads):
            h = features(h)
            out.append(head(h).chunk(2, dim=-1))
        return out

    def prior_params(self, level, z_above):
        """(mu, logvar) of p(z_level | z_{level+1}), 0-based ``level`` < L - 1."""
        return self.top_down[level](z_above).chunk(2, dim=-1)

    def posterior(self, x, eps):
        """Draw z ~ q(z | x) top-down and return every layer's pieces.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        eps : Tensor of shape (..., n, sum(latent_dims))
            Standard normal noise, the layers z_1 .. z_L in that order along
            the last axis (zeros give the path of posterior means).

        Returns
        -------
        list of (z, mu_q, logvar_q, mu_p, logvar_p), one per layer from z_1 up
            ``mu_p`` and ``logvar_p`` (the prior's parameters given the drawn
            z_{l+1}) are None for the top layer, whose prior is N(0, I).
        """
        estimates = self.bottom_up_estimates(x)
        noise = self.split(eps)
        layers = [None] * len(self.latent_dims)
        top = len(layers) - 1
        mu_q, logvar_q = estimates[top]
        z = mu_q + torch.exp(0.5 * logvar_q) * noise[top]
        layers[top] = (z, mu_q, logvar_q, None, None)
        for level in range(top - 1, -1, -1):
            mu_p, logvar_p = self.prior_params(level, z)
            mu_q, logvar_q = precision_weighted(*estimates[level], mu_p, logvar_p)
            z = mu_q + torch.exp(0.5 * logvar_q) * noise[level]
            layers[level] = (z, mu_q, logvar_q, mu_p, logvar_p)
        return layers

    def generate(self, eps):
        """z_1 of an ancestral draw z_L ~ N(0, I), z_l ~ p(z_l | z_{l+1}), from standard normal ``eps``."""
        noise = self.split(eps)
        z = noise[-1]
        for level in range(len(self.latent_dims) - 2, -1, -1):
            mu_p, logvar_p = self.prior_params(level, z)
            z = mu_p + torch.exp(0.5 * logvar_p) * noise[level]
        return z

    def forward(self, x):
        return self.bottom_up_estimates(x)


def _features(n_in, sizes, dropout):
    """Linear + ReLU (+ dropout) per width in ``sizes``: an MLP's hidden part (identity if empty)."""
    layers = []
    for size in sizes:
        layers += [nn.Linear(n_in, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = size
    return nn.Sequential(*layers)
