"""``transferkit methods``: every method by what is labelled (the lecture's map)."""

from __future__ import annotations

from transferkit.cli._common import add_command, print_json


def add_parser(sub) -> None:
    p = add_command(
        sub, "methods", "list every method by what is labelled (the lecture's map)", "transferkit methods --json"
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=handle)


def _task(name: str, cls, families: dict) -> str:
    for task, members in (("many tasks", "MANY_TASKS"), ("zero-shot", "ZERO_SHOT"), ("clustering", "CLUSTERING")):
        if name in families[members]:
            return getattr(cls, "task", task)
    return getattr(cls, "task", "classification")


def _note(name: str, cls, families: dict) -> str:
    if name in families["ZERO_SHOT"]:
        note = "  [zero-shot: --unseen; the target classes are never seen]"
    elif name in families["CLUSTERING"]:
        note = "  [clustering: --target to cluster" + (", --source auxiliary]" if name == "stc" else "]")
    elif name in families["MULTI_SOURCE"]:
        note = "  [several sources: --source A,B,...]"
    elif name in families["POOLED"]:
        note = "  [--pool: candidate intermediate domains]"
    elif getattr(cls, "test_time", False):
        note = "  [test time: adapts to the target samples it predicts]"
    else:
        note = "" if cls.setting.target else "  [baseline: ignores target data]"
    note += "  [regression]" if getattr(cls, "task", "") == "regression" else ""
    note += "  [many tasks: --tasks / --sequence]" if name in families["MANY_TASKS"] else ""
    return note


def handle(args) -> int:
    from transferkit import methods
    from transferkit.methods.base import QUADRANTS

    names = ("REGISTRY", "REGRESSORS", "MANY_TASKS", "ZERO_SHOT", "CLUSTERING", "POOLED", "MULTI_SOURCE")
    families = {n: getattr(methods, n) for n in names}
    every = {k: v for family in families.values() for k, v in family.items()}
    if args.json:
        rows = [
            {
                "name": name,
                "class": cls.__name__,
                "quadrant": cls.setting.quadrant,
                "source_labels": cls.setting.source_labels,
                "target_labels": cls.setting.target_labels,
                "uses_target": cls.setting.target,
                "task": _task(name, cls, families),
                "description": cls.description,
                "paper": cls.paper,
            }
            for name, cls in every.items()
        ]
        print_json(rows)
        return 0
    for key, quadrant in QUADRANTS.items():
        members = [(n, c) for n, c in every.items() if (c.setting.source_labels, c.setting.target_labels) == key]
        print(f"{quadrant}:")
        if not members:
            print("  (none yet)")
        for name, cls in members:
            print(f"  {name:<14} {cls.description}{_note(name, cls, families)}")
            print(f"  {'':<14} {cls.paper}")
        print()
    return 0
