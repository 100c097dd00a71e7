"""TrAdaBoost on UCI Mushroom, the stalk-shape split of Dai et al. (ICML 2007).

Source (diff-distribution): all `mushroom:enlarging` training examples, labelled. Target
(same-distribution): K labelled `mushroom:tapering` training examples per class, drawn at random;
accuracy on the `mushroom:tapering` test split. Baselines with the same linear SVM: trained on the
K target examples alone, and on source + target pooled (no reweighting).

    TRANSFERKIT_DATA=../shared/data python benchmarks/tradaboost_mushroom.py
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from transferkit import Domain, TrAdaBoost
from transferkit.datasets import load_domain
from transferkit.report import markdown_table, mean_std


def draw(domain: Domain, k: int, seed: int) -> Domain:
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(domain.y == c), k, replace=False) for c in np.unique(domain.y)])
    return domain.subset(np.sort(idx))


def _svm(seed: int) -> LinearSVC:
    return LinearSVC(dual="auto", max_iter=5000, random_state=seed)


def main(ks=(5, 10, 50), seeds=range(5), n_estimators=100) -> str:
    source = load_domain("mushroom:enlarging", "train")
    target_pool = load_domain("mushroom:tapering", "train")
    test = load_domain("mushroom:tapering", "test")
    rows = []
    for k in ks:
        acc = {"target only": [], "pooled": [], "TrAdaBoost": []}
        for seed in seeds:
            target = draw(target_pool, k, seed)
            acc["target only"].append(_svm(seed).fit(target.X, target.y).score(test.X, test.y))
            pooled = _svm(seed).fit(np.concatenate([source.X, target.X]), np.concatenate([source.y, target.y]))
            acc["pooled"].append(pooled.score(test.X, test.y))
            model = TrAdaBoost(n_estimators=n_estimators, seed=seed).fit(source, target)
            acc["TrAdaBoost"].append(model.score(test))
        rows.append({"K per class": k, **{name: mean_std(v) for name, v in acc.items()}})
    table = markdown_table(rows)
    print(table)
    return table


if __name__ == "__main__":
    main()
