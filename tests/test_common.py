"""scikit-learn's estimator checks over every public estimator, at default parameters.

Only size settings (a tiny network, few epochs) differ from the defaults, so the
checks' real-valued random data reach ``likelihood='auto'`` as a user's would.
``BitsBackCoder`` runs the transformer checks at its defaults too; the checks
it fails, and why, are listed in ``CODER_EXPECTED_FAILURES`` (strict: a check
listed there that starts to pass fails the suite, so the list stays true).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import HierarchicalVAE, ReverseHalfAsleep, VAEDensityEstimator, WeightedSelfAugmentation
from skvae.coding import BitsBackCoder

SMALL = dict(latent_dim=2, hidden_layer_sizes=(8,), max_epochs=3, batch_size=16, random_state=0)

ESTIMATORS = [
    VAEDensityEstimator(**SMALL),
    VAEDensityEstimator(dropout=0.2, air_sigma=0.3, **SMALL),
    VAEDensityEstimator(early_stopping=True, **SMALL),
    WeightedSelfAugmentation(warmup_epochs=1, discriminator_hidden_layer_sizes=(4,), **SMALL),
    ReverseHalfAsleep(rha_epochs=2, **SMALL),
    BitsBackCoder(VAEDensityEstimator(**SMALL)),
    HierarchicalVAE(latent_dims=(2, 2), hidden_layer_sizes=(8,), ladder_hidden_sizes=(4,), betas=(1.0, 0.5),
                    max_epochs=3, batch_size=16, random_state=0),
    HierarchicalVAE(latent_dims=(2, 2, 1), hidden_layer_sizes=(8,), warmup_epochs=1, early_stopping=True, max_epochs=3,
                    batch_size=16, random_state=0),
]

# The checks feed uniformly random float64 values. They lie on no decimal grid, so
# quantization='auto' finds no lossless code for them and encode (and with it
# transform and score) raises a ValueError naming the column: coding them exactly
# would mean storing their 52 random mantissa bits. The shape checks also cannot
# hold for a compressor whose transform returns one file for all rows.
_RANDOM_REALS = ("encode refuses the check's random float64 values: they lie on no decimal grid "
                 "(quantization='auto'), and coding them exactly would store their random mantissa bits")
_ONE_FILE = (_RANDOM_REALS + "; besides, transform returns one compressed file (1-D uint8) for all rows, "
             "not an output row per sample")
CODER_EXPECTED_FAILURES = {
    "check_fit_score_takes_y": _RANDOM_REALS,
    "check_estimators_dtypes": _RANDOM_REALS,
    "check_dtype_object": _RANDOM_REALS,
    "check_pipeline_consistency": _RANDOM_REALS,
    "check_estimators_pickle": _RANDOM_REALS,
    "check_f_contiguous_array_estimator": _RANDOM_REALS,
    "check_dict_unchanged": _RANDOM_REALS,
    "check_fit_idempotent": _RANDOM_REALS,
    "check_transformer_data_not_an_array": _ONE_FILE,
    "check_transformer_general": _ONE_FILE,
    "check_transformer_preserve_dtypes": _ONE_FILE + " (its dtype is uint8 whatever the input's)",
    "check_methods_sample_order_invariance": _ONE_FILE + " (reordering rows reorders the file's bits, "
                                             "not whole output rows)",
    "check_methods_subset_invariance": _ONE_FILE + " (a subset's file is not a slice of the whole file)",
}


def _expected_failures(estimator):
    return CODER_EXPECTED_FAILURES if isinstance(estimator, BitsBackCoder) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures, xfail_strict=True)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
