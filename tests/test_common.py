"""scikit-learn's estimator checks over every public estimator, at default parameters.

Only size settings (a tiny network, few epochs) differ from the defaults, so the
checks' real-valued random data reach ``likelihood='auto'`` as a user's would.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import ReverseHalfAsleep, VAEDensityEstimator, WeightedSelfAugmentation

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=3, batch_size=16, random_state=0)

ESTIMATORS = [
    VAEDensityEstimator(**SMALL),
    VAEDensityEstimator(dropout=0.2, air_sigma=0.3, **SMALL),
    VAEDensityEstimator(early_stopping=True, **SMALL),
    WeightedSelfAugmentation(warmup_epochs=1, discriminator_hidden_layer_sizes=(4,), **SMALL),
    ReverseHalfAsleep(rha_epochs=2, **SMALL),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
