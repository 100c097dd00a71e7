"""Your own table: breast-cancer measurements from one hospital's instrument, adapted to another's.

The 569 tumours of the Wisconsin diagnostic data set (shipped with scikit-learn, 30 measurements
each) are split into two hospitals. Hospital A's instrument is the reference. Hospital B's is
calibrated differently: its channels leak into each other (cross-talk), each has a gain and an
offset of its own, and there is more noise.
A has labels (malignant or benign); B has none. This is a covariate shift, the setting of CORAL
and DANN.

The example writes the two CSV files a user would have, then answers the question three ways:

1. the command line, on the files: ``transferkit run dann --source a.csv --target b.csv --label-column diagnosis``;
2. the Python API, on pandas DataFrames;
3. scikit-learn: a ``Pipeline`` (scaler + DANN) tuned by ``GridSearchCV``, both domains in one
   array with ``sample_domain``. Each fold is scored on the labelled source rows only, so no
   target label is ever read.

    python examples/tabular_csv.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def write_hospitals(out: Path, seed: int = 0) -> tuple[Path, Path]:
    """Two CSV files: hospital A (labelled) and hospital B (labels kept in the file for scoring)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "diagnosis"})
    frame["diagnosis"] = np.where(frame["diagnosis"] == 1, "benign", "malignant")
    rng = np.random.default_rng(seed)
    in_b = rng.random(len(frame)) < 0.5
    a, b = frame[~in_b].copy(), frame[in_b].copy()
    features = data.feature_names
    mean, scale = frame[features].mean().to_numpy(), frame[features].std().to_numpy()
    # B's instrument: cross-talk between channels (a random near-identity mixing of the standardised
    # measurements), its own gain and offset per channel, and more noise
    d = len(features)
    mixing = np.eye(d) + rng.normal(0, 0.35, (d, d))
    z = (b[features].to_numpy() - mean) / scale
    z = z @ mixing * rng.uniform(0.6, 1.5, d) + rng.normal(0, 0.5, d) + rng.normal(0, 0.1, (len(b), d))
    b[features] = z * scale + mean
    paths = out / "hospital_a.csv", out / "hospital_b.csv"
    a.to_csv(paths[0], index=False)
    b.to_csv(paths[1], index=False)
    return paths


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tabular-example"))
    parser.add_argument("--quick", action="store_true", help="a smaller grid (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    a_csv, b_csv = write_hospitals(args.out)
    results = {}

    # 1. the command line, on the files
    for method in ("source-only", "dann"):
        cmd = [sys.executable, "-m", "transferkit", "run", method, "--source", str(a_csv), "--target", str(b_csv)]
        cmd += ["--label-column", "diagnosis", "--preprocess", "standardize", "--json", "-q"]
        cmd += ["--epochs", "5" if args.quick else "30"]
        record = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        results[f"cli {method}"] = record["target_accuracy"]

    # 2. the Python API on DataFrames: a and b as they are, B's labels only to score
    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from transferkit import DANN, Domain, SourceOnly

    epochs = 5 if args.quick else 30
    a, b = pd.read_csv(a_csv), pd.read_csv(b_csv)
    X_a, y_a = a.drop(columns="diagnosis"), a["diagnosis"]
    X_b, y_b = b.drop(columns="diagnosis"), b["diagnosis"]
    scaler = StandardScaler().fit(pd.concat([X_a, X_b]))  # fitted without labels, on both hospitals
    Z_a, Z_b = scaler.transform(X_a), scaler.transform(X_b)
    for name, model in (("source-only", SourceOnly(epochs=epochs)), ("DANN", DANN(epochs=epochs))):
        model.fit(Domain(Z_a, y_a, "hospital A"), Domain(Z_b, name="hospital B") if name == "DANN" else None)
        results[f"python {name}"] = model.score(Z_b, y_b)  # class names in, class names out

    # 3. scikit-learn: Pipeline + GridSearchCV, both hospitals in one array
    from sklearn.model_selection import GridSearchCV

    # scikit-learn's splitters sort the labels, so they must be of one type: numbers, -1 for "no label"
    classes = np.unique(y_a)
    X = pd.concat([X_a, X_b], ignore_index=True)
    y = np.r_[np.searchsorted(classes, y_a), np.full(len(X_b), -1)]
    sample_domain = np.r_[np.ones(len(X_a), int), -np.ones(len(X_b), int)]  # > 0 source, < 0 target
    grid = {"dann__lambda_max": [0.1, 1.0] if args.quick else [0.03, 0.1, 0.3, 1.0]}
    search = GridSearchCV(make_pipeline(StandardScaler(), DANN(epochs=epochs)), grid, cv=3)
    search.fit(X, y, dann__sample_domain=sample_domain)
    results["sklearn GridSearchCV(scaler + DANN)"] = search.best_estimator_.score(X_b, np.searchsorted(classes, y_b))
    results["lambda_max chosen on source folds"] = search.best_params_["dann__lambda_max"]
    for name, value in results.items():
        print(f"{name:<40s} {value if isinstance(value, str) else round(value, 4)}")
    return results


if __name__ == "__main__":
    main()
