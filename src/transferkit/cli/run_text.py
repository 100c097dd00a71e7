"""The run records of ``transferkit run`` as text, one shape per kind of method."""

from __future__ import annotations

__all__ = ["print_record"]


def print_record(record: dict, predictions: str | None = None) -> None:
    method = record["method"]
    if method in ("stc", "itcc"):
        _clustering(record)
    elif method == "transitive":
        bridge = " -> ".join([record["source"], *record["path"], record["target"]])
        print(f"transitive: {bridge}  target accuracy {record['target_accuracy']:.4f}  ({record['seconds']:.1f} s)")
    elif "zsl" in record:
        print(
            f"{method} on {record['source']} ({record['semantics']}), unseen {record['unseen_classes']}:"
            f"  ZSL {record['zsl']:.4f}  GZSL seen {record['seen']:.4f} unseen {record['unseen']:.4f} "
            f"H {record['H']:.4f} (gamma {record['calibration']})  AUSUC {record['ausuc']:.4f}"
            f"  ({record['seconds']:.1f} s, seed {record['seed']})"
        )
    elif method == "progressive":
        _progressive(record)
    elif method == "multitask":
        for task, metrics in record["per_task"].items():
            print(f"{task:<24} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        means = {k: v for k, v in record.items() if k.startswith("mean_")}
        print("mean: " + "  ".join(f"{k[5:]} {v:.4f}" for k, v in means.items()) + f"  ({record['seconds']:.1f} s)")
    else:
        _pair(record, predictions)


def _clustering(record: dict) -> None:
    print(
        f"{record['method']}: {record['n_target']} samples of {record['target']}"
        + (f" with {record['n_auxiliary']} of {record['source']}" if record["source"] else "")
        + (
            f"  clustering accuracy {record['clustering_accuracy']:.4f}  NMI {record['nmi']:.4f}"
            if record["nmi"] is not None
            else "  (no target labels, no score)"
        )
        + f"  ({record['seconds']:.1f} s, seed {record['seed']})"
    )


def _progressive(record: dict) -> None:
    for stage in record["stages"]:
        accs = "  ".join(f"{t} {a:.4f}" for t, a in stage["accuracy"].items())
        print(f"after {stage['after']}: {accs}")
    print(f"parameters per column: {record['parameters_per_column']}")
    print(f"lateral scales (alpha): {record['lateral_scales']}")
    print(f"lateral usage (lateral / own input norm, per layer and earlier column): {record['lateral_usage']}")


def _pair(record: dict, predictions: str | None) -> None:
    selection = record.get("selection")
    if selection:
        print(f"selected by {selection['validator']} (higher is better):")
        for c in selection["candidates"]:
            mark = "*" if c["params"] == selection["best_params"] else " "
            print(f"  {mark} {c['params']}  {c[selection['validator']]:.4f}")
        if selection["uses_target_labels"]:
            print(f"  {selection['note']}")
    decision = record.get("decision")
    if decision:  # auto: what it chose and why
        print(f"auto: {decision['why']}")
        if decision.get("weights_note"):
            print(f"note: {decision['weights_note']}")
    if record.get("target_accuracy", 0) is None or record.get("target_r2", 0) is None:
        score = "no target labels, no score" + (f"; predictions in {predictions}" if predictions else "")
    elif "target_r2" in record:
        score = f"target R² {record['target_r2']:.4f}, RMSE {record['target_rmse']:.4g}"
    else:
        score = f"target accuracy {record['target_accuracy']:.4f}"
    print(
        f"{record['method']}: {record['source']} -> {record['target']}  "
        f"{score}  ({record['seconds']:.1f} s, seed {record['seed']})"
    )
