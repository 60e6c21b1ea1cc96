"""torch modules: the MLP encoder and decoder of a VAE, and a discriminator."""

import torch
from torch import nn

__all__ = ["MLP", "GaussianEncoder", "Decoder", "VAEModule", "Discriminator"]


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
    """q(z | x) = N(mu(x), diag(exp(logvar(x)))), an MLP with a two-headed output."""

    def __init__(self, n_in, latent_dim, hidden_layer_sizes=(), dropout=0.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = MLP(n_in, 2 * latent_dim, hidden_layer_sizes, dropout)

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, dim=-1)
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

    def __init__(self, n_features, n_params, latent_dim=16, hidden_layer_sizes=(500, 500), dropout=0.0):
        super().__init__()
        hidden = tuple(hidden_layer_sizes)
        self.encoder = GaussianEncoder(n_features, latent_dim, hidden, dropout)
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
