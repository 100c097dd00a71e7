"""Amazon reviews sentiment (Blitzer et al. 2007): the DANN 5000-d copy and the 400-d copy.

``amazon:<d>``
    The copy shipped with the shallow-DANN code of Ganin et al. (JMLR 2016), folder
    ``amazon_reviews_dann/``: 5000 unigram/bigram **raw counts** per review (no scaling or
    normalisation is applied here: do it in your pipeline), labels ``(y + 1) / 2`` in {0, 1}.
    ``train`` is ``<d>_train.svmlight`` (2000 reviews), ``test`` is ``<d>_test.svmlight``,
    ``all`` both stacked (train first).
``amazon400:<d>``
    The 400-word term-frequency version of Chen et al. (ICML 2012), folder
    ``amazon_reviews_400/`` (``elec_400.mat`` for electronics); rows sum to 1. There is no split:
    ``train``, ``test`` and ``all`` are all the samples (the transductive protocol, where the
    target is seen unlabelled during training and evaluated on the same samples).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse

from ._common import DomainInfo, _Spec, folder_hint, frozen, needs, read_mat

DOMAINS = ("books", "dvd", "electronics", "kitchen")
_DANN = "amazon_reviews_dann"
_A400 = "amazon_reviews_400"
_A400_FILE = {"books": "books", "dvd": "dvd", "electronics": "elec", "kitchen": "kitchen"}
_N_FEATURES = 5000


@lru_cache(maxsize=16)
def _read_svmlight(path: str):
    """A svmlight file as (CSR float32 counts, int64 labels in {0, 1}); cached, do not modify."""
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(path, n_features=_N_FEATURES, zero_based=True, dtype=np.float32)
    return X, frozen(((y + 1) // 2).astype(np.int64))


def _load_dann(domain: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        parts = ("train", "test") if split == "all" else (split,)
        read = [_read_svmlight(str(root / _DANN / f"{domain}_{p}.svmlight")) for p in parts]
        # expanded once, straight into the array returned (a dense copy of 2000 reviews is 40 MB)
        X = (scipy.sparse.vstack([r[0] for r in read]) if len(read) > 1 else read[0][0]).toarray()
        y = np.concatenate([r[1] for r in read])
        return X, y

    return load


def _load_400(domain: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        m = read_mat(str(root / _A400 / f"{_A400_FILE[domain]}_400.mat"))
        return m["fts"].astype(np.float32), m["labels"].ravel().astype(np.int64)

    return load


def specs() -> list[_Spec]:
    """The registry records of both Amazon families."""
    out = []
    for d in DOMAINS:
        info = DomainInfo(
            key=f"amazon:{d}",
            dataset="amazon",
            domain=d,
            kind="features",
            n_classes=2,
            description=f"Amazon {d} reviews, 5000-d unigram/bigram raw counts, 2000 train + test split",
            source="Blitzer et al. ACL 2007, DANN copy (Ganin et al. JMLR 2016)",
        )
        files = (f"{_DANN}/{d}_train.svmlight", f"{_DANN}/{d}_test.svmlight")
        out.append(_Spec(info, _load_dann(d), needs(*files), folder_hint(_DANN, "amazon")))
    for d in DOMAINS:
        info = DomainInfo(
            key=f"amazon400:{d}",
            dataset="amazon400",
            domain=d,
            kind="features",
            n_classes=2,
            description=(
                f"Amazon {d} reviews, 400-d term frequencies; no split: train = test = all (transductive protocol)"
            ),
            source="Blitzer et al. ACL 2007, 400-word version of Chen et al. ICML 2012",
        )
        file = f"{_A400}/{_A400_FILE[d]}_400.mat"
        out.append(_Spec(info, _load_400(d), needs(file), folder_hint(_A400, "amazon400")))
    return out
