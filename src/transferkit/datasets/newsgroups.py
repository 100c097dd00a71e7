"""20 Newsgroups cross-domain pairs from MALSAR (Zhou, Chen & Ye 2011).

Two binary problems, each with two tasks drawn from different sub-categories of the same two
top categories, over one shared 2000-word vocabulary (raw counts, float32, unscaled); labels
1/2 -> 0/1. The usual cross-domain construction of Dai et al. (KDD 2007 / ICML 2007): train on
one task, adapt to the other.

``newsgroups:comp-vs-sci-1|2``, ``newsgroups:rec-vs-talk-1|2``: ``train`` / ``test`` are one
fixed stratified split (seed 0, 2/3 / 1/3); ``all`` is every document.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import DomainInfo, _Spec, folder_hint, needs, read_mat, split_index

FILES = {
    "comp-vs-sci-1": "malsar_mtl/Newsgroup/comp.vs.sci/task1.mat",
    "comp-vs-sci-2": "malsar_mtl/Newsgroup/comp.vs.sci/task2.mat",
    "rec-vs-talk-1": "malsar_mtl/Newsgroup/rec.vs.talk/Task1.mat",
    "rec-vs-talk-2": "malsar_mtl/Newsgroup/rec.vs.talk/Task2.mat",
}
TEST_FRACTION = 1 / 3
SEED = 0


def _load(domain: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        m = read_mat(str(root / FILES[domain]))
        y = m["gnd"].ravel().astype(np.int64) - 1
        idx = split_index(y, split, TEST_FRACTION, SEED)
        return m["fea"].tocsr()[idx].toarray().astype(np.float32), y[idx]

    return load


def specs() -> list[_Spec]:
    """The registry records of the four newsgroup tasks."""
    out = []
    for domain, file in FILES.items():
        problem, task = domain.rsplit("-", 1)
        a, b = problem.split("-vs-")
        info = DomainInfo(
            f"newsgroups:{domain}",
            "newsgroups",
            domain,
            "features",
            2,
            f"20 Newsgroups {a} vs {b}, task {task}: 2000-d word counts; stratified 2/3 / 1/3 split",
            "20 Newsgroups (Lang 1995), cross-domain tasks as in Dai et al. 2007, MALSAR copy",
        )
        out.append(_Spec(info, _load(domain), needs(file), folder_hint("malsar_mtl", "newsgroups")))
    return out
