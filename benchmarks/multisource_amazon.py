"""Several sources at once: Amazon reviews, three product groups -> the fourth.

**Protocol: defaults.** The raw 5000-d counts of the DANN paper's files (the suite's inputs, no
binarising), each source's 2000 labelled reviews, the target's 2000 unlabelled training reviews,
scored on the target's test file. Every model has its defaults. For each family (``--family``):
the multi-source method on the three sources (MDAN for DANN, multi-source DAN for DAN,
multi-source SHOT for SHOT); the
single-source method on the three pooled into one; on each single source, their mean, and the best
of the three (**oracle**: the best source is picked on the target's test labels, a ceiling).

    python benchmarks/multisource_amazon.py --seeds 1 --family dann
    python benchmarks/multisource_amazon.py --seeds 1 --family dan
    python benchmarks/multisource_amazon.py --seeds 1 --family shot
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from transferkit import DAN, DANN, MDAN, SHOT, Domain, MultiSourceDAN, MultiSourceSHOT
from transferkit.datasets import load_domain
from transferkit.report import markdown_table

DOMAINS = ("books", "dvd", "electronics", "kitchen")
#: Per family: (label, the multi-source method, the single-source method).
FAMILIES = {
    "dann": ("MDAN", MDAN, DANN),
    "dan": ("multi-source DAN", MultiSourceDAN, DAN),
    "shot": ("multi-source SHOT", MultiSourceSHOT, SHOT),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="dann")
    args = parser.parse_args()
    label, multi, single = FAMILIES[args.family]
    one = single.__name__
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = []
    for target_name in DOMAINS:
        sources = [load_domain(f"amazon:{d}", "train") for d in DOMAINS if d != target_name]
        target = load_domain(f"amazon:{target_name}", "train").unlabelled()
        test = load_domain(f"amazon:{target_name}", "test")
        cells: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            pooled = Domain(np.concatenate([s.X for s in sources]), np.concatenate([s.y for s in sources]))
            singles = [single(seed=seed).fit(s, target).score(test) for s in sources]
            for key, value in (
                (f"{label} (3 sources)", multi(seed=seed).fit(sources, target).score(test)),
                (f"{one}, sources pooled", single(seed=seed).fit(pooled, target).score(test)),
                (f"{one}, single source (mean)", float(np.mean(singles))),
                (f"{one}, best single source (oracle)", max(singles)),
            ):
                cells.setdefault(key, []).append(value)
        rows.append({"target": target_name, **{k: f"{np.mean(v):.3f}" for k, v in cells.items()}})
        print(rows[-1], file=sys.stderr, flush=True)
    means = {k: np.mean([float(r[k]) for r in rows]) for k in rows[0] if k != "target"}
    rows.append({"target": "**mean**", **{k: f"**{v:.3f}**" for k, v in means.items()}})
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
