"""Time series: activity recognition from a wrist sensor, adapted to a sensor on the ankle.

Four activities (rest, walk, run, cycle) are recorded as 3-axis accelerometer series of 128
samples. A wrist sensor (the source) has labels; an ankle sensor (the target) has none. The ankle
sees the same gait frequencies with other amplitudes, a different axis orientation, a slow
drift and more noise. The series are simulated here from those physics, so the example needs no
download.

The two ``.npz`` files a user would have are written first: ``X`` of shape (n, 3, 128) and ``y``.
Then ``transferkit run`` trains on them as on any registered domain. Series of shape (channels,
length) get the 1-D convolutional backbone automatically.

    python examples/time_series.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ACTIVITIES = ("rest", "walk", "run", "cycle")
LENGTH, RATE = 128, 32.0  # samples per window, Hz


def simulate(n: int, placement: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows of 3-axis acceleration at ``placement`` ("wrist" or "ankle")."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH) / RATE
    y = rng.integers(0, len(ACTIVITIES), n)
    # step frequency (Hz) and the strength of its second harmonic per activity
    freq = {0: 0.0, 1: 1.8, 2: 2.8, 3: 1.3}
    harmonic = {0: 0.0, 1: 0.5, 2: 0.3, 3: 0.05}
    # the ankle moves more while walking and running, less while cycling than the wrist
    amplitude = {"wrist": (0.05, 1.0, 2.0, 0.6), "ankle": (0.05, 2.2, 3.5, 1.4)}[placement]
    rotation = np.eye(3)
    if placement == "ankle":  # the sensor's axes point elsewhere
        a, b = 0.9, 0.5
        rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.array(
            [[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]]
        )
    noise = 0.15 if placement == "wrist" else 0.35
    X = np.empty((n, 3, LENGTH), dtype=np.float32)
    for i, c in enumerate(y):
        f = freq[c] * rng.uniform(0.85, 1.15)
        phase = rng.uniform(0, 2 * np.pi)
        gait = np.sin(2 * np.pi * f * t + phase) + harmonic[c] * np.sin(4 * np.pi * f * t + 2 * phase)
        direction = np.array([1.0, 0.4, 0.2]) + rng.normal(0, 0.1, 3)
        signal = amplitude[c] * direction[:, None] * gait[None, :]
        signal[2] += 1.0  # gravity on the vertical axis
        drift = rng.normal(0, 0.3 if placement == "ankle" else 0.05, (3, 1)) * t[None, :] / t[-1]
        X[i] = rotation @ signal + drift + rng.normal(0, noise, (3, LENGTH))
    return X, y


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("time-series-example"))
    parser.add_argument("--quick", action="store_true", help="fewer windows and epochs (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    n = 300 if args.quick else 1500
    for placement, seed in (("wrist", 0), ("ankle", 1)):
        X, y = simulate(n, placement, seed)
        np.savez(args.out / f"{placement}.npz", X=X, y=y)

    results = {}
    for method in ("source-only", "dann"):
        cmd = [sys.executable, "-m", "transferkit", "run", method]
        cmd += ["--source", str(args.out / "wrist.npz"), "--target", str(args.out / "ankle.npz")]
        cmd += ["--epochs", "3" if args.quick else "30", "--json", "-q"]
        record = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        results[method] = record["target_accuracy"]
        print(f"wrist -> ankle, {method:<12s} target accuracy {record['target_accuracy']:.3f}")
    return results


if __name__ == "__main__":
    main()
