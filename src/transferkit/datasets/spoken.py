r"""Spoken digits synthesised with espeak-ng: many voices, several languages, log-mel features.

The speech cases of the transfer-learning lecture need a source with many speakers and a target
with one new speaker (speaker adaptation), and several languages that share a front end
(multilingual multitask learning). This module makes both offline: the digits 0-9 are spoken by
the formant synthesiser espeak-ng (the digit character, so each language says its own word:
"seven", "sieben", "sept", "siete", ...) in many *voices*, a voice being

.. math::

    \text{speaker} = (\text{language}, \text{variant}, \text{pitch}, \text{speed}, \alpha),

drawn once and for all from a seeded catalogue (:func:`speaker`), where :math:`\alpha \in [0.85, 1.2]`
scales every frequency as a shorter or longer vocal tract would (Ko et al. 2015's speed
perturbation, one factor per speaker). 39 espeak-ng voice variants (formant sets, pitch ranges,
glottal sources, the Klatt synthesiser) are permuted per language, so speakers ``0..38`` of a
language all have different variants and the held-out speakers of the registry
(``en-speaker-20..24``) have variants no training speaker uses. Each utterance jitters
the speaker's speed by :math:`\pm 8\%` and pitch by :math:`\pm 5` (espeak units), is placed in a
fixed window with a random shift of up to ``max_shift`` seconds, and gets white noise at an SNR
drawn uniformly from ``snr_db``:

.. math::

    \sigma^2_\text{noise} = \frac{1}{|S|}\sum_{t \in S} s_t^2 \; 10^{-\text{SNR}/10},

with :math:`S` the speech samples. Features are log-mel spectrograms: HTK mel scale
:math:`m(f) = 2595 \log_{10}(1 + f/700)`, ``n_mels`` triangular filters whose edges are
equally spaced in mel (:func:`mel_filterbank`), power spectra of 32 ms Hann frames every 20 ms at
16 kHz, and decibels relative to the utterance's maximum, floored at -80 dB and mapped to
[0, 1]:

.. math::

    x_{k,t} = 1 + \tfrac{1}{80} \max\big(-80,\; 10\log_{10} E_{k,t} - \max_{k',t'} 10\log_{10} E_{k',t'}\big),
    \qquad E = H\,|\mathrm{STFT}(s)|^2 .

Samples are float32 ``(1, n_mels, n_frames)`` (default 1 x 40 x 50, one second), images for
the CNN backbones; flatten with ``X.reshape(len(X), -1)`` for vector methods.

Registry keys
-------------
``spoken:{en,de,fr,es,it,nl,zh}``
    Speakers 0..19 of the language, 10 utterances of every digit each (2000 samples); ``train``
    / ``test`` split by utterance: 3 of the 10 repetitions of every (speaker, digit) are test
    (seed 0). ``zh`` is Mandarin (espeak-ng ``cmn``).
``spoken:en-speaker-20`` .. ``spoken:en-speaker-24``
    One new English voice of the same catalogue each, 20 utterances of every digit (200 samples),
    half test. ``--source spoken:en --target spoken:en-speaker-20`` is "many voices -> a new voice".
``spoken:en-child``, ``spoken:en-deep``
    The same for two voices outside the catalogue's ranges (:data:`OUT_OF_RANGE`): vocal-tract
    factor 1.35 and pitch 90 (child-like), 0.75 and pitch 10 (deep); a large speaker shift.

All use ``seed=0``, shifts of up to 0.1 s and SNR 15-35 dB. The raw audio (16 kHz int16) is
synthesised once per speaker and cached atomically in :func:`~transferkit.datasets.cache_dir`
(``spoken_v<V>_<lang>_spk<i>-<variant>-p<pitch>-s<speed>-t<tract>_u<utterances>_seed<seed>.npz``);
features are computed from the cache at every load, so feature settings change without new
synthesis. Needs the ``espeak-ng`` program only to fill the cache (Debian/Ubuntu:
``apt-get install espeak-ng``).

References
----------
Young et al., *The HTK Book*, Sec. 5.4 (mel filterbank). Davis & Mermelstein, IEEE TASSP 1980
(log-mel features). Huang et al., ICASSP 2013 (multilingual DNN with shared hidden layers).
Ko et al., Interspeech 2015 (speed perturbation). Jackson et al., Free Spoken Digit Dataset
(the recorded analogue). eSpeak NG, https://github.com/espeak-ng/espeak-ng.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..data import Domain, Task
from ._common import CACHE_ENV, DataNotFoundError, _Spec, atomic_savez, cache_dir, fixed_split, make_info, read_npz

__all__ = [
    "LANGUAGES",
    "OUT_OF_RANGE",
    "VARIANTS",
    "Speaker",
    "SpokenDigits",
    "hz_to_mel",
    "load_spoken_digits",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "speaker",
    "speaker_split",
]

VERSION = 1
SAMPLE_RATE = 16000
N_FFT, HOP = 512, 320  # 32 ms Hann frames every 20 ms
FLOOR_DB = 80.0
# language code -> espeak-ng voice
LANGUAGES = {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es", "it": "it", "nl": "nl", "zh": "cmn"}
VARIANTS = (
    *(f"m{i}" for i in range(1, 9)),
    *(f"f{i}" for i in range(1, 6)),
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "Alicia", "Andrea", "Annie", "aunty", "belinda", "linda", "steph", "grandma",
    "adam", "boris", "david", "edward", "grandpa", "iven", "john", "max", "norbert", "quincy", "travis",
    "victor", "croak",
)  # fmt: skip
CATALOGUE_SEED = 0
PITCH_RANGE, SPEED_RANGE = (25, 75), (140, 200)  # espeak -p (0..99) and -s (words per minute)
TRACT_RANGE = (0.85, 1.2)  # vocal-tract factor: every frequency scaled by it (log-uniform)
SPEED_JITTER, PITCH_JITTER = 0.08, 5
ESPEAK_HINT = (
    "install the speech synthesiser espeak-ng (Debian/Ubuntu: apt-get install espeak-ng; macOS: brew install "
    "espeak-ng) so that `espeak-ng` is on PATH; utterances are synthesised once and then read from the cache "
    f"(${CACHE_ENV})."
)


# --------------------------------------------------------------------------------------------
# Mel filterbank and log-mel features
# --------------------------------------------------------------------------------------------
def hz_to_mel(f):
    r"""HTK mel scale, :math:`m(f) = 2595 \log_{10}(1 + f / 700)`."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    r"""Inverse of :func:`hz_to_mel`, :math:`f(m) = 700 (10^{m / 2595} - 1)`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, frequencies, f_min: float = 0.0, f_max: float = SAMPLE_RATE / 2) -> np.ndarray:
    r"""Triangular filters with edges equally spaced on the HTK mel scale.

    .. math::

        f_i = m^{-1}\!\Big(m(f_\min) + i\,\frac{m(f_\max) - m(f_\min)}{M + 1}\Big),\; i = 0..M+1, \qquad
        H_k(f) = \max\!\Big(0, \min\Big(\frac{f - f_{k-1}}{f_k - f_{k-1}}, \frac{f_{k+1} - f}{f_{k+1} - f_k}\Big)\Big),

    so filter :math:`k = 1..M` rises from 0 at :math:`f_{k-1}` to 1 at its centre :math:`f_k` and
    falls to 0 at :math:`f_{k+1}` (linear in Hz, peak 1, no area normalisation; as
    ``torchaudio.functional.melscale_fbanks(norm=None, mel_scale="htk")``).

    Parameters
    ----------
    n_mels : int
        Number of filters :math:`M`.
    frequencies : array-like of shape (n_freqs,)
        Where to evaluate the filters, in Hz (for an FFT: ``np.fft.rfftfreq(n_fft, 1 / rate)``).
    f_min, f_max : float
        Lower and upper edge of the first and last filter, in Hz.

    Returns
    -------
    ndarray of float64, shape (n_mels, n_freqs)
    """
    if isinstance(n_mels, bool) or not isinstance(n_mels, (int, np.integer)) or n_mels < 1:
        raise ValueError(f"n_mels={n_mels!r}; expected a positive integer.")
    if not 0 <= f_min < f_max:
        raise ValueError(f"f_min={f_min!r}, f_max={f_max!r}; expected 0 <= f_min < f_max (Hz).")
    f = np.asarray(frequencies, dtype=np.float64)[None, :]
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((f - lo) / (centre - lo), (hi - f) / (hi - centre)))


