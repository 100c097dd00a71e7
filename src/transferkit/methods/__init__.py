"""Transfer-learning methods, one per file, and the registry by name."""

from transferkit.methods.attribute_embedding import AttributeEmbedding
from transferkit.methods.auto import Auto
from transferkit.methods.base import NeuralTransferMethod, Setting, TransferMethod, as_domain
from transferkit.methods.cdan import CDAN
from transferkit.methods.conse import ConSE
from transferkit.methods.coral import CORAL
from transferkit.methods.dan import DAN
from transferkit.methods.dann import DANN
from transferkit.methods.dap import DAP
from transferkit.methods.ddc import DDC
from transferkit.methods.deep_coral import DeepCORAL
from transferkit.methods.devise import DeViSE
from transferkit.methods.finetune import FineTune, TargetOnly
from transferkit.methods.jda import BDA, JDA
from transferkit.methods.mdan import MDAN
from transferkit.methods.meda import MEDA
from transferkit.methods.ms_dan import MultiSourceDAN
from transferkit.methods.ms_shot import MultiSourceSHOT
from transferkit.methods.multitask import MultiTask
from transferkit.methods.progressive import ProgressiveNetwork
from transferkit.methods.self_taught import SelfTaught
from transferkit.methods.self_taught_clustering import InformationTheoreticCoClustering, SelfTaughtClustering
from transferkit.methods.shot import SHOT
from transferkit.methods.source_only import SourceOnly
from transferkit.methods.tca import TCA
from transferkit.methods.tent import TENT
from transferkit.methods.tradaboost import TrAdaBoost
from transferkit.methods.tradaboost_r2 import TrAdaBoostR2, TwoStageTrAdaBoostR2
from transferkit.methods.transitive import TransitiveTransfer

#: Every method by its command-line name.
REGISTRY: dict[str, type[TransferMethod]] = {
    cls.name: cls
    for cls in (
        SourceOnly,
        DANN,
        CDAN,
        DDC,
        DAN,
        DeepCORAL,
        CORAL,
        TCA,
        JDA,
        BDA,
        MEDA,
        TENT,
        SHOT,
        TrAdaBoost,
        FineTune,
        TargetOnly,
        SelfTaught,
        Auto,
    )
}

#: Regression methods by name (``task = "regression"``), kept apart from REGISTRY: its estimator contract
#: and the command line's accuracy report assume class labels.
REGRESSORS: dict[str, type[TransferMethod]] = {cls.name: cls for cls in (TrAdaBoostR2, TwoStageTrAdaBoostR2)}


#: Methods that learn several tasks at once or in sequence (``transferkit run multitask --tasks ...``,
#: ``run progressive --sequence ...``); their ``fit`` takes a dict of tasks, not a source and a target.
MANY_TASKS = {cls.name: cls for cls in (MultiTask, ProgressiveNetwork)}

#: Zero-shot methods (``transferkit run dap --source fashion:mnist --unseen 2,3,5``): fitted on seen
#: classes with a description of every class, ``fit(X, y, descriptions)``.
ZERO_SHOT = {cls.name: cls for cls in (DAP, AttributeEmbedding, DeViSE, ConSE)}

#: Clustering without any labels (``transferkit run stc --source AUX --target TARGET``): ``fit(X, auxiliary)``.
CLUSTERING = {cls.name: cls for cls in (SelfTaughtClustering, InformationTheoreticCoClustering)}

#: Several labelled sources, one unlabelled target (``transferkit run mdan --source A,B,C --target T``):
#: ``fit([source_1, source_2, ...], target)``.
MULTI_SOURCE = {cls.name: cls for cls in (MDAN, MultiSourceDAN, MultiSourceSHOT)}

#: Transfer through intermediate domains (``transferkit run transitive ... --pool A,B``): ``fit(source, target, pool)``.
POOLED = {cls.name: cls for cls in (TransitiveTransfer,)}


def get_method(name: str) -> type[TransferMethod]:
    """The method registered as ``name`` (classifier or regressor); a clear error listing the names otherwise."""
    known = {**REGISTRY, **REGRESSORS}
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key not in known:
        import difflib

        every = sorted({**known, **MANY_TASKS, **ZERO_SHOT, **CLUSTERING, **POOLED, **MULTI_SOURCE})
        close = difflib.get_close_matches(str(key), every, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown method {name!r}.{hint} Known methods: {', '.join(every)}.")
    return known[key]


__all__ = [
    "AttributeEmbedding",
    "BDA",
    "Auto",
    "CDAN",
    "CLUSTERING",
    "CORAL",
    "ConSE",
    "DAN",
    "DANN",
    "DAP",
    "DDC",
    "DeViSE",
    "DeepCORAL",
    "FineTune",
    "InformationTheoreticCoClustering",
    "JDA",
    "MEDA",
    "MDAN",
    "MultiSourceDAN",
    "MultiSourceSHOT",
    "MANY_TASKS",
    "MULTI_SOURCE",
    "MultiTask",
    "NeuralTransferMethod",
    "POOLED",
    "ProgressiveNetwork",
    "REGISTRY",
    "REGRESSORS",
    "SHOT",
    "SelfTaught",
    "SelfTaughtClustering",
    "Setting",
    "SourceOnly",
    "TCA",
    "TENT",
    "TargetOnly",
    "TrAdaBoost",
    "TrAdaBoostR2",
    "TransferMethod",
    "TransitiveTransfer",
    "TwoStageTrAdaBoostR2",
    "ZERO_SHOT",
    "as_domain",
    "get_method",
]
