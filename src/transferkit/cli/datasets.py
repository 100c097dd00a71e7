"""``transferkit datasets``: known datasets and domains, and whether their files are present."""

from __future__ import annotations

import dataclasses

from transferkit.cli._common import add_command, print_json


def add_parser(sub) -> None:
    p = add_command(
        sub,
        "datasets",
        "list known datasets/domains and whether their files are present",
        "TRANSFERKIT_DATA=/path/to/data transferkit datasets",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from transferkit.datasets import data_dir, list_domains

    root = data_dir()
    infos = list_domains()
    if args.json:
        print_json([{**dataclasses.asdict(info), "present": info.present()} for info in infos])
        return 0
    print(f"data directory: {root}  (set TRANSFERKIT_DATA to change it)\n")
    by_dataset: dict[str, list] = {}
    for info in infos:
        by_dataset.setdefault(info.dataset, []).append(info)
    for dataset, members in by_dataset.items():
        present = [i for i in members if i.present()]
        status = "present" if len(present) == len(members) else f"{len(present)}/{len(members)} present"
        if not present:
            status = "missing"
        first = members[0]
        names = [i.domain for i in members]
        shown = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:4])}, ... {names[-1]} ({len(names)})"
        print(f"{dataset:<11} [{status}] {first.kind}: {shown}")
        for origin in dict.fromkeys(i.source for i in members):
            print(f"{'':<11} {origin}")
    if not all(i.present() for i in infos):
        print(
            "\nmissing files: set TRANSFERKIT_DATA to the folder holding the datasets' folders "
            "(amazon_reviews_dann/, mnist_small/, ...); `transferkit run` names the exact file it looked for."
        )
    return 0