@lru_cache(maxsize=8)
def _filterbank(n_mels: int) -> np.ndarray:
    return mel_filterbank(n_mels, np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE), 20.0, SAMPLE_RATE / 2)


def log_mel_spectrogram(waves: np.ndarray, n_mels: int = 40) -> np.ndarray:
    """Log-mel spectrograms of 16 kHz signals, in dB relative to each signal's maximum, mapped to [0, 1].

    Parameters
    ----------
    waves : ndarray of shape (n, n_samples)
        Signals at 16 kHz; frames are not padded, so there are ``1 + (n_samples - 512) // 320``.
    n_mels : int
        Number of mel filters (20 Hz to 8 kHz).

    Returns
    -------
    ndarray of float32, shape (n, n_mels, n_frames)
        :math:`1 + \\max(-80, \\mathrm{dB} - \\max \\mathrm{dB}) / 80`.
    """
    waves = np.asarray(waves, dtype=np.float64)
    if waves.ndim != 2 or waves.shape[1] < N_FFT:
        raise ValueError(f"waves has shape {waves.shape}; expected (n, n_samples) with n_samples >= {N_FFT}.")
    n_frames = 1 + (waves.shape[1] - N_FFT) // HOP
    starts = np.arange(n_frames) * HOP
    frames = waves[:, starts[:, None] + np.arange(N_FFT)] * np.hanning(N_FFT)  # (n, T, N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    energy = (power @ _filterbank(n_mels).T).transpose(0, 2, 1)  # (n, n_mels, T)
    db = 10.0 * np.log10(np.maximum(energy, 1e-20))
    db -= db.max(axis=(1, 2), keepdims=True)
    return (1.0 + np.maximum(db, -FLOOR_DB) / FLOOR_DB).astype(np.float32)


