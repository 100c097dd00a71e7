"""transferkit: transfer learning for every combination of labelled and unlabelled data.

Two tiers share one set of conventions:

* estimators on plain arrays, ``DANN(...).fit(Domain(Xs, ys), Domain(Xt)).predict(X)``;
* torch-native parts for people who own their loop: :mod:`transferkit.nn`
  (``grad_reverse``, ``GradientReversal``, backbones with named stages) and
  :func:`transferkit.train.fit_loop`.
"""

from transferkit._version import __version__
from transferkit.data import Domain, Task
from transferkit.methods import (
    BDA,
    CDAN,
    CORAL,
    DAN,
    DANN,
    DAP,
    DDC,
    JDA,
    MDAN,
    MEDA,
    REGISTRY,
    REGRESSORS,
    SHOT,
    TCA,
    TENT,
    AttributeEmbedding,
    Auto,
    ConSE,
    DeepCORAL,
    DeViSE,
    FineTune,
    InformationTheoreticCoClustering,
    MultiSourceDAN,
    MultiSourceSHOT,
    MultiTask,
    ProgressiveNetwork,
    SelfTaught,
    SelfTaughtClustering,
    SourceOnly,
    TargetOnly,
    TrAdaBoost,
    TrAdaBoostR2,
    TransitiveTransfer,
    TwoStageTrAdaBoostR2,
    get_method,
)
from transferkit.nn import GradientReversal, ganin_lambda, grad_reverse
from transferkit.persist import load
from transferkit.selection import select
from transferkit.semantics import ClassDescriptions, attribute_table, embed_class_names
from transferkit.train import FitConfig, fit_loop

__all__ = [
    "CDAN",
    "AttributeEmbedding",
    "BDA",
    "Auto",
    "CORAL",
    "ClassDescriptions",
    "ConSE",
    "DAP",
    "DeViSE",
    "DAN",
    "DANN",
    "DDC",
    "DeepCORAL",
    "REGISTRY",
    "REGRESSORS",
    "TCA",
    "TENT",
    "Domain",
    "FineTune",
    "FitConfig",
    "InformationTheoreticCoClustering",
    "JDA",
    "MDAN",
    "MultiSourceDAN",
    "MultiSourceSHOT",
    "MEDA",
    "GradientReversal",
    "MultiTask",
    "ProgressiveNetwork",
    "SHOT",
    "SelfTaught",
    "SelfTaughtClustering",
    "SourceOnly",
    "TargetOnly",
    "Task",
    "TrAdaBoost",
    "TrAdaBoostR2",
    "TransitiveTransfer",
    "TwoStageTrAdaBoostR2",
    "__version__",
    "attribute_table",
    "embed_class_names",
    "fit_loop",
    "ganin_lambda",
    "get_method",
    "load",
    "grad_reverse",
    "select",
]
