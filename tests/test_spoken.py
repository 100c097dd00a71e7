"""Tests of ``transferkit.datasets.spoken``: the mel filterbank, features, synthesis, cache, registry.

Synthesis tests skip when ``espeak-ng`` is not installed; everything is written to a temporary cache.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import transferkit.datasets as D
from transferkit.datasets import _common, spoken
from transferkit.datasets.spoken import (
    LANGUAGES,
    OUT_OF_RANGE,
    VARIANTS,
    Speaker,
    SpokenDigits,
    hz_to_mel,
    load_spoken_digits,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    speaker,
    speaker_split,
)

needs_espeak = pytest.mark.skipif(spoken.espeak_executable() is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One temporary cache for the module (never the user's)."""
    folder = tmp_path_factory.mktemp("spoken_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERKIT_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def two_voices(cache):
    """Speakers 0 and 1 of English, 5 utterances of each digit (100 espeak-ng calls, once)."""
    if spoken.espeak_executable() is None:
        pytest.skip("espeak-ng is not installed")
    return load_spoken_digits("en", 2, 5, progress=False)


# --------------------------------------------------------------------------------------------
# Mel filterbank against the HTK formula
# --------------------------------------------------------------------------------------------
def _reference_filterbank(n_mels, freqs, f_min, f_max):
    """Filter by filter, point by point: triangles linear in Hz between edges equally spaced on the HTK mel scale."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    inv = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    step = (mel(f_max) - mel(f_min)) / (n_mels + 1)
    edges = [inv(mel(f_min) + i * step) for i in range(n_mels + 2)]
    out = np.zeros((n_mels, len(freqs)))
    for k in range(1, n_mels + 1):
        lo, c, hi = edges[k - 1], edges[k], edges[k + 1]
        for j, f in enumerate(freqs):
            if lo <= f <= c:
                out[k - 1, j] = (f - lo) / (c - lo)
            elif c < f <= hi:
                out[k - 1, j] = (hi - f) / (hi - c)
    return out


def test_mel_scale_is_htk():
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * np.log10(2.0))
    assert hz_to_mel(1000.0) == pytest.approx(999.99, abs=0.01)  # 1000 Hz ~ 1000 mel by construction
    f = np.array([0.0, 123.4, 1000.0, 7999.0])
    assert np.allclose(mel_to_hz(hz_to_mel(f)), f)


def test_mel_filterbank_matches_the_formula():
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    H = mel_filterbank(12, freqs, 20.0, 8000.0)
    assert H.shape == (12, 257)
    assert np.allclose(H, _reference_filterbank(12, freqs, 20.0, 8000.0), atol=1e-12)


def test_mel_filters_are_triangles_peaking_at_mel_spaced_centres():
    n = 10
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(4000.0), n + 2))
    # at the centres the bank is the identity: each filter peaks at 1 at its own centre, 0 at the others'
    assert np.allclose(mel_filterbank(n, edges[1:-1], 0.0, 4000.0), np.eye(n), atol=1e-12)
    # half way (in Hz) up the rising edge of filter k: 1/2; and the centres are equally spaced in mel
    mid = (edges[:-2] + edges[1:-1]) / 2
    assert np.allclose(np.diag(mel_filterbank(n, mid, 0.0, 4000.0)), 0.5)
    assert np.allclose(np.diff(hz_to_mel(edges)), hz_to_mel(4000.0) / (n + 1))
    with pytest.raises(ValueError, match="n_mels"):
        mel_filterbank(0, edges)
    with pytest.raises(ValueError, match="f_min"):
        mel_filterbank(4, edges, 100.0, 50.0)


def test_log_mel_of_a_tone_peaks_in_the_filter_of_its_frequency():
    t = np.arange(16192) / 16000
    X = log_mel_spectrogram(np.sin(2 * np.pi * 1000.0 * t)[None], n_mels=40)
    assert X.shape == (1, 40, 50) and X.dtype == np.float32
    assert X.max() == pytest.approx(1.0) and X.min() >= 0.0
    fb = mel_filterbank(40, np.array([1000.0]), 20.0, 8000.0)[:, 0]
    assert np.argmax(X[0].mean(axis=1)) == np.argmax(fb)
    with pytest.raises(ValueError, match="waves"):
        log_mel_spectrogram(np.zeros(1000))


def test_place_centres_shifts_crops_and_adds_noise_at_the_snr():
    rng = np.random.default_rng(0)
    at = lambda out: np.flatnonzero(out)[[0, -1]].tolist()
    assert at(spoken._place(np.ones(100), 1000, 0.0, None, rng)) == [450, 549]  # centred
    assert at(spoken._place(np.ones(100), 1000, 50.0, None, rng)) == [500, 599]  # moved by the shift
    long = np.arange(1, 2001, dtype=float)
    assert spoken._place(long, 1000, 0.0, None, rng)[[0, -1]].tolist() == [501.0, 1500.0]  # centre kept
    speech = np.sin(np.arange(400) / 3.0)  # power ~ 1/2
    noisy = spoken._place(speech, 400_000, 0.0, 10.0, rng)
    noise = np.concatenate([noisy[:199_000], noisy[201_000:]])
    assert 10 * np.log10(np.mean(speech**2) / np.var(noise)) == pytest.approx(10.0, abs=0.05)


# --------------------------------------------------------------------------------------------
# Speakers and errors (no synthesis)
# --------------------------------------------------------------------------------------------
def test_speaker_catalogue_is_fixed_and_varied():
    assert speaker("en", 3) == speaker("en", 3)
    voices = [speaker("en", i) for i in range(len(VARIANTS))]
    assert len({v.variant for v in voices}) == len(VARIANTS)  # no variant repeats within the first 39
    assert all(25 <= v.pitch <= 75 and 140 <= v.speed <= 200 and 0.85 <= v.tract <= 1.2 for v in voices)
    assert speaker("de", 0).voice.startswith("de+") and speaker("zh", 0).voice.startswith("cmn+")
    assert [speaker("de", i).variant for i in range(5)] != [v.variant for v in voices[:5]]
    with pytest.raises(ValueError, match="language='xx'"):
        speaker("xx", 0)
    with pytest.raises(ValueError, match="speaker index"):
        speaker("en", -1)
    child, deep = OUT_OF_RANGE["child"], OUT_OF_RANGE["deep"]
    assert child.tract > 1.2 and child.pitch > 75 and deep.tract < 0.85 and deep.pitch < 25  # outside the catalogue
    for bad, match in [({"variant": "Mr serious"}, "variant="), ({"pitch": 100}, "pitch="), ({"tract": 3.0}, "tract=")]:
        with pytest.raises(ValueError, match=match):
            Speaker(**{**child.__dict__, **bad})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"language": "klingon"}, "language="),
        ({"speakers": 0}, "speakers="),
        ({"speakers": [1, 1]}, "distinct"),
        ({"speakers": [0, speaker("de", 0)]}, "language='en'"),
        ({"speakers": [-1]}, r"speakers\[i\]"),
        ({"utterances": 0}, "utterances="),
        ({"snr_db": (30, 10)}, "snr_db="),
        ({"max_shift": -1.0}, "max_shift="),
        ({"n_frames": 0}, "n_frames="),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_spoken_digits(**kwargs)


def test_speakers_must_be_a_count_or_a_sequence():
    with pytest.raises(TypeError, match="speakers="):
        load_spoken_digits("en", "ab")


def test_missing_espeak_is_a_data_not_found_error_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(spoken.shutil, "which", lambda name: None)
    with pytest.raises(D.DataNotFoundError, match="apt-get install espeak-ng") as err:
        load_spoken_digits("en", 1, 1)
    assert err.value.key == "spoken:en"
    info = D.list_domains()[[i.key for i in D.list_domains()].index("spoken:de")]
    assert not info.present()
    with pytest.raises(D.DataNotFoundError, match="apt-get install espeak-ng"):
        D.load_domain("spoken:de")


def test_wav_parser_reads_espeak_streams_and_rejects_others():
    header = b"RIFF\xff\xff\xff\x7fWAVEfmt " + (16).to_bytes(4, "little")
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (22050).to_bytes(4, "little")
    fmt += (44100).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    samples = np.array([0, 1, -2, 32767], dtype="<i2")
    raw = header + fmt + b"data\xff\xff\xff\x7f" + samples.tobytes()  # placeholder sizes, as espeak-ng streams
    rate, got = spoken._parse_wav(raw)
    assert rate == 22050 and np.array_equal(got, samples)
    with pytest.raises(RuntimeError, match="WAV"):
        spoken._parse_wav(b"not a wav file")


# --------------------------------------------------------------------------------------------
# Synthesis, features, cache
# --------------------------------------------------------------------------------------------
@needs_espeak
def test_features_shape_dtype_order(two_voices):
    d = two_voices
    assert isinstance(d, SpokenDigits) and len(d) == 100
    assert d.X.shape == (100, 1, 40, 50) and d.X.dtype == np.float32 and np.isfinite(d.X).all()
    assert d.X.min() >= 0.0 and d.X.max() <= 1.0
    assert d.y.dtype == np.int64 and np.array_equal(np.bincount(d.y), [10] * 10)
    assert np.array_equal(d.speaker, np.repeat([0, 1], 50)) and set(d.utterance) == set(range(5))
    assert d.speakers == (speaker("en", 0), speaker("en", 1)) and d.language == "en"
    assert d.domain().name == "spoken:en" and d.domain().feature_shape == (1, 40, 50)


@needs_espeak
def test_same_seed_same_features_independent_of_what_else_is_loaded(two_voices, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path))  # an empty cache: synthesised again
    again = load_spoken_digits("en", [speaker("en", 1)], 2, progress=False)  # a Speaker or its index: the same
    same = (two_voices.speaker == 1) & (two_voices.utterance < 2)
    assert np.array_equal(again.X, two_voices.X[same]) and np.array_equal(again.y, two_voices.y[same])
    other_seed = load_spoken_digits("en", [1], 2, seed=1, progress=False)
    assert not np.allclose(other_seed.X, again.X)


@needs_espeak
def test_utterances_of_one_voice_differ_less_than_voices_do(two_voices):
    d = two_voices
    assert all(np.abs(d.X[i] - d.X[j]).max() > 0 for i, j in zip(range(0, 99, 5), range(1, 100, 5), strict=True))
    # the voice's spectrum during speech (mean of the 15 loudest frames): shift- and noise-robust
    loudest = np.argsort(-d.X[:, 0].mean(axis=1), axis=1)[:, :15]
    voice = np.stack([x[0][:, t].mean(axis=1) for x, t in zip(d.X, loudest, strict=True)])
    first = {(s, c): voice[(d.speaker == s) & (d.y == c) & (d.utterance == 0)][0] for s in (0, 1) for c in range(10)}
    within = [np.abs(voice[i] - first[d.speaker[i], d.y[i]]).mean() for i in np.flatnonzero(d.utterance > 0)]
    between = [np.abs(first[0, c] - first[1, c]).mean() for c in range(10)]
    assert np.mean(between) > 1.5 * np.mean(within)


@needs_espeak
def test_vocal_tract_factor_scales_every_frequency_and_the_duration():
    exe = spoken.espeak_executable()
    w1, w2 = (spoken._synthesise(exe, "en-us", 50, 175, a, "7").astype(float) for a in (1.0, 1.25))
    assert len(w2) / len(w1) == pytest.approx(0.8, abs=0.002)
    n = 1 << 16
    f = np.fft.rfftfreq(n, 1 / 16000)
    band = (f > 100) & (f < 6000)
    log1, log2 = (np.log(np.abs(np.fft.rfft(w, n)) + 1e-3) for w in (w1, w2))
    warped = np.interp(f[band] * 1.25, f, log2)  # spectrum 2 read at 1.25 f should be spectrum 1 at f
    assert np.corrcoef(log1[band], warped)[0, 1] > 0.95 > 0.5 > np.corrcoef(log1[band], log2[band])[0, 1]


@needs_espeak
def test_second_load_reads_the_cache_without_espeak(two_voices, cache, monkeypatch):
    files = sorted(p.name for p in cache.iterdir())
    assert files == sorted(spoken.audio_cache_path(speaker("en", i), 5, 0).name for i in (0, 1))
    assert all(f.startswith("spoken_v1_en_spk") and f.endswith("_u5_seed0.npz") for f in files)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("espeak-ng called"))
    monkeypatch.setattr(spoken.shutil, "which", lambda name: None)
    _common.read_npz.cache_clear()
    again = load_spoken_digits("en", 2, 5, progress=False)
    assert np.array_equal(again.X, two_voices.X)
    clean = load_spoken_digits("en", 2, 5, snr_db=None, n_mels=20, n_frames=60, progress=False)
    assert clean.X.shape == (100, 1, 20, 60)  # other feature settings: same cached audio


@needs_espeak
def test_features_carry_the_digit(two_voices):
    train, test = two_voices.split(test_fraction=0.4, seed=0)
    assert len(train) == 60 and len(test) == 40
    key = lambda d: set(zip(d.speaker.tolist(), d.y.tolist(), d.utterance.tolist(), strict=True))
    assert not key(train) & key(test)  # split by utterance
    clf = LogisticRegression(C=0.1, max_iter=300).fit(train.X.reshape(60, -1), train.y)
    assert clf.score(test.X.reshape(40, -1), test.y) > 0.5  # chance is 0.1


@needs_espeak
def test_speaker_split_is_many_voices_to_a_new_voice(two_voices):
    task = speaker_split(two_voices, target=1, test_fraction=0.4)
    assert len(task.source) == 50 and len(task.target) == 30 and len(task.target_test) == 20
    assert task.target.labelled and task.name == "spoken:en/speakers-except-1->spoken:en/speaker-1"
    assert np.array_equal(task.source.X, two_voices.X[two_voices.speaker == 0])
    with pytest.raises(ValueError, match="target=7"):
        speaker_split(two_voices, target=7)
    with pytest.raises(TypeError, match="SpokenDigits"):
        speaker_split(two_voices.domain(), target=1)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
def test_registry_keys_and_split_by_utterance(monkeypatch):
    keys = [i.key for i in D.list_domains() if i.dataset == "spoken"]
    held = [f"spoken:en-speaker-{i}" for i in range(20, 25)] + ["spoken:en-child", "spoken:en-deep"]
    assert keys == [f"spoken:{lang}" for lang in LANGUAGES] + held
    assert len(LANGUAGES) >= 4
    calls = []

    def fake(language, speakers, utterances, **kw):  # tiny stand-in: the registry wiring only
        calls.append((language, tuple(s.index for s in speakers), utterances))
        n = len(speakers) * 10 * utterances
        spk = np.repeat([s.index for s in speakers], 10 * utterances)
        y = np.tile(np.repeat(np.arange(10), utterances), len(speakers))
        utt = np.tile(np.arange(utterances), 10 * len(speakers))
        X = np.random.default_rng(0).random((n, 1, 4, 5)).astype(np.float32)
        return SpokenDigits(X, y, spk, utt, language, tuple(speakers))

    monkeypatch.setattr(spoken, "load_spoken_digits", fake)
    monkeypatch.setattr(spoken.shutil, "which", lambda name: "/usr/bin/espeak-ng")
    spoken._registry_data.cache_clear()
    try:
        tr, te, al = (D.load_domain("spoken:fr", s) for s in ("train", "test", "all"))
        assert calls[0] == ("fr", tuple(range(20)), 10)
        assert (len(tr), len(te), len(al)) == (1400, 600, 2000) and tr.name == "spoken:fr"
        held = D.load_domain("spoken:en-speaker-22", "test")
        assert calls[-1] == ("en", (22,), 20) and len(held) == 100
        assert np.array_equal(np.bincount(held.y), [10] * 10)
        D.load_domain("spoken:en-child", "train")
        assert calls[-1] == ("en", (OUT_OF_RANGE["child"].index,), 20)
        tr.X[:] = -1  # fresh copies: the in-process cache is untouched
        assert D.load_domain("spoken:fr", "train").X.min() >= 0
    finally:
        spoken._registry_data.cache_clear()
