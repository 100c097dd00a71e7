"""What scikit-learn's estimator checks need from our estimators and transformers, in one place."""

from __future__ import annotations

import numpy as np


def check_n_features(n_got: int, n_expected: int, estimator) -> None:
    """Refuse ``X`` of another width than at fit, in scikit-learn's wording."""
    if n_got != n_expected:
        raise ValueError(
            f"X has {n_got} features, but {type(estimator).__name__} is expecting {n_expected} features as input."
        )


class Float32Transformer:
    """Tags of a transformer that reads dense or sparse input and returns float32 features."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified by transferkit.data.check_array
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class CheckedParams:
    """scikit-learn's check of ``_parameter_constraints``, and one it lacks: its numeric intervals take
    ``True`` and ``False`` as the integers 1 and 0, which would pass a typo such as ``hidden=True`` on
    to torch. A boolean is refused unless the parameter is one. Mix in before ``BaseEstimator``."""

    def _validate_params(self) -> None:
        super()._validate_params()
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name, None)
            if isinstance(value, (bool, np.bool_)) and not any(c == "boolean" or c is bool for c in constraints):
                raise ValueError(
                    f"The {name!r} parameter of {type(self).__name__} must be a number, not a boolean; got {value!r}."
                )
