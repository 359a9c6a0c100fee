"""scikit-learn's estimator checks on RiskModel and the generic detectors (conforming estimators, issue #11)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from models import RiskModel
from models.detectors import ECOD, IsolationForestDetector

# Checks RiskModel fails by design, each for a stated reason. scikit-learn spares its own semi-supervised
# estimators the first by name (LabelPropagation, LabelSpreading and SelfTrainingClassifier get labels other
# than -1 in _choose_check_classifiers_labels) and marks the second xfail for HistGradientBoosting, Bagging,
# AdaBoost and SGD estimators (PER_ESTIMATOR_XFAIL_CHECKS). RiskModel(unlabeled=None) passes the first.
RISK_MODEL_EXPECTED_FAILURES = {
    "check_classifiers_classes": (
        "y = -1 marks never-inspected rows (scikit-learn's semi-supervised convention, the `unlabeled` "
        "parameter), so the labels [-1, 1] of this check are one class plus unlabelled rows"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight weighs the verdicts in LightGBM's loss and in Platt scaling only; the detectors, the rank "
        "references every score is normalised on (detectors, supervised margin, blend), LightGBM's "
        "min_child_samples and the prior are counts over rows, so a repeated row is not a weight of 2 (fails "
        "with subsample=1, colsample_bytree=1, blend=1 too); weighing them would change every production score"
    ),
}


def _expected_failures(estimator) -> dict[str, str]:
    if not isinstance(estimator, RiskModel):
        return {}
    if estimator.unlabeled is None:  # every label a class: only the weight semantics differ
        return {k: v for k, v in RISK_MODEL_EXPECTED_FAILURES.items() if k != "check_classifiers_classes"}
    return RISK_MODEL_EXPECTED_FAILURES


@parametrize_with_checks(
    [RiskModel(n_estimators=20, forest_trees=20), RiskModel(n_estimators=20, forest_trees=20, unlabeled=None),
     ECOD(), IsolationForestDetector(n_estimators=20)],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
