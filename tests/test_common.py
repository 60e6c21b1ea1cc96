"""scikit-learn's estimator checks over every public estimator (small settings).

The checks feed real-valued random data, so the estimators run with
``likelihood='gaussian'`` here; Bernoulli-specific behaviour is tested on real
binary data in the per-estimator test modules.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEDensityEstimator

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=3, batch_size=16, likelihood="gaussian",
             random_state=0)

ESTIMATORS = [VAEDensityEstimator(**SMALL), VAEDensityEstimator(dropout=0.2, air_sigma=0.3, **SMALL)]

# Expected failures, each with its reason; empty means every check passes.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est), {}))
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