def _place(speech: np.ndarray, length: int, shift: float, snr_db: float | None, rng) -> np.ndarray:
    """``speech`` centred in ``length`` samples, moved by ``shift`` samples, plus noise at ``snr_db``."""
    out = np.zeros(length)
    start = int(round((length - len(speech)) / 2 + shift))
    a, b = max(0, -start), min(len(speech), length - start)  # the part of the speech inside the window
    if b > a:
        out[start + a : start + b] = speech[a:b]
    if snr_db is not None:
        power = np.mean(speech**2)
        out += np.sqrt(power * 10.0 ** (-snr_db / 10.0)) * rng.standard_normal(length, dtype=np.float32)
    return out


def _speech_span(wave: np.ndarray) -> np.ndarray:
    """``wave`` without its leading and trailing silence (10 ms frames 40 dB below the loudest)."""
    n = len(wave) // 160
    if n == 0:
        return wave
    rms = np.sqrt(np.mean(wave[: n * 160].reshape(n, 160) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-40 / 20))
    return wave[loud[0] * 160 : (loud[-1] + 1) * 160] if len(loud) else wave


# --------------------------------------------------------------------------------------------
# Speakers and synthesis
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Speaker:
    """One synthetic voice.

    ``variant``, ``pitch`` (0..99) and ``speed`` (words per minute) are espeak-ng's; ``tract`` scales
    every frequency of the synthesised signal (formants, pitch) and divides its duration, as a
    shorter (> 1) or longer (< 1) vocal tract would: the speed perturbation of Ko et al. (2015),
    one fixed factor per speaker.
    """

    language: str
    index: int
    variant: str
    pitch: int
    speed: int
    tract: float

    def __post_init__(self):
        _check_language(self.language)
        if self.variant not in VARIANTS:
            raise ValueError(f"variant={self.variant!r}; expected one of VARIANTS ({', '.join(VARIANTS[:4])}, ...).")
        for name, value, lo, hi in (
            ("index", self.index, 0, None),
            ("pitch", self.pitch, 0, 99),
            ("speed", self.speed, 80, 450),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= (hi or value):
                raise ValueError(f"{name}={value!r}; expected an integer in {lo}..{hi or 'inf'}.")
        if not 0.5 <= self.tract <= 2.0:
            raise ValueError(f"tract={self.tract!r}; expected a frequency factor in [0.5, 2].")

    @property
    def voice(self) -> str:
        """The espeak-ng ``-v`` argument, such as ``"en-us+m3"``."""
        return f"{LANGUAGES[self.language]}+{self.variant}"

    @property
    def tag(self) -> str:
        return f"spk{self.index}-{self.variant}-p{self.pitch}-s{self.speed}-t{self.tract:.2f}"


def _check_language(language) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language={language!r}; expected one of {', '.join(map(repr, LANGUAGES))}.")
    return language


def _stream(*key: int | str) -> np.random.Generator:
    """A random stream named by ``key`` (strings hashed with CRC-32: stable across runs and platforms)."""
    return np.random.default_rng([zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key])


def speaker(language: str, index: int) -> Speaker:
    """Speaker ``index`` of ``language``'s fixed catalogue (the same voice in every run and seed).

    Variants follow a per-language permutation of :data:`VARIANTS`, so indices ``0..38`` of one
    language all differ in variant; pitch and speed are uniform in ``PITCH_RANGE`` and
    ``SPEED_RANGE``, the vocal-tract factor log-uniform in ``TRACT_RANGE`` (two decimals).
    """
    _check_language(language)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"speaker index={index!r}; expected a non-negative integer.")
    order = _stream(CATALOGUE_SEED, language).permutation(len(VARIANTS))
    rng = _stream(CATALOGUE_SEED, language, int(index))
    pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
    speed = int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1))
    tract = round(float(np.exp(rng.uniform(*np.log(TRACT_RANGE)))), 2)
    return Speaker(language, int(index), VARIANTS[order[index % len(VARIANTS)]], pitch, speed, tract)


