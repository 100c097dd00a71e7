"""SKADA's side of the cold-start comparison (``skada_compare.py --cold``): what a SKADA user runs.

One DANN fit on one Amazon pair, from a fresh process: read the svmlight files with scikit-learn,
binarise the counts, fit SKADA's DANN (the head repaired as in ``skada_compare.py``; the same
recipe: 5000 -> 50 ReLU -> 2, Adam lr 1e-3, 30 epochs of 64 + 64 reviews), predict the target test
file and print the accuracy. It never imports transferkit.

    python benchmarks/skada_cold_script.py SOURCE_TRAIN TARGET_TRAIN TARGET_TEST
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


class ShallowNet(nn.Module):
    """The shallow network both sides train: SKADA hooks the stage named ``layer_name`` to read features
    and calls the module with a ``sample_weight`` keyword at prediction time."""

    def __init__(self, in_features: int, n_classes: int = 2, hidden: int = 50):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, X, sample_weight=None):
        return self.head(self.hidden(X))


def read(path: str):
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(path, n_features=5000, zero_based=True, dtype=np.float32)
    return (X.toarray() > 0).astype(np.float32), ((y + 1) // 2).astype(np.int64)


def main(source_train: str, target_train: str, target_test: str) -> None:
    from skada.deep import DANN
    from skada.deep.modules import DomainClassifier

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")
    Xs, ys = read(source_train)
    Xt, _ = read(target_train)
    Xtest, ytest = read(target_test)
    torch.manual_seed(0)
    head = DomainClassifier(num_features=50, alpha=0.1)
    head.classifier[-1] = nn.Sigmoid()  # the repair of skada_compare.py: P(target), what BCELoss expects
    model = DANN(
        ShallowNet(Xs.shape[1]),
        layer_name="hidden",
        reg=0.5,
        domain_classifier=head,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=30,
        batch_size=64,
        train_split=False,
        device="cpu",
        verbose=0,
    )
    X = np.concatenate([Xs, Xt])
    y = np.concatenate([ys, np.full(len(Xt), -1)])
    sample_domain = np.concatenate([np.full(len(Xs), 1), np.full(len(Xt), -2)])
    model.fit(X, y, sample_domain=sample_domain)
    pred = model.predict(Xtest, sample_domain=np.full(len(Xtest), -2))
    print(f"accuracy {np.mean(pred == ytest):.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
