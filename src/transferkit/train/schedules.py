r"""Learning-rate schedules as explicit functions of training progress :math:`p \in [0, 1]`."""

from __future__ import annotations

__all__ = ["LR_SCHEDULES", "constant_lr", "ganin_lr", "lr_at"]


def constant_lr(progress: float, lr0: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The initial learning rate throughout."""
    return lr0


def ganin_lr(progress: float, lr0: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    r"""Ganin's annealing (JMLR 2016, Sec. 5.2.2):

    .. math:: \mu_p = \frac{\mu_0}{(1 + \alpha p)^\beta}, \quad \alpha = 10,\ \beta = 0.75.
    """
    return lr0 / (1.0 + alpha * progress) ** beta


LR_SCHEDULES = {"constant": constant_lr, "ganin": ganin_lr}


def lr_at(schedule: str, progress: float, lr0: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The learning rate of the named schedule at ``progress``."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule={schedule!r}; expected one of {sorted(LR_SCHEDULES)}.")
    return LR_SCHEDULES[schedule](progress, lr0, alpha, beta)