# Two English voices outside the catalogue's ranges (tract 0.85..1.2, pitch 25..75): a child-like
# one (short vocal tract, high pitch) and a deep one; the registry's en-child and en-deep.
OUT_OF_RANGE = {
    "child": Speaker("en", 1000, "f5", 90, 170, 1.35),
    "deep": Speaker("en", 1001, "m7", 10, 150, 0.75),
}


def espeak_executable() -> str | None:
    """The path of ``espeak-ng`` on PATH, or None."""
    return shutil.which("espeak-ng")


def _parse_wav(raw: bytes) -> tuple[int, np.ndarray]:
    """Sample rate and int16 samples of espeak-ng's ``--stdout`` WAV (its chunk sizes are placeholders)."""
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise RuntimeError(f"espeak-ng did not write a WAV stream (starts with {raw[:12]!r}).")
    pos, rate = 12, None
    while pos + 8 <= len(raw):
        chunk, size = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            fmt, channels = (int.from_bytes(raw[pos + 8 + i : pos + 10 + i], "little") for i in (0, 2))
            rate, bits = int.from_bytes(raw[pos + 12 : pos + 16], "little"), raw[pos + 22]
            if (fmt, channels, bits) != (1, 1, 16):
                raise RuntimeError(
                    f"espeak-ng wrote PCM format {fmt}, {channels} channels, {bits} bits; expected 1, 1, 16."
                )
        elif chunk == b"data" and rate is not None:
            body = raw[pos + 8 :]
            return rate, np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")
        pos += 8 + size
    raise RuntimeError("espeak-ng's WAV stream has no fmt/data chunk.")


def _synthesise(exe: str, voice: str, pitch: int, speed: int, tract: float, text: str) -> np.ndarray:
    """One utterance as int16 samples at 16 kHz, every frequency scaled by ``tract``."""
    from scipy.signal import resample_poly

    cmd = [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-z", "--stdout", text]
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    rate, samples = _parse_wav(done.stdout)
    # read as if sampled at rate * tract (frequencies x tract), resampled to 16 kHz; a ratio with a
    # small denominator keeps the polyphase filter short (factor exact to < 0.01 %)
    ratio = Fraction(SAMPLE_RATE / (rate * tract)).limit_denominator(1000)
    wave = resample_poly(samples.astype(np.float64), ratio.numerator, ratio.denominator)
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16)


def _jitter(spk: Speaker, digit: int, utt: int, seed: int) -> tuple[int, int]:
    """The espeak speed and pitch of one utterance."""
    rng = _stream(seed, spk.language, spk.index, digit, utt, 0)
    speed = int(round(spk.speed * rng.uniform(1 - SPEED_JITTER, 1 + SPEED_JITTER)))
    pitch = int(np.clip(spk.pitch + rng.integers(-PITCH_JITTER, PITCH_JITTER + 1), 0, 99))
    return speed, pitch


