"""RiskModel's label convention: verdicts as classes, never-inspected rows as unlabelled.

Inspections find few violations and only where officers chose to look, so most rows carry no verdict. They
are marked with the estimator's ``unlabeled`` value (default -1, scikit-learn's semi-supervised convention)
rather than counted as clean; every other value is a class, at most two.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _assert_all_finite, column_or_1d

LABEL_HELP = ("RiskModel takes the labels 1 (violation), 0 (verified clean) and -1 (never inspected; the "
              "unlabeled parameter), or any two class labels")


def encode_labels(y, n: int, unlabeled=-1) -> tuple[np.ndarray, np.ndarray]:
    """The classes and y as floats: 1 positive class, 0 negative class, -1 unlabelled.

    Rows whose label equals ``unlabeled`` were never inspected (None: every value is a class). The other
    labels are the classes, at most two: sorted, the second is the positive class (with the inspection labels
    0 / 1, 1 = violation). With one class or none labelled, the classes are 0 and 1. NaN, a third class, or a
    lone class that is not 0 or 1 are errors naming the values."""
    if y is None:
        return np.array([0, 1]), np.full(n, -1.0)
    y = column_or_1d(y, warn=True)
    if len(y) != n:
        raise ValueError(f"y has {len(y)} rows, X has {n}")
    if y.dtype.kind == "f":
        _assert_all_finite(y, input_name="y", estimator_name="RiskModel")
    if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
        raise ValueError("Input y contains NaN or None: mark never-inspected rows with "
                         f"{unlabeled!r} (the unlabeled parameter)")
    unl = (y == unlabeled) if unlabeled is not None else np.zeros(n, dtype=bool)
    labelled = y[~unl]
    if labelled.dtype.kind == "f" and len(labelled) and type_of_target(labelled) == "continuous":
        raise ValueError(f"Unknown label type: continuous target. {LABEL_HELP}")
    classes = np.unique(labelled)
    if len(classes) > 2:
        raise ValueError(f"Only binary classification is supported. Unknown label(s) in y: got classes "
                         f"{classes.tolist()[:5]}"
                         f"{' besides the unlabelled ' + repr(unlabeled) if unl.any() else ''}. {LABEL_HELP}")
    if len(classes) == 1 and classes[0] not in (0, 1):
        raise ValueError(f"Unknown label {classes[0]!r} in y: with a single class labelled, it must be 0 or 1. "
                         f"{LABEL_HELP}")
    if len(classes) < 2:
        classes = np.array([0, 1])
    out = np.full(n, -1.0)
    out[~unl] = (labelled == classes[1]).astype(float)
    return classes, out
