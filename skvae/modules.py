"""torch modules: the MLP encoder and decoder of a VAE, and a discriminator."""

import torch
from torch import nn

__all__ = ["MLP", "GaussianEncoder", "Decoder", "VAEModule", "Discriminator", "OneHot", "Affine", "ColumnwiseInput"]


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