def audio_cache_path(spk: Speaker, utterances: int, seed: int) -> Path:
    """Where the audio of ``spk`` (``utterances`` per digit, ``seed``) is cached."""
    return cache_dir() / f"spoken_v{VERSION}_{spk.language}_{spk.tag}_u{utterances}_seed{seed}.npz"


def _missing_audio(speakers: Sequence[Speaker], utterances: int, seed: int) -> list[Speaker]:
    return [s for s in speakers if not audio_cache_path(s, utterances, seed).exists()]


def _ensure_audio(language, speakers, utterances, seed, workers, progress) -> None:
    """Synthesise and cache every speaker whose audio is not cached yet."""
    todo = _missing_audio(speakers, utterances, seed)
    if not todo:
        return
    exe = espeak_executable()
    if exe is None:
        raise DataNotFoundError(
            f"spoken:{language}", [Path("espeak-ng")], cache_dir(), "cache of synthesised speech", ESPEAK_HINT
        )
    from tqdm.auto import tqdm

    jobs = [(d, u) for d in range(10) for u in range(utterances)]
    bar = tqdm(
        total=len(todo) * len(jobs), desc=f"espeak-ng {language}", unit="utt", file=sys.stderr, disable=not progress
    )
    with ThreadPoolExecutor(max_workers=workers) as pool, bar:
        for spk in todo:
            params = [_jitter(spk, d, u, seed) for d, u in jobs]

            def one(i, spk=spk, params=params):
                wave = _synthesise(exe, spk.voice, params[i][1], params[i][0], spk.tract, str(jobs[i][0]))
                bar.update(1)
                return wave

            waves = list(pool.map(one, range(len(jobs))))
            atomic_savez(
                audio_cache_path(spk, utterances, seed),
                compressed=True,
                audio=np.concatenate(waves),
                offsets=np.cumsum([0] + [len(w) for w in waves]).astype(np.int64),
                digit=np.array([d for d, _ in jobs], np.int64),
                utterance=np.array([u for _, u in jobs], np.int64),
                speed=np.array([p[0] for p in params], np.int64),
                pitch=np.array([p[1] for p in params], np.int64),
                voice=np.array(spk.voice),
                version=np.int64(VERSION),
            )


