"""Warnings read off a training history: runs that diverged or whose adversary won outright."""

from __future__ import annotations

__all__ = ["UNFITTED", "training_warnings"]

#: The share of the way from chance to perfect source accuracy under which a run has not fitted.
UNFITTED = 0.2


def training_warnings(
    history: list[dict[str, float]],
    drop: float = 0.25,
    domain_win: float = 0.99,
    n_classes: int | None = None,
    labelled: str = "source",
    alignment: bool = False,
) -> list[str]:
    """Messages for the failure modes a user would otherwise not notice.

    - *never fitted*: with ``n_classes`` given, the training accuracy on the source ends having
      closed at most a fifth of the gap from chance, 1 / ``n_classes``, to 1 (0.6 for two classes,
      0.24 for twenty): an alignment term switched on before the features exist can flatten them
      for good;
    - *diverged*: the training accuracy on the source fell by more than ``drop`` from its best
      epoch (an unstable adversarial game can wreck the features late in training);
    - *collapse*: one class takes 95% or more of the target predictions (needs the per-epoch
      diagnostics, ``diagnostics=True``);
    - *discriminator wins*: the domain classifier separates the domains with accuracy
      ``>= domain_win`` over the last three epochs, so the features are not domain-invariant.

    ``labelled`` names the domain whose labels the network trains on (the history logs its training
    accuracy as ``f"{labelled}_acc"``: ``"target"`` when fine-tuning on labelled target examples);
    ``alignment`` says the objective has an alignment term, the remedies then include its weight.
    """
    out = []
    key = f"{labelled}_acc"
    acc = [(h["epoch"], h[key]) for h in history if key in h]
    chance = 1.0 / n_classes if n_classes else None
    if acc and chance is not None and (acc[-1][1] - chance) / (1.0 - chance) <= UNFITTED:
        cause = (
            ", or an alignment term that flattened the features before they formed (then try a smaller "
            "lambda_max or lambda_schedule='ganin')."
            if alignment
            else "."
        )
        out.append(
            f"the network never fitted the {labelled}: {labelled} accuracy {acc[-1][1]:.3f} at the end, chance "
            f"is {chance:.3f}: too few epochs or too small a learning rate{cause}"
        )
    if acc:
        best_epoch, best = max(acc, key=lambda t: t[1])
        last_epoch, last = acc[-1]
        if best - last > drop:
            out.append(
                f"training diverged: {labelled} accuracy fell from {best:.3f} (epoch {best_epoch}) to {last:.3f} "
                f"(epoch {last_epoch}); try a smaller lr{' or lambda_max' if alignment else ''}, "
                "or FitConfig.grad_clip."
            )
    share = [h["target_top_class_share"] for h in history if "target_top_class_share" in h]
    if share and share[-1] >= 0.95:
        out.append(
            f"the run collapsed: {share[-1]:.0%} of the target predictions fall in one class; "
            "the features may have lost the class structure (try a smaller lambda_max)."
        )
    dom = [h["domain_acc"] for h in history if "domain_acc" in h][-3:]
    if len(dom) == 3 and min(dom) >= domain_win:
        out.append(
            f"the domain classifier wins outright (accuracy {min(dom):.3f} or more over the last 3 epochs): "
            "the features still tell the domains apart; try a larger lambda_max or more epochs."
        )
    return out
