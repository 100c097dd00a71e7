"""What scikit-learn's estimator checks need from our transformers, in one place."""

from __future__ import annotations


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
