"""Multilingual spoken digits: shared lower layers and a head per language, against one model per language.

The lecture's multilingual speech recogniser (Huang et al., ICASSP 2013: shared hidden layers, a
softmax per language): the digits 0-9 spoken in four languages by espeak-ng voices
(``spoken:{en,de,fr,es}``, 20 voices each, log-mel 40 x 50 flattened), each language a task of its
own (its words differ: "seven", "sieben", "sept", "siete"). Rows:

- **one model per language**: the same network trained on that language alone (at least 600
  steps, so the scarce language's model is not starved of updates);
- **shared layers, a head per language**: :class:`transferkit.MultiTask`, equal weights, trained
  for as many optimiser steps as the per-language models take together; batches mix the languages
  in proportion to their sizes, or (**balanced batches**) every language equally often.

Two settings: every language with all its training utterances (1400), and one language made scarce
(``--scarce``, default German, kept to ``--k`` utterances per digit; the others keep all theirs).
The lecture's claim: the low-resource language gains most from the shared layers.

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/multilingual.py --seeds 3

Writes ``multilingual.json`` and ``multilingual.md`` to ``--out``. The first run synthesises the
voices (about a minute per language; cached).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _records import Records, epochs_for
from transferkit.datasets import load_domain
from transferkit.methods.multitask import MultiTask
from transferkit.report import markdown_table, mean_std

OUT = Path(__file__).resolve().parent / "out"
LANGUAGES = ("en", "de", "fr", "es")
MODELS = ("one model per language", "shared layers, a head per language", "shared layers, balanced batches")
SETTINGS = dict(hidden=(256, 128), epochs=30, batch_size=64, lr=1e-3, weight_decay=1e-4, device="cpu")


def load(languages, scarce: str | None, k: int, seed: int):
    train, test = {}, {}
    for lang in languages:
        tr, te = load_domain(f"spoken:{lang}", "train"), load_domain(f"spoken:{lang}", "test")
        if lang == scarce:
            tr = tr.few_shot(k, seed=seed)
        train[lang] = (tr.X.reshape(len(tr), -1), tr.y)
        test[lang] = (te.X.reshape(len(te), -1), te.y)
    return train, test


def report(rows: list[dict], languages) -> str:
    lines = ["## Multilingual spoken digits: shared layers and a head per language\n"]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        seeds = sorted({r["seed"] for r in mine})
        table = []
        for model in MODELS:
            rs = [r for r in mine if r["model"] == model]
            line = {"model": model}
            for lang in languages:
                line[lang] = mean_std([r["accuracy"][lang] for r in rs]) if rs else ""
            line["mean"] = mean_std([np.mean(list(r["accuracy"].values())) for r in rs]) if rs else ""
            table.append(line)
        lines.append(f"### {setting} ({len(seeds)} seeds)\n")
        lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    parser.add_argument("--scarce", default="de", help="the language kept to --k utterances per digit")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    records = Records(args.out / "multilingual.json", {"settings": repr(SETTINGS), "k": args.k})
    settings = {"all data": None, f"{args.scarce} scarce ({args.k} per digit)": args.scarce}
    for seed in range(args.seeds):
        for setting, scarce in settings.items():
            train = test = None
            for model in MODELS:
                key = dict(setting=setting, seed=seed, model=model)
                if records.has(key):
                    continue
                if train is None:
                    train, test = load(args.languages, scarce, args.k, seed)
                t0 = time.perf_counter()
                if model == "one model per language":
                    fitted = {}
                    for lang, d in train.items():  # a scarce language still gets its 600 steps or more
                        epochs = max(SETTINGS["epochs"], epochs_for(len(d[1]), SETTINGS["batch_size"], 600))
                        fitted[lang] = MultiTask(**{**SETTINGS, "epochs": epochs}, seed=seed).fit({lang: d})
                    acc = {lang: float(np.mean(fitted[lang].predict(X, lang) == y)) for lang, (X, y) in test.items()}
                else:  # as many optimiser steps as the per-language models take together
                    bs = SETTINGS["batch_size"]
                    steps = sum(
                        max(SETTINGS["epochs"], epochs_for(len(y), bs, 600)) * max(1, len(y) // min(bs, len(y)))
                        for _, y in train.values()
                    )
                    epochs = epochs_for(sum(len(y) for _, y in train.values()), bs, steps)
                    sampling = "balanced" if "balanced" in model else "proportional"
                    if sampling == "balanced":  # the packed data grow to 4 x the largest language
                        epochs = epochs_for(len(train) * max(len(y) for _, y in train.values()), bs, steps)
                    shared = MultiTask(**{**SETTINGS, "epochs": epochs}, seed=seed, sampling=sampling).fit(train)
                    acc = {lang: float(np.mean(shared.predict(X, lang) == y)) for lang, (X, y) in test.items()}
                records.add({**key, "accuracy": acc, "seconds": time.perf_counter() - t0})
                print(f"seed {seed} {setting}: {model} {acc}", file=sys.stderr, flush=True)
    text = report(records.rows, args.languages)
    (args.out / "multilingual.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
