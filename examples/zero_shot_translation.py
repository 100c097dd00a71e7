"""Zero-shot translation (Johnson et al. 2016): translate German -> French without a single German-French pair.

One sequence-to-sequence Transformer serves every direction; the first source token names the
language to produce (``<2fr>``, ``<2de>``, ``<2en>``). It is trained on English <-> German and
English <-> French pairs only (English is the pivot) and then asked for German -> French and
French -> German, directions it has never seen.

The parallel corpus is built here, from a small grammar in three languages with real agreement:
German articles and adjective endings follow gender and case (der rote Hund / den roten Hund),
French adjectives follow the noun and agree with its gender (la souris noire), and ``l'`` elides
before a vowel. A sentence is *subject verb object*; test sentences are contents never used in
training in any language.

Reported for every direction: exact-match rate, token accuracy (position by position) and the
share of output tokens in each language (a zero-shot model may answer in the wrong language). Next
to the zero-shot directions: the same model through the pivot (de -> en -> fr, two passes), a model
that also saw monolingual copies (de -> de, fr -> fr, en -> en; still no German-French pair), and a
model trained *with* German-French pairs (the supervised ceiling).

    python examples/zero_shot_translation.py            # about 25 minutes on 2 CPU cores
    python examples/zero_shot_translation.py --quick    # a smoke run

Reference: Johnson et al., Google's Multilingual Neural Machine Translation System: Enabling
Zero-Shot Translation. TACL 2017 (arXiv:1611.04558, 2016).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import numpy as np
import torch
from torch import nn

from transferkit.train import FitConfig, fit_loop

# --------------------------------------------------------------------------- the corpus
# noun: English, German (word, gender), French (word, gender)
NOUNS = [
    ("cat", ("Katze", "f"), ("chat", "m")),
    ("dog", ("Hund", "m"), ("chien", "m")),
    ("bird", ("Vogel", "m"), ("oiseau", "m")),
    ("horse", ("Pferd", "n"), ("cheval", "m")),
    ("mouse", ("Maus", "f"), ("souris", "f")),
    ("cow", ("Kuh", "f"), ("vache", "f")),
    ("fox", ("Fuchs", "m"), ("renard", "m")),
    ("child", ("Kind", "n"), ("enfant", "m")),
    ("woman", ("Frau", "f"), ("femme", "f")),
    ("man", ("Mann", "m"), ("homme", "m")),
]
# adjective: English, German stem, French masculine, French feminine (all placed after the noun in French)
ADJECTIVES = [
    ("red", "rot", "rouge", "rouge"),
    ("black", "schwarz", "noir", "noire"),
    ("white", "weiß", "blanc", "blanche"),
    ("green", "grün", "vert", "verte"),
    ("tired", "müde", "fatigué", "fatiguée"),
    ("happy", "glücklich", "heureux", "heureuse"),
    ("clever", "klug", "intelligent", "intelligente"),
    ("fast", "schnell", "rapide", "rapide"),
]
VERBS = [
    ("sees", "sieht", "voit"),
    ("likes", "mag", "aime"),
    ("finds", "findet", "trouve"),
    ("hears", "hört", "entend"),
    ("bites", "beißt", "mord"),
    ("watches", "beobachtet", "regarde"),
    ("carries", "trägt", "porte"),
]
LANGS = ("en", "de", "fr")


def render(content: tuple[int, int, int, int, int], lang: str) -> list[str]:
    """The sentence "the ADJ1 NOUN1 VERB the ADJ2 NOUN2" in ``lang``, as tokens."""
    n1, a1, v, n2, a2 = content
    if lang == "en":
        return ["the", ADJECTIVES[a1][0], NOUNS[n1][0], VERBS[v][0], "the", ADJECTIVES[a2][0], NOUNS[n2][0]]
    if lang == "de":
        (w1, g1), (w2, g2) = NOUNS[n1][1], NOUNS[n2][1]
        nom = {"m": "der", "f": "die", "n": "das"}[g1]
        acc = {"m": "den", "f": "die", "n": "das"}[g2]
        # weak adjective endings after the definite article: -e, except accusative masculine -en
        adj1 = ADJECTIVES[a1][1] + "e"
        adj2 = ADJECTIVES[a2][1] + ("en" if g2 == "m" else "e")
        return [nom, adj1, w1, VERBS[v][1], acc, adj2, w2]
    (w1, g1), (w2, g2) = NOUNS[n1][2], NOUNS[n2][2]

    def noun_phrase(word, gender, a):
        article = "l'" if word[0] in "aeiouh" else ("le" if gender == "m" else "la")
        adjective = ADJECTIVES[a][2] if gender == "m" else ADJECTIVES[a][3]
        return [article, word, adjective]

    return [*noun_phrase(w1, g1, a1), VERBS[v][2], *noun_phrase(w2, g2, a2)]


def contents(n_train: int, n_test: int, seed: int):
    """Disjoint random contents (noun, adjective, verb, noun, adjective) for training and test."""
    every = list(
        itertools.product(
            range(len(NOUNS)), range(len(ADJECTIVES)), range(len(VERBS)), range(len(NOUNS)), range(len(ADJECTIVES))
        )
    )
    order = np.random.default_rng(seed).permutation(len(every))
    train = [every[i] for i in order[:n_train]]
    test = [every[i] for i in order[n_train : n_train + n_test]]
    return train, test


class Vocabulary:
    """One token list for all three languages, plus padding, begin, end and one target tag per language."""

    def __init__(self):
        words = set()
        for content in itertools.product(*(range(k) for k in (10, 8, 7, 10, 8))):
            for lang in LANGS:
                words.update(render(content, lang))
        self.tokens = ["<pad>", "<bos>", "<eos>", *(f"<2{lang}>" for lang in LANGS), *sorted(words)]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.language_of = {}
        for content in itertools.product(*(range(k) for k in (10, 8, 7, 10, 8))):
            for lang in LANGS:
                for t in render(content, lang):
                    self.language_of.setdefault(self.index[t], set()).add(lang)

    def encode(self, tokens: list[str], length: int) -> list[int]:
        ids = [self.index[t] for t in tokens] + [self.index["<eos>"]]
        return ids + [0] * (length - len(ids))


def pairs(vocab: Vocabulary, items: list, directions: list[tuple[str, str]], length: int = 12):
    """Source ``<2tgt> words <eos>`` and target ``<bos> words <eos>`` arrays for every direction."""
    src, tgt = [], []
    for content in items:
        for a, b in directions:
            src.append(vocab.encode([f"<2{b}>", *render(content, a)], length))
            tgt.append([vocab.index["<bos>"], *vocab.encode(render(content, b), length - 1)])
    return np.array(src, dtype=np.int64), np.array(tgt, dtype=np.int64)


# --------------------------------------------------------------------------- the model
class Seq2Seq(nn.Module):
    """A small Transformer encoder-decoder with shared embeddings for all languages."""

    def __init__(self, n_tokens: int, d: int = 128, heads: int = 4, layers: int = 2, length: int = 12):
        super().__init__()
        self.embed = nn.Embedding(n_tokens, d, padding_idx=0)
        self.position = nn.Parameter(torch.randn(length, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.1, batch_first=True)
        encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.transformer = nn.Transformer(
            d, heads, layers, layers, dim_feedforward=4 * d, dropout=0.1, batch_first=True, custom_encoder=encoder
        )
        self.out = nn.Linear(d, n_tokens)

    def _embed(self, ids):
        return self.embed(ids) + self.position[: ids.shape[1]]

    def forward(self, src, tgt_in):
        n = tgt_in.shape[1]
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool, device=src.device), 1)  # True: may not attend
        h = self.transformer(
            self._embed(src),
            self._embed(tgt_in),
            tgt_mask=causal,
            src_key_padding_mask=src == 0,
            tgt_key_padding_mask=tgt_in == 0,
            memory_key_padding_mask=src == 0,
        )
        return self.out(h)

    @torch.no_grad()
    def translate(self, src: torch.Tensor, bos: int, eos: int, max_len: int = 11) -> torch.Tensor:
        """Greedy decoding, a batch at a time."""
        self.eval()
        out = torch.full((len(src), 1), bos, dtype=torch.long)
        done = torch.zeros(len(src), dtype=torch.bool)
        for _ in range(max_len):
            nxt = self(src, out)[:, -1].argmax(1)
            nxt = torch.where(done, torch.zeros_like(nxt), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == eos
            if done.all():
                break
        return out[:, 1:]


class TranslationObjective(nn.Module):
    """Cross-entropy of the next target token (teacher forcing), padding ignored."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, batch, progress: float):
        src, tgt = batch["xs"], batch["ys"]
        logits = self.model(src, tgt[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=0)
        return {"loss": loss}


# --------------------------------------------------------------------------- evaluation
def decode(vocab: Vocabulary, ids) -> list[str]:
    words = []
    for i in ids:
        if i == vocab.index["<eos>"] or i == 0:
            break
        words.append(vocab.tokens[i])
    return words


def evaluate(model, vocab, items, a: str, b: str, pivot: str | None = None) -> dict:
    """Exact match, token accuracy and target-language share of ``a -> b`` (through ``pivot`` if given)."""
    bos, eos = vocab.index["<bos>"], vocab.index["<eos>"]
    src, _ = pairs(vocab, items, [(a, pivot or b)])
    hyp = model.translate(torch.from_numpy(src), bos, eos)
    if pivot:
        middle = [decode(vocab, h) for h in hyp.tolist()]
        src2 = np.array([vocab.encode([f"<2{b}>", *m][:11], 12) for m in middle], dtype=np.int64)
        hyp = model.translate(torch.from_numpy(src2), bos, eos)
    exact = tokens = right = total = 0
    in_lang = dict.fromkeys(LANGS, 0)
    for content, h in zip(items, hyp.tolist(), strict=True):
        ref, out = render(content, b), decode(vocab, h)
        exact += out == ref
        tokens += len(ref)
        right += sum(x == y for x, y in zip(out, ref, strict=False))
        for lang in LANGS:
            in_lang[lang] += sum(lang in vocab.language_of.get(vocab.index[t], set()) for t in out)
        total += len(out)
    return {
        "exact_match": exact / len(items),
        "token_accuracy": right / tokens,
        "target_language": in_lang[b] / max(total, 1),
        "output_languages": {lang: n / max(total, 1) for lang, n in in_lang.items()},
    }


def train(vocab, items, directions, epochs: int, seed: int, quick: bool) -> Seq2Seq:
    torch.manual_seed(seed)
    model = Seq2Seq(len(vocab.tokens), d=64 if quick else 128)
    src, tgt = pairs(vocab, items, directions)
    config = FitConfig(
        epochs=epochs,
        batch_size=128,
        lr=5e-4,
        seed=seed,
        device="cpu",
        progress=True,
        desc=f"seq2seq {'+'.join(a + b for a, b in directions)}",
        grad_clip=1.0,
    )
    fit_loop(TranslationObjective(model), {"xs": src, "ys": tgt}, None, config)
    return model.eval()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=6000, help="training contents (each in every trained direction)")
    parser.add_argument("--n-test", type=int, default=500, help="test contents, never seen in training")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a small, fast run (smoke test)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs = 200, 50, 1
    t0 = time.perf_counter()
    vocab = Vocabulary()
    train_items, test_items = contents(args.n_train, args.n_test, args.seed)
    through_english = [("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "en")]
    model = train(vocab, train_items, through_english, args.epochs, args.seed, args.quick)
    results = {
        "en -> fr (trained)": evaluate(model, vocab, test_items, "en", "fr"),
        "de -> en (trained)": evaluate(model, vocab, test_items, "de", "en"),
        "de -> fr (zero-shot)": evaluate(model, vocab, test_items, "de", "fr"),
        "fr -> de (zero-shot)": evaluate(model, vocab, test_items, "fr", "de"),
        "de -> en -> fr (pivot)": evaluate(model, vocab, test_items, "de", "fr", pivot="en"),
    }
    # Through English only, every German source carries <2en>: the model can ignore the token. Adding
    # monolingual copies (de -> de, fr -> fr, en -> en) puts every language behind several tokens.
    copies = [("en", "en"), ("de", "de"), ("fr", "fr")]
    copying = train(vocab, train_items, [*through_english, *copies], args.epochs, args.seed, args.quick)
    results["de -> fr (zero-shot, with monolingual copies)"] = evaluate(copying, vocab, test_items, "de", "fr")
    results["fr -> de (zero-shot, with monolingual copies)"] = evaluate(copying, vocab, test_items, "fr", "de")
    direct = train(
        vocab, train_items, [*through_english, ("de", "fr"), ("fr", "de")], args.epochs, args.seed, args.quick
    )
    results["de -> fr (trained with de-fr pairs)"] = evaluate(direct, vocab, test_items, "de", "fr")
    record = {
        "results": results,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "epochs": args.epochs,
        "seed": args.seed,
        "seconds": time.perf_counter() - t0,
    }
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"{'direction':<48} {'exact':>7} {'tokens':>7}  output tokens in en / de / fr")
        for name, r in results.items():
            shares = " / ".join(f"{r['output_languages'][lang]:.2f}" for lang in LANGS)
            print(f"{name:<48} {r['exact_match']:7.3f} {r['token_accuracy']:7.3f}  {shares}")
        src = pairs(vocab, test_items[:3], [("de", "fr")])[0]
        hyp = copying.translate(torch.from_numpy(src), vocab.index["<bos>"], vocab.index["<eos>"])
        for content, h in zip(test_items[:3], hyp.tolist(), strict=True):
            print(
                f"  de: {' '.join(render(content, 'de'))}\n  fr (zero-shot): {' '.join(decode(vocab, h))}"
                f"\n  fr (reference): {' '.join(render(content, 'fr'))}"
            )
    print(f"({record['seconds']:.0f} s)", file=sys.stderr)
    return record


if __name__ == "__main__":
    main()
