"""Should I transfer, and from where? The quadrant, the methods that fit, and a ranking of sources.

:func:`advise` answers from the data alone, before any transfer method is trained:

1. **the quadrant**: which of the lecture's four cases the user is in, from what is labelled;
2. **the methods** of that quadrant (from the registries);
3. **a ranking of the candidate sources**:
   - with labelled target samples: a quick source network is trained on each labelled source and
     its features and predictions on the labelled target samples are scored by LogME, LEEP and
     NCE (higher is better);
   - without target labels: by the proxy A-distance between source and target inputs (lower is
     better);
4. **the expected gain and a negative-transfer flag** for each source, when target labels exist:
   :func:`~transferkit.advice.negative_transfer.transfer_gain` compares a classifier on the source
   network's features of the target samples with one on the raw target inputs, on the same folds
   (``check="probe"``); :func:`~transferkit.advice.negative_transfer.finetune_gain` fine-tunes the source
   network against training the same network from scratch (``check="finetune"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from transferkit.data import Domain
from transferkit.methods.base import QUADRANTS

__all__ = ["Advice", "advise"]


@dataclass
class Advice:
    """What :func:`advise` found; ``to_text()`` for people, ``as_dict()`` for tools."""

    quadrant: str
    source_labelled: bool
    target_labelled: bool
    methods: list[dict]
    ranking: list[dict] = field(default_factory=list)
    ranked_by: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "quadrant": self.quadrant,
            "source_labelled": self.source_labelled,
            "target_labelled": self.target_labelled,
            "methods": self.methods,
            "ranking": self.ranking,
            "ranked_by": self.ranked_by,
            "warnings": self.warnings,
        }

    def to_text(self) -> str:
        lines = [f"You are in the quadrant: {self.quadrant}.", "", "Methods that fit:"]
        lines += [f"  {m['name']:<20} {m['description']}" for m in self.methods]
        if self.ranking:
            lines += ["", f"Candidate sources, best first (by {self.ranked_by}):"]
            for r in self.ranking:
                scores = "  ".join(f"{k} {v:.3f}" for k, v in r.items() if isinstance(v, float))
                verdict = f"  [{r['verdict']}]" if "verdict" in r else ""
                lines.append(f"  {r['source']:<24} {scores}{verdict}")
            shown = [k for k in MEANING if any(k in r for r in self.ranking)]
            lines += ["", "What the numbers mean:"] + [f"  {k:<10} {MEANING[k]}" for k in shown]
        if self.warnings:
            lines += [""] + [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


#: What each number of the ranking means, printed under it.
MEANING = {
    "a_distance": "proxy A-distance between source and target inputs: 0 indistinguishable, 2 perfectly separable",
    "logme": "LogME, the evidence that the source network's features predict the target labels (higher is better)",
    "leep": "LEEP, log-likelihood of the target labels through the source network's predictions (0 at best)",
    "nce": "NCE, how well the source network's predicted classes determine the target labels (0 at best)",
    "gain": "target accuracy with the source's network or features minus target-only, on held-out folds",
    "std_err": "standard error of that gain over the folds",
}


def _methods_for(
    source_labelled: bool, target_labelled: bool, vectors: bool, class_descriptions: bool, n_sources: int
) -> list[dict]:
    """The quadrant's methods that can run on these data: zero-shot methods only with class descriptions,
    transitive transfer only with other domains to bridge through, CORAL and TCA only on feature vectors."""
    from transferkit.methods import CLUSTERING, MANY_TASKS, POOLED, REGISTRY, ZERO_SHOT

    every = {**REGISTRY, **MANY_TASKS, **ZERO_SHOT, **CLUSTERING, **POOLED}
    out = []
    for name, cls in every.items():
        s = cls.setting
        if (s.source_labels, s.target_labels) != (source_labelled, target_labelled):
            continue
        if (name in ZERO_SHOT and not class_descriptions) or (name in POOLED and n_sources < 2):
            continue
        if name in ("coral", "tca") and not vectors:
            continue
        out.append({"name": name, "description": cls.description, "paper": cls.paper})
    return out


def _source_network(source: Domain, seed: int, epochs: int):
    from transferkit.methods.source_only import SourceOnly

    return SourceOnly(epochs=epochs, seed=seed, device="cpu").fit(source)


def advise(
    sources,
    target: Domain,
    *,
    seed: int = 0,
    epochs: int = 10,
    max_samples: int = 2000,
    check: str = "probe",
    check_epochs: int = 30,
    class_descriptions: bool = False,
) -> Advice:
    """Advice for transferring from ``sources`` to ``target``.

    Parameters
    ----------
    sources : dict of str to Domain, or a Domain
        Candidate source domains (labelled or not), by name.
    target : Domain
        The target; its labels, if any, are the few labelled target samples the user has.
    seed : int
    epochs : int
        Training of the quick source networks used for LogME / LEEP / NCE.
    max_samples : int
        Samples per domain used for the A-distance.
    check : {"probe", "finetune"}
        The negative-transfer check: linear probes on the source features against the raw inputs
        (:func:`~transferkit.advice.negative_transfer.transfer_gain`, fast), or the source network
        fine-tuned against the same network trained from scratch, inside the folds
        (:func:`~transferkit.advice.negative_transfer.finetune_gain`, ten trainings per source; the
        fairer check for images).
    check_epochs : int
        Training epochs of each network of the ``"finetune"`` check.
    class_descriptions : bool
        Whether you have a description of every class (attributes, names to embed): only then are
        the zero-shot methods offered.
    """
    from transferkit.advice.negative_transfer import finetune_gain, transfer_gain
    from transferkit.metrics.divergence import proxy_a_distance
    from transferkit.metrics.transferability import leep, logme, nce

    if check not in ("probe", "finetune"):
        raise ValueError(f"check={check!r}; expected 'probe' or 'finetune'.")
    if isinstance(sources, Domain):
        sources = {sources.name or "source": sources}
    if not sources:
        raise ValueError("sources is empty; expected at least one candidate source domain.")
    if not isinstance(target, Domain):
        raise TypeError(f"target is {type(target).__name__}; expected a Domain (labels optional).")
    for name, s in sources.items():
        if s.feature_shape != target.feature_shape:
            raise ValueError(
                f"source {name!r} has samples of shape {s.feature_shape}; the target has {target.feature_shape}."
            )
    labelled = [s.y is not None for s in sources.values()]
    source_labelled = all(labelled)
    target_labelled = target.y is not None
    if target_labelled and len(np.unique(target.y)) < 2:
        raise ValueError(f"target.y has a single class ({np.unique(target.y).tolist()}); nothing to rank sources for.")
    advice = Advice(
        QUADRANTS[(source_labelled, target_labelled)],
        source_labelled,
        target_labelled,
        _methods_for(
            source_labelled, target_labelled, len(target.feature_shape) == 1, class_descriptions, len(sources)
        ),
    )
    if any(labelled) and not all(labelled):
        advice.warnings.append("some sources are labelled and some are not; the quadrant assumes none are.")
    rng = np.random.default_rng(seed)

    def sample(X):
        return X[rng.permutation(len(X))[:max_samples]]

    if not (target_labelled and source_labelled):
        target_sample = sample(target.X)  # one draw, so that every source is measured against the same
        for name, s in sources.items():
            advice.ranking.append(
                {"source": name, "a_distance": proxy_a_distance(sample(s.X), target_sample, seed=seed)}
            )
        advice.ranking.sort(key=lambda r: r["a_distance"])
        advice.ranked_by = "proxy A-distance to the target inputs, lower is better"
        return advice
    for name, s in sources.items():
        net = _source_network(s, seed, epochs)
        features = net.transform(target.X)
        proba = net.predict_proba(target.X)
        row = {
            "source": name,
            "logme": logme(features, target.y),
            "leep": leep(proba, target.y),
            "nce": nce(net.classes_[proba.argmax(1)], target.y),
        }
        if check == "finetune":
            gain = finetune_gain(net.model_, target.X, target.y, seed=seed, epochs=check_epochs, device="cpu")
        else:
            gain = transfer_gain(features, target.X, target.y, seed=seed)
        row.update({"gain": gain.gain, "std_err": gain.std_err, "verdict": gain.verdict})
        if gain.likely_negative:
            what = "fine-tuning its network" if check == "finetune" else "a classifier on its features"
            advice.warnings.append(
                f"source {name!r} is likely to hurt: {what} scores {-gain.gain:.3f} below target-only "
                f"on held-out labelled target samples (standard error {gain.std_err:.3f})."
            )
        advice.ranking.append(row)
    advice.ranking.sort(key=lambda r: -r["logme"])
    advice.ranked_by = "LogME of the source network's features on the labelled target samples, higher is better"
    return advice