# --------------------------------------------------------------------------------------------
# Public loader
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SpokenDigits:
    """Spoken-digit samples with their speakers.

    Attributes
    ----------
    X : ndarray of float32, shape (n, 1, n_mels, n_frames)
        Log-mel spectrograms in [0, 1] (see the module docstring).
    y : ndarray of int64, shape (n,)
        The digit, 0..9.
    speaker : ndarray of int64, shape (n,)
        Index of the voice in the language's catalogue (:func:`speaker`).
    utterance : ndarray of int64, shape (n,)
        Repetition number within (speaker, digit).
    language : str
    speakers : tuple of Speaker
        The voices present, in the order requested.
    """

    X: np.ndarray
    y: np.ndarray
    speaker: np.ndarray
    utterance: np.ndarray
    language: str
    speakers: tuple[Speaker, ...]

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> SpokenDigits:
        """The samples at ``index`` (integer array or boolean mask); ``speakers`` keeps those still present."""
        spk = self.speaker[index]
        kept = tuple(s for s in self.speakers if np.any(spk == s.index))
        return SpokenDigits(self.X[index], self.y[index], spk, self.utterance[index], self.language, kept)

    def domain(self, name: str | None = None) -> Domain:
        """A labelled :class:`~transferkit.data.Domain` (default name ``"spoken:<language>"``)."""
        return Domain(self.X, self.y, name or f"spoken:{self.language}")

    def split(self, test_fraction: float = 0.3, seed: int = 0) -> tuple[SpokenDigits, SpokenDigits]:
        """Train and test parts by utterance: ``test_fraction`` of every (speaker, digit) goes to test."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction={test_fraction!r}; expected a number in (0, 1).")
        train, test = fixed_split(self.speaker * 10 + self.y, test_fraction, seed)
        return self.subset(train), self.subset(test)


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r}; expected an integer >= {low}.")
    return int(value)


def _speaker_list(language: str, speakers) -> tuple[Speaker, ...]:
    if isinstance(speakers, (int, np.integer)) and not isinstance(speakers, bool):
        return tuple(speaker(language, i) for i in range(_check_int(speakers, "speakers", 1)))
    if isinstance(speakers, (str, bytes)) or not isinstance(speakers, Sequence):
        raise TypeError(f"speakers={speakers!r}; expected a count or a sequence of speaker indices or Speakers.")
    out = tuple(s if isinstance(s, Speaker) else speaker(language, _check_int(s, "speakers[i]", 0)) for s in speakers)
    if any(s.language != language for s in out):
        raise ValueError(f"speakers={speakers!r}: every Speaker must speak language={language!r}.")
    if not out or len({s.index for s in out}) != len(out):
        raise ValueError(f"speakers={speakers!r}; expected a non-empty sequence of speakers with distinct indices.")
    return out


def load_spoken_digits(
    language: str = "en",
    speakers: int | Sequence[int] = 20,
    utterances: int = 10,
    seed: int = 0,
    n_mels: int = 40,
    n_frames: int = 50,
    snr_db: tuple[float, float] | None = (15.0, 35.0),
    max_shift: float = 0.1,
    workers: int = 2,
    progress: bool = True,
) -> SpokenDigits:
    """Spoken digits 0-9 of ``speakers`` voices of ``language``, ``utterances`` repetitions each.

    Parameters
    ----------
    language : str
        One of :data:`LANGUAGES` (``en de fr es it nl zh``).
    speakers : int or sequence of int or Speaker
        A count (speakers ``0..count-1``), catalogue indices (:func:`speaker`) or voices of one's
        own (:class:`Speaker`, such as :data:`OUT_OF_RANGE` ones), with distinct indices.
    utterances : int
        Repetitions of every digit per speaker; utterance ``u`` of a speaker is the same whatever
        the other arguments list (its randomness is named by seed, language, speaker, digit, u).
    seed : int
        Seed of the per-utterance jitter, shift and noise (the voices do not depend on it).
    n_mels, n_frames : int
        Feature size; ``n_frames`` frames of 20 ms.
    snr_db : (low, high) or None
        Range of the per-utterance signal-to-noise ratio of added white noise; None: clean.
    max_shift : float
        Largest shift of the speech from the window's centre, in seconds (a random leading silence).
    workers : int
        Concurrent espeak-ng processes while filling the cache.
    progress : bool
        Show synthesis progress on stderr.

    Returns
    -------
    SpokenDigits
        Ordered by speaker, then digit, then utterance.

    Raises
    ------
    DataNotFoundError
        Audio not cached and ``espeak-ng`` not installed.
    """
    _check_language(language)
    voices = _speaker_list(language, speakers)
    utterances, seed = _check_int(utterances, "utterances", 1), _check_int(seed, "seed", 0)
    n_mels, n_frames = _check_int(n_mels, "n_mels", 1), _check_int(n_frames, "n_frames", 1)
    workers = _check_int(workers, "workers", 1)
    if snr_db is not None and not (len(snr_db) == 2 and snr_db[0] <= snr_db[1]):
        raise ValueError(f"snr_db={snr_db!r}; expected (low, high) in dB with low <= high, or None.")
    if not 0 <= max_shift:
        raise ValueError(f"max_shift={max_shift!r}; expected seconds >= 0.")
    _ensure_audio(language, voices, utterances, seed, workers, progress)
    length = N_FFT + HOP * (n_frames - 1)
    X, y, who, utt = [], [], [], []
    for spk in voices:
        i = spk.index
        f = read_npz(str(audio_cache_path(spk, utterances, seed)))
        waves = np.empty((len(f["digit"]), length))
        for j, (d, u) in enumerate(zip(f["digit"], f["utterance"], strict=True)):
            speech = _speech_span(f["audio"][f["offsets"][j] : f["offsets"][j + 1]] / 32768.0)
            speech = speech / max(np.abs(speech).max(), 1e-9)
            rng = _stream(seed, language, i, int(d), int(u), 1)
            shift = rng.uniform(-max_shift, max_shift) * SAMPLE_RATE
            snr = None if snr_db is None else rng.uniform(*snr_db)
            waves[j] = _place(speech, length, shift, snr, rng)
        X.append(log_mel_spectrogram(waves, n_mels)[:, None])
        y.append(f["digit"])
        who.append(np.full(len(waves), i, np.int64))
        utt.append(f["utterance"])
    c = np.concatenate
    return SpokenDigits(c(X), c(y), c(who), c(utt), language, voices)


def speaker_split(data: SpokenDigits, target: int, test_fraction: float = 0.5, seed: int = 0) -> Task:
    """A "many voices -> a new voice" task: every other speaker as source, ``target`` split by utterance.

    Parameters
    ----------
    data : SpokenDigits
    target : int
        The catalogue index of the new voice; must be among ``data.speakers``.
    test_fraction, seed
        The target speaker's split (see :meth:`SpokenDigits.split`).

    Returns
    -------
    Task
        ``source``: all utterances of the other speakers (labelled); ``target``: the target
        speaker's training part, **labelled** (for fine-tuning; ``task.target.unlabelled()`` for
        unsupervised adaptation); ``target_test``: its test part.
    """
    if not isinstance(data, SpokenDigits):
        raise TypeError(f"data is {type(data).__name__}; expected SpokenDigits from load_spoken_digits.")
    present = [s.index for s in data.speakers]
    if target not in present or len(present) < 2:
        raise ValueError(f"target={target!r}; expected one of the speakers {present} (and at least one other).")
    is_t = data.speaker == target
    train, test = data.subset(is_t).split(test_fraction, seed)
    base = f"spoken:{data.language}"
    source = data.subset(~is_t).domain(f"{base}/speakers-except-{target}")
    return Task(
        source,
        train.domain(f"{base}/speaker-{target}"),
        test.domain(f"{base}/speaker-{target}"),
        name=f"{source.name}->{base}/speaker-{target}",
    )


# --------------------------------------------------------------------------------------------
# Registry records
# --------------------------------------------------------------------------------------------
REGISTRY_SPEAKERS, REGISTRY_UTTERANCES, REGISTRY_TEST_FRACTION = 20, 10, 0.3
HELD_OUT, HELD_OUT_UTTERANCES, HELD_OUT_TEST_FRACTION = range(20, 25), 20, 0.5
_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "zh": "Mandarin",
}
_SOURCE = "synthesised with espeak-ng (eSpeak NG); HTK log-mel features"


@lru_cache(maxsize=4)
def _registry_data(language: str, speakers: tuple[Speaker, ...], utterances: int) -> SpokenDigits:
    return load_spoken_digits(language, speakers, utterances)


def _loader(language: str, speakers: tuple[Speaker, ...], utterances: int, test_fraction: float):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        data = _registry_data(language, speakers, utterances)
        if split != "all":
            data = data.split(test_fraction, 0)[0 if split == "train" else 1]
        return data.X.copy(), data.y.copy()

    return load


def _requires(speakers: tuple[Speaker, ...], utterances: int):
    def missing(root: Path) -> list[Path]:
        if espeak_executable() or not _missing_audio(speakers, utterances, 0):
            return []
        return [Path("espeak-ng")]

    return missing


def _spec(key: str, voices: tuple[Speaker, ...], utterances: int, test_fraction: float, description: str) -> _Spec:
    info = make_info(key, "images", 10, description, _SOURCE)
    load = _loader(voices[0].language, voices, utterances, test_fraction)
    return _Spec(info, load, _requires(voices, utterances), ESPEAK_HINT)


def specs() -> list[_Spec]:
    """The registry records of the spoken digits."""
    out = []
    for lang in LANGUAGES:
        voices = tuple(speaker(lang, i) for i in range(REGISTRY_SPEAKERS))
        what = f"{_NAMES[lang]} digits, {REGISTRY_SPEAKERS} voices x {REGISTRY_UTTERANCES} utterances, log-mel 1x40x50"
        out.append(_spec(f"spoken:{lang}", voices, REGISTRY_UTTERANCES, REGISTRY_TEST_FRACTION, what + "; 3/10 test"))
    held = [(f"speaker-{i}", speaker("en", i), f"catalogue voice {i}") for i in HELD_OUT]
    held += [(name, v, f"out-of-range voice (tract {v.tract}, pitch {v.pitch})") for name, v in OUT_OF_RANGE.items()]
    for name, voice, what in held:
        what = f"one new English {what}, {HELD_OUT_UTTERANCES} utterances per digit; half test"
        out.append(_spec(f"spoken:en-{name}", (voice,), HELD_OUT_UTTERANCES, HELD_OUT_TEST_FRACTION, what))
    return out
