"""ImageNet features against networks trained from scratch: MNIST -> USPS and MNIST -> MNIST-M.

**Protocol: defaults.** The suite's sizes (seed 0, at most 2000 samples per domain, the target's test
split scored). From scratch: source-only and DANN on the images with their default networks. From
ImageNet: EfficientNet-Lite0's 1280-d features (:func:`transferkit.nn.pretrained.extract_features`,
images resized to ``--size``), extracted once; then logistic regression, source-only and DANN on the
vectors (their default shallow network). Also the seconds per epoch of fine-tuning the whole
EfficientNet with DANN on 2 cores, measured on a few batches.

    python benchmarks/pretrained_digits.py --size 64 > benchmarks/out/pretrained_digits.md

Needs the ``pretrained`` extra. Prints Markdown; progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from transferkit import DANN, Domain, SourceOnly
from transferkit.nn.pretrained import efficientnet_lite0, extract_features
from transferkit.report import markdown_table
from transferkit.runs import RunOptions, load_pair

TASKS = {"MNIST -> USPS": ("digits:mnist", "digits:usps"), "MNIST -> MNIST-M": ("digits:mnist", "digits:mnistm")}


def _rgb(d: Domain) -> Domain:
    """MNIST-M is RGB: the grey domain is replicated so both have 3 channels (as the paper does)."""
    return d if d.X.shape[1] == 3 else Domain(np.repeat(d.X, 3, axis=1), d.y, d.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="the side images are resized to for EfficientNet")
    parser.add_argument("--n", type=int, default=2000, help="samples per domain (the suite's 2000)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    net = efficientnet_lite0(input_size=args.size)
    rows, timing = [], []
    for name, (s, t) in TASKS.items():
        data = load_pair(s, t, RunOptions(seed=0, quiet=True, n_source=args.n, n_target=args.n))
        source, target, test = data.source, data.target, data.target_test
        if target.X.shape[1] != source.X.shape[1]:
            source, target, test = _rgb(source), _rgb(target), _rgb(test)
        row = {"task": name}
        t0 = time.perf_counter()
        row["scratch source-only"] = SourceOnly(seed=0).fit(source).score(test)
        row["scratch DANN"] = DANN(seed=0).fit(source, target).score(test)
        scratch_s = time.perf_counter() - t0
        print(f"{name}: from scratch {row['scratch source-only']:.3f} / {row['scratch DANN']:.3f}", file=sys.stderr)
        t0 = time.perf_counter()
        fs, ft, fe = (extract_features(net, d.X, verbose=True) for d in (source, target, test))
        extract_s = time.perf_counter() - t0
        vs, vt, ve = Domain(fs, source.y), Domain(ft), Domain(fe, test.y)
        row["ImageNet + logistic regression"] = LogisticRegression(max_iter=3000).fit(fs, source.y).score(fe, test.y)
        t0 = time.perf_counter()
        row["ImageNet + source-only"] = SourceOnly(seed=0).fit(vs).score(ve)
        row["ImageNet + DANN"] = DANN(seed=0).fit(vs, vt).score(ve)
        head_s = time.perf_counter() - t0
        rows.append({k: v if isinstance(v, str) else f"{v:.3f}" for k, v in row.items()})
        print(rows[-1], file=sys.stderr, flush=True)
        # a full fine-tuning epoch, from the time of a few DANN steps on the whole network
        model = DANN(backbone=net, batch_size=32, epochs=1, seed=0)
        few = 4 * 32
        t0 = time.perf_counter()
        model.fit(Domain(source.X[:few], source.y[:few]), Domain(target.X[:few]))
        per_step = (time.perf_counter() - t0) / 4
        timing.append(
            {
                "task": name,
                "from scratch (s, both runs)": f"{scratch_s:.0f}",
                "features, once (s)": f"{extract_s:.0f}",
                "on features (s, both runs)": f"{head_s:.0f}",
                "fine-tuning EfficientNet (s per epoch)": f"{per_step * len(source) / 32:.0f}",
            }
        )
    print(f"EfficientNet-Lite0 on {args.size}x{args.size} inputs, {torch.get_num_threads()} threads.\n")
    print(markdown_table(rows))
    print()
    print(markdown_table(timing))


if __name__ == "__main__":
    main()
