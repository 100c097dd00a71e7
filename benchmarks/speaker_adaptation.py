"""Speaker adaptation on spoken digits: which layers of a many-voice network does a new voice keep?

The lecture's speech claim: a recogniser trained on many speakers is adapted to a new speaker by
keeping its *last* layers and retraining the first ones (the input side is where the voices
differ), the reverse of images, where the first layers are the ones copied. Here the source is
``spoken:en`` (20 synthetic English voices, 1400 training utterances); the targets are three new
voices: ``en-speaker-20`` (a voice of the same catalogue), ``en-child`` and ``en-deep`` (outside
the catalogue's vocal-tract and pitch ranges). The network is the DANN digits CNN on 1 x 40 x 50
log-mel images, layers ``conv1, conv2, fc1, fc2, head``.

For k utterances of every digit of the new voice (k in {1, 2, 5}; 5 draws each, scored on the
voice's 100 test utterances):

- **source model**: the many-voice network as it is (no adaptation);
- **target only**: the same CNN from scratch on the k x 10 utterances;
- **copy first N, frozen**: conv/fc layers 1..N from the source, frozen; the rest trained fresh;
- **copy last N, frozen**: the top N layers (head included) from the source, frozen; the input
  side trained fresh on the new voice;
- **fine-tune all**: every layer copied and trained.

Same optimiser and number of steps for every target network (Adam 1e-3, about ``--steps`` steps).

    TRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/speaker_adaptation.py --draws 5

Writes ``speaker_adaptation.json`` (every run; a rerun skips the runs already there) and
``speaker_adaptation.md`` to ``--out``. The first run synthesises the voices with espeak-ng
(about a minute; cached).
"""

from __future__ import annotations

import argparse
import sys
import time

from _records import Records, add_common_arguments, epochs_for, mean_table
from transferkit.datasets import load_domain
from transferkit.methods.finetune import FineTune, TargetOnly
from transferkit.methods.source_only import SourceOnly
from transferkit.report import markdown_table

SOURCE_KEY = "spoken:en"
TARGETS = ("spoken:en-speaker-20", "spoken:en-child", "spoken:en-deep")
KS = (1, 2, 5)
BACKBONE = "dann-digits"
SOURCE = dict(epochs=15, batch_size=64, lr=1e-3)
BATCH = 32
#: label -> FineTune arguments (None: the target-only baseline; "source": the source model as is).
METHODS = {
    "source model": "source",
    "target only": None,
    **{f"copy first {n}, frozen": dict(copy=f"first:{n}", freeze=True) for n in (1, 2, 3, 4)},
    **{f"copy last {n}, frozen": dict(copy=f"last:{n}", freeze=True) for n in (1, 2, 3, 4)},
    "fine-tune all": dict(copy="all"),
}


def run(ks, draws: int, steps: int, records: Records) -> None:
    source = load_domain(SOURCE_KEY, "train")
    t0 = time.perf_counter()
    net = SourceOnly(backbone=BACKBONE, seed=0, verbose=False, **SOURCE).fit(source)
    src_test = float(net.score(load_domain(SOURCE_KEY, "test")))
    print(
        f"source network: {time.perf_counter() - t0:.0f} s, accuracy on the source voices' test split {src_test:.4f}",
        file=sys.stderr,
        flush=True,
    )
    for target in TARGETS:
        train, test = load_domain(target, "train"), load_domain(target, "test")
        for k in ks:
            for draw in range(draws):
                shots = train.few_shot(k, seed=draw)
                for label, kwargs in METHODS.items():
                    key = dict(target=target, k=k, draw=draw, method=label)
                    if records.has(key):
                        continue
                    t1 = time.perf_counter()
                    common = dict(
                        backbone=BACKBONE,
                        epochs=epochs_for(len(shots), BATCH, steps),
                        batch_size=BATCH,
                        lr=1e-3,
                        seed=draw,
                        verbose=False,
                    )
                    if kwargs == "source":
                        est = net
                    elif kwargs is None:
                        est = TargetOnly(**common).fit(source, shots)
                    else:
                        est = FineTune(source_model=net.model_, **kwargs, **common).fit(source, shots)
                    acc = float(est.score(test))
                    records.add(
                        {**key, "accuracy": acc, "seconds": time.perf_counter() - t1, "source_test_accuracy": src_test}
                    )
                    print(f"  {target} k={k} draw {draw} {label:<22s} {acc:.4f}", file=sys.stderr, flush=True)


def report(rows: list[dict], steps: int) -> str:
    draws = len({r["draw"] for r in rows})
    lines = [
        "## Speaker adaptation on spoken digits: copy the first layers or the last?\n",
        f"DANN digits CNN on 1 x 40 x 50 log-mel images; source `{SOURCE_KEY}` (20 voices, "
        f"{SOURCE['epochs']} epochs; accuracy on its own test utterances "
        f"{rows[0]['source_test_accuracy']:.4f}). Every target network about {steps} Adam steps. "
        f"Accuracy on the new voice's 100 test utterances, mean ± std over {draws} draws of the k utterances "
        "per digit.\n",
        "```bash\nTRANSFERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/speaker_adaptation.py "
        f"--draws {draws} --steps {steps}\n```\n",
    ]
    for target in dict.fromkeys(r["target"] for r in rows):
        lines.append(f"### {target}\n")
        mine = [r for r in rows if r["target"] == target]
        ks = sorted({r["k"] for r in mine})
        table = mean_table(mine, ("method", list(METHODS)), ("k", ks), name=lambda k: f"k = {k}")
        lines.append(markdown_table(table) + "\n")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, steps=200)
    args = parser.parse_args(argv)
    records = Records(args.out / "speaker_adaptation.json", {"steps": args.steps})
    run(args.ks or KS, args.draws, args.steps, records)
    text = report(records.rows, args.steps)
    (args.out / "speaker_adaptation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
