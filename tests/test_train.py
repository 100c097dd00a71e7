"""Tests of ``transferkit.train``: determinism, checkpoints and resume, torchrun, schedules, errors.

Everything trains tiny models on tiny synthetic data on the CPU. Tests that kill or launch
training processes run ``tests/helpers_train.py`` in subprocesses, with ``PYTHONPATH`` pointing
at this checkout's ``src``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import transferkit.train.distributed as tk_distributed
from transferkit.datasets.synthetic import make_blobs_shift
from transferkit.methods.dann import DANN
from transferkit.train.checkpoint import CheckpointError, CheckpointManager, load_checkpoint, save_checkpoint
from transferkit.train.loop import FitConfig, fit_loop

REPO = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).resolve().with_name("helpers_train.py")
if str(HELPER.parent) not in sys.path:
    sys.path.insert(0, str(HELPER.parent))
import helpers_train  # noqa: E402

CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env["MKL_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _reap_processes():
    """Kill (by pid, only the ones this module started) any helper still running after a test."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc._log_file.close()
        if proc.stdin is not None:
            proc.stdin.close()


def _popen(args: list[str], log: Path, stdin=None) -> subprocess.Popen:
    f = open(log, "wb")
    proc = subprocess.Popen(args, env=_env(), cwd=str(REPO), stdout=f, stderr=subprocess.STDOUT, stdin=stdin)
    proc._log_file = f
    _STARTED.append(proc)
    return proc


def _finish(proc: subprocess.Popen, log: Path, what: str, timeout: float = 180) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{what} did not finish within {timeout} s; output:\n{log.read_text()[-4000:]}")
    proc._log_file.flush()
    if proc.returncode != 0:
        pytest.fail(f"{what} exited with {proc.returncode}; output:\n{log.read_text()[-4000:]}")


def _ckpt_steps(directory: Path) -> list[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for n in names if (m := CKPT_RE.match(n)))


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs (max abs diff {(a[k] - b[k]).abs().max().item():g})"


class Classifier(nn.Module):
    """A fit_loop objective with dropout (so the torch RNG matters) that can be made to crash.

    ``fail_at``: raise ``Interrupted`` on that (1-based) forward call, before the step happens.
    """

    def __init__(self, fail_at: int | None = None, n_features: int = 4):
        super().__init__()
        torch.manual_seed(1)
        self.hidden = nn.Linear(n_features, 8)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(8, 3)
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, batch, progress):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise Interrupted(f"simulated crash on call {self.calls}")
        h_s = self.drop(torch.relu(self.hidden(batch["xs"])))
        h_t = torch.relu(self.hidden(batch["xt"]))
        loss_y = F.cross_entropy(self.out(h_s), batch["ys"])
        loss_t = 0.1 * (h_t.mean(0) - h_s.mean(0)).pow(2).sum()  # a toy alignment term
        return {"loss": loss_y + loss_t, "loss_y": loss_y.detach(), "progress": torch.tensor(progress)}


class Interrupted(RuntimeError):
    pass


def _arrays(n_s: int = 70, n_t: int = 45, seed: int = 0):
    rng = np.random.default_rng(seed)
    source = {"xs": rng.standard_normal((n_s, 4)).astype(np.float32), "ys": rng.integers(0, 3, n_s)}
    target = {"xt": (rng.standard_normal((n_t, 4)) + 0.5).astype(np.float32)}
    return source, target


# 70 source samples, batch 8 -> 8 steps per epoch; checkpoint_every=3 does not divide it.
STEPS_PER_EPOCH = 8


def _config(checkpoint_dir=None, **kw) -> FitConfig:
    base = dict(
        epochs=4,
        batch_size=8,
        lr=0.05,
        seed=3,
        device="cpu",
        progress=False,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
        checkpoint_every=3,
    )
    base.update(kw)
    return FitConfig(**base)


def _dann(**kw) -> DANN:
    base = dict(backbone="shallow", hidden=16, disc_hidden=(16,), epochs=3, batch_size=32, lr=5e-3, device="cpu")
    base.update(kw)
    return DANN(**base)


@pytest.fixture(scope="module")
def dann_task():
    return make_blobs_shift(n_classes=3, n_source=200, n_target=160, n_features=4, n_test=300, seed=2)


# --------------------------------------------------------------------------------------------
# 1. Determinism
# --------------------------------------------------------------------------------------------
def test_dann_same_seed_is_bit_identical_and_other_seed_differs(dann_task):
    a = _dann(seed=7).fit(dann_task.source, dann_task.target)
    b = _dann(seed=7).fit(dann_task.source, dann_task.target)
    c = _dann(seed=8).fit(dann_task.source, dann_task.target)

    assert a.fit_result_.steps == 3 * (200 // 32)
    _assert_same_state(a.objective_.state_dict(), b.objective_.state_dict())  # net and discriminator
    assert np.array_equal(a.predict_proba(dann_task.target_test.X), b.predict_proba(dann_task.target_test.X))
    assert np.array_equal(a.transform(dann_task.target_test.X), b.transform(dann_task.target_test.X))
    assert a.history_ == b.history_

    sa, sc = a.objective_.state_dict(), c.objective_.state_dict()
    assert all(not torch.equal(sa[k], sc[k]) for k in sa), "another seed must give other weights"
    X_test = dann_task.target_test.X
    assert not np.array_equal(a.predict_proba(X_test), c.predict_proba(X_test))


# --------------------------------------------------------------------------------------------
# 2. SIGKILL in the middle of a run, then resume from the newest checkpoint
# --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals (SIGKILL)")
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    epochs, seed = 60, 4
    total = epochs * helpers_train.loop_steps_per_epoch()
    ckpt = tmp_path / "ckpt"

    def cmd(out: Path, with_ckpt: bool) -> list[str]:
        args = [sys.executable, str(HELPER), "loop", "--out", str(out)]
        args += ["--epochs", str(epochs), "--seed", str(seed)]
        return args + (["--ckpt", str(ckpt)] if with_ckpt else [])

    # The uninterrupted reference runs alongside the run that gets killed; the run that resumes
    # starts now too, but waits (imports done) for a "go" once the first one is dead.
    ref = _popen(cmd(tmp_path / "ref.pt", False), tmp_path / "ref.log")
    resumed_log = tmp_path / "resumed.log"
    resumed = _popen(cmd(tmp_path / "resumed.pt", True) + ["--wait-stdin"], resumed_log, stdin=subprocess.PIPE)
    victim = _popen(cmd(tmp_path / "killed.pt", True), tmp_path / "killed.log")
    try:
        deadline = time.monotonic() + 120
        while True:
            if victim.poll() is not None:
                pytest.fail(
                    f"the training run ended (rc={victim.returncode}) before it could be killed half way "
                    f"(checkpoints at steps {_ckpt_steps(ckpt)} of {total}); make the run longer (epochs). "
                    f"Output:\n{(tmp_path / 'killed.log').read_text()[-3000:]}"
                )
            steps = _ckpt_steps(ckpt)
            if steps and steps[-1] >= total // 2:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint half way through after 120 s (found steps {steps})")
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert victim.returncode == -signal.SIGKILL, (
        f"the run was meant to die from SIGKILL but exited with {victim.returncode} (it finished first?); "
        "make the run longer"
    )
    assert not (tmp_path / "killed.pt").exists(), "the killed run got to write its final weights"
    left = _ckpt_steps(ckpt)
    assert left and total // 2 <= left[-1] < total, f"checkpoints left by the killed run: {left} of {total}"
    spe = helpers_train.loop_steps_per_epoch()
    if left[-1] % spe == 0:
        # Killed just after an epoch-end checkpoint: drop it, as if the kill came a little earlier,
        # so the resume always starts mid-epoch (the harder case: the shuffle must be replayed).
        (ckpt / f"ckpt-{left[-1]:09d}.pt").unlink()
        left = left[:-1]
    assert left[-1] % spe, f"expected a mid-epoch checkpoint, got step {left[-1]}"

    # Same command again: resumes from the newest checkpoint and runs to the end.
    assert resumed.poll() is None, f"the second run ended early:\n{resumed_log.read_text()[-3000:]}"
    resumed.stdin.write(b"go\n")
    resumed.stdin.close()
    _finish(resumed, resumed_log, "the resumed run")
    _finish(ref, tmp_path / "ref.log", "the reference run")

    info = json.loads(Path(str(tmp_path / "resumed.pt") + ".json").read_text())
    ref_info = json.loads(Path(str(tmp_path / "ref.pt") + ".json").read_text())
    assert info["resumed_at_step"] is not None, "the second run did not resume"
    assert info["resumed_at_step"] > 0
    assert info["resumed_at_step"] == left[-1], "it must resume from the newest checkpoint"
    assert ref_info["resumed_at_step"] is None
    assert info["steps"] == ref_info["steps"] == total

    _assert_same_state(torch.load(tmp_path / "resumed.pt"), torch.load(tmp_path / "ref.pt"))
    assert info["checksum"] == ref_info["checksum"]
    assert info["history"] == ref_info["history"]  # per-epoch logs survive the kill too


# --------------------------------------------------------------------------------------------
# 3. Mid-epoch resume in-process (a crash from the module's forward)
# --------------------------------------------------------------------------------------------
_REFERENCES: dict = {}


def _reference(optimizer: str = "adam", schedule: str = "constant"):
    """The uninterrupted run of ``_config`` (cached: the same for every interruption point)."""
    key = (optimizer, schedule)
    if key not in _REFERENCES:
        source, target = _arrays()
        module = Classifier()
        result = fit_loop(module, source, target, _config(optimizer=optimizer, lr_schedule=schedule))
        assert result.resumed_at_step is None and module.calls == result.steps
        _REFERENCES[key] = (module, result)
    return _REFERENCES[key]


@pytest.mark.parametrize("optimizer, schedule", [("adam", "constant"), ("sgd", "ganin")])
@pytest.mark.parametrize(
    "fail_at, resume_step",
    [
        (14, 12),  # 13 steps done: last checkpoint at 12, mid-epoch (epoch 2, 4 steps in)
        (11, 9),  # last checkpoint at 9, the first step of epoch 2 done
        (18, 16),  # last checkpoint at 16, an epoch end (checkpoint_every does not fire there)
        (26, 24),  # last checkpoint at 24, an epoch end: resumes at the start of epoch 4
        (29, 27),  # mid-epoch in the last epoch, after the epoch-end checkpoint at 24
    ],
)
def test_mid_epoch_resume_is_exact(tmp_path, optimizer, schedule, fail_at, resume_step):
    source, target = _arrays()
    cfg = dict(optimizer=optimizer, lr_schedule=schedule)
    assert len(source["xs"]) // 8 == STEPS_PER_EPOCH and STEPS_PER_EPOCH % 3
    ref, ref_result = _reference(optimizer, schedule)

    crashing = Classifier(fail_at=fail_at)
    with pytest.raises(Interrupted):
        fit_loop(crashing, source, target, _config(tmp_path, **cfg))
    assert _ckpt_steps(tmp_path)[-1] == resume_step

    resumed = Classifier()
    result = fit_loop(resumed, source, target, _config(tmp_path, **cfg))
    assert result.resumed_at_step == resume_step
    assert resumed.calls == ref_result.steps - resume_step, "steps before the checkpoint must not be redone"
    assert result.steps == ref_result.steps == 4 * STEPS_PER_EPOCH
    _assert_same_state(resumed.state_dict(), ref.state_dict())
    assert result.history == ref_result.history


def test_completed_run_resumes_to_the_end_without_training(tmp_path):
    source, target = _arrays()
    first = Classifier()
    r1 = fit_loop(first, source, target, _config(tmp_path))
    again = Classifier()
    r2 = fit_loop(again, source, target, _config(tmp_path))
    assert r2.resumed_at_step == r1.steps and again.calls == 0
    _assert_same_state(again.state_dict(), first.state_dict())
    assert r2.history == r1.history


def test_dann_estimator_checkpoint_dir_resumes(tmp_path, dann_task):
    plain = _dann(seed=3).fit(dann_task.source, dann_task.target)
    first = _dann(seed=3, checkpoint_dir=str(tmp_path)).fit(dann_task.source, dann_task.target)
    assert _ckpt_steps(tmp_path) == [12, 18]  # one checkpoint per epoch, the last two kept
    again = _dann(seed=3, checkpoint_dir=str(tmp_path)).fit(dann_task.source, dann_task.target)
    assert first.fit_result_.resumed_at_step is None
    assert again.fit_result_.resumed_at_step == 18
    _assert_same_state(first.objective_.state_dict(), plain.objective_.state_dict())
    _assert_same_state(again.objective_.state_dict(), plain.objective_.state_dict())
    X_test = dann_task.target_test.X
    assert np.array_equal(again.predict_proba(X_test), plain.predict_proba(X_test))


@pytest.mark.parametrize("kind", ["Path checkpoint_dir", "numpy epochs", "numpy lr"])
def test_resume_with_path_or_numpy_config_values(tmp_path, kind):
    source, target = _arrays()
    kw = {
        "Path checkpoint_dir": dict(checkpoint_dir=tmp_path),
        "numpy epochs": dict(checkpoint_dir=str(tmp_path), epochs=np.int64(2)),
        "numpy lr": dict(checkpoint_dir=str(tmp_path), lr=np.float64(0.05)),
    }[kind]
    cfg = FitConfig(**{**vars(_config(epochs=2)), **kw})
    first = fit_loop(Classifier(), source, target, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint we just wrote must load without complaint
        again = fit_loop(Classifier(), source, target, cfg)
    assert again.resumed_at_step == first.steps


# --------------------------------------------------------------------------------------------
# 4. Corrupt and unsafe checkpoints, atomic saves, config mismatch
# --------------------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_newest_checkpoint_falls_back_to_previous(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (1, 2, 3):
        manager.save({"format": 1, "step": step, "w": torch.full((50, 50), float(step))}, step)
    newest = manager.paths()[-1]
    assert newest.name == "ckpt-000000003.pt"
    _truncate(newest)

    with pytest.raises(CheckpointError, match=re.escape(str(newest))):
        load_checkpoint(newest)
    with pytest.warns(UserWarning, match=re.escape(newest.name)):
        state = manager.load_latest()
    assert state["step"] == 2 and torch.equal(state["w"], torch.full((50, 50), 2.0))
    assert newest.exists(), "a damaged checkpoint is kept (skipped, not deleted)"

    # Every checkpoint damaged: warnings for each, and nothing to resume from.
    for p in manager.paths():
        _truncate(p)
    with pytest.warns(UserWarning) as record:
        assert manager.load_latest() is None
    assert len([w for w in record if "ckpt-" in str(w.message)]) == 3


def test_fit_loop_resumes_from_previous_checkpoint_when_newest_is_truncated(tmp_path):
    source, target = _arrays()
    ref, _ = _reference()
    with pytest.raises(Interrupted):
        fit_loop(Classifier(fail_at=14), source, target, _config(tmp_path))
    assert _ckpt_steps(tmp_path) == [9, 12]
    _truncate(tmp_path / "ckpt-000000012.pt")

    resumed = Classifier()
    with pytest.warns(UserWarning, match="ckpt-000000012.pt"):
        result = fit_loop(resumed, source, target, _config(tmp_path))
    assert result.resumed_at_step == 9
    _assert_same_state(resumed.state_dict(), ref.state_dict())


def _flip_a_tensor_byte(path: Path) -> None:
    """Flip one bit inside the stored bytes of the largest tensor (torch does not check the zip CRC)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = (
        int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little"),
        int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little"),
    )
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_bit_inside_tensor_data_is_caught_by_the_checksum(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    for step in (1, 2):
        manager.save({"format": 1, "step": step, "w": torch.full((50, 50), float(step))}, step)
    newest = manager.paths()[-1]
    _flip_a_tensor_byte(newest)
    with pytest.raises(CheckpointError, match="do not match the checksum"):
        load_checkpoint(newest)
    with pytest.warns(UserWarning, match="damaged"):
        assert manager.load_latest()["step"] == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda st: st.update(history=5),  # a history of the wrong type
        lambda st: st["model"].update({k: torch.zeros(3) for k in list(st["model"])[:1]}),  # wrong shapes
        lambda st: st["rng"].update(torch=torch.zeros(3, dtype=torch.uint8)),  # damaged RNG bytes
        lambda st: st["rng"].update(numpy_epoch={"state": 1}),
    ],
)
def test_a_checkpoint_that_loads_but_cannot_be_restored_falls_back(tmp_path, damage):
    source, target = _arrays()
    ref, _ = _reference()
    with pytest.raises(Interrupted):
        fit_loop(Classifier(fail_at=14), source, target, _config(tmp_path))
    newest = tmp_path / "ckpt-000000012.pt"
    state = load_checkpoint(newest)
    damage(state)
    save_checkpoint(newest, state)  # a valid checksum over invalid contents
    resumed = Classifier()
    with pytest.warns(UserWarning, match="could not be restored"):
        result = fit_loop(resumed, source, target, _config(tmp_path))
    assert result.resumed_at_step == 9
    _assert_same_state(resumed.state_dict(), ref.state_dict())


def test_load_checkpoint_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=re.escape(str(missing))):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match=re.escape(str(garbage))):
        load_checkpoint(garbage)
    no_format = tmp_path / "plain.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, no_format)
    with pytest.raises(CheckpointError, match="not a transferkit checkpoint"):
        load_checkpoint(no_format)
    a_list = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], a_list)
    with pytest.raises(CheckpointError, match=re.escape(str(a_list))):
        load_checkpoint(a_list)


class Payload:
    """Unpickling this calls ``os.mkdir(marker)``: code execution, visible as the marker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the plain pickle
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_checkpoint_with_pickled_code_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt-000000005.pt"
    state = {"format": 1, "step": 5, "evil": Payload(marker)}
    if writer == "torch.save":
        torch.save(state, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f)

    with pytest.raises(CheckpointError, match=re.escape(str(path))) as refused:
        load_checkpoint(path)
    assert not marker.exists(), "load_checkpoint executed code from the checkpoint"
    assert "weights_only" not in str(refused.value) and "trust the source" not in str(refused.value)
    with pytest.warns(UserWarning):
        assert CheckpointManager(tmp_path).load_latest() is None
    assert not marker.exists()

    # Control: the payload is live; an unsafe load would have run it.
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert marker.exists()


def test_save_checkpoint_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "ckpt-000000001.pt"
    save_checkpoint(path, {"format": 1, "step": 1, "w": torch.arange(5.0)})
    assert os.listdir(path.parent) == [path.name]
    save_checkpoint(path, {"format": 1, "step": 2, "w": torch.arange(6.0)})  # overwrite
    assert os.listdir(path.parent) == [path.name]
    assert load_checkpoint(path)["step"] == 2

    # A save that fails half way (an unpicklable object) leaves the old file intact and no temp.
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, {"format": 1, "step": 3, "w": torch.zeros(1000), "bad": lambda: 0})
    assert os.listdir(path.parent) == [path.name]
    assert load_checkpoint(path)["step"] == 2

    manager = CheckpointManager(tmp_path / "m", keep=2)
    for step in range(1, 6):
        manager.save({"format": 1, "step": step}, step)
    assert sorted(set(os.listdir(tmp_path / "m")) - {".lock"}) == ["ckpt-000000004.pt", "ckpt-000000005.pt"]
    with pytest.raises(ValueError, match="keep"):
        CheckpointManager(tmp_path, keep=0)


def test_fit_loop_checkpoints_leave_no_temp_files(tmp_path):
    source, target = _arrays()
    fit_loop(Classifier(), source, target, _config(tmp_path))
    assert sorted(set(os.listdir(tmp_path)) - {".lock"}) == ["ckpt-000000030.pt", "ckpt-000000032.pt"]
    state = load_checkpoint(tmp_path / "ckpt-000000032.pt")
    assert state["step"] == 32 and len(state["history"]) == 4


@pytest.mark.parametrize("change", [{"lr": 0.01}, {"seed": 4}, {"epochs": 5}, {"optimizer": "sgd"}])
def test_resume_with_another_config_raises(tmp_path, change):
    source, target = _arrays()
    with pytest.raises(Interrupted):
        fit_loop(Classifier(fail_at=14), source, target, _config(tmp_path))
    with pytest.raises(ValueError, match="written by another run"):
        fit_loop(Classifier(), source, target, _config(tmp_path, **change))
    # resume=False starts afresh instead of raising.
    other = Classifier()
    result = fit_loop(other, source, target, _config(tmp_path, resume=False, **change))
    assert result.resumed_at_step is None and other.calls == result.steps


def test_resume_on_other_data_raises(tmp_path):
    source, target = _arrays()
    with pytest.raises(Interrupted):
        fit_loop(Classifier(fail_at=14), source, target, _config(tmp_path))
    other = {k: v.copy() for k, v in source.items()}
    other["xs"][0] += 1.0
    with pytest.raises(ValueError, match="data"):
        fit_loop(Classifier(), other, target, _config(tmp_path))


def test_fresh_run_clears_an_earlier_runs_checkpoints(tmp_path):
    source, target = _arrays()
    fit_loop(Classifier(), source, target, _config(tmp_path))
    (tmp_path / ".ckpt-000000001.pt.abc.tmp").write_bytes(b"half")
    with pytest.raises(Interrupted):
        fit_loop(Classifier(fail_at=14), source, target, _config(tmp_path, resume=False, lr=0.01))
    steps = sorted(int(p.name[5:14]) for p in tmp_path.glob("ckpt-*.pt"))
    assert steps and max(steps) < 14, steps
    assert not list(tmp_path.glob("*.tmp"))


# --------------------------------------------------------------------------------------------
# 5. Data-parallel training under torchrun
# --------------------------------------------------------------------------------------------
def _distributed_available() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


@pytest.mark.skipif(not _distributed_available(), reason="torch.distributed with gloo is not available")
def test_torchrun_two_processes_match_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    args = ["dann", "--epochs", "5", "--seed", "0", "--batch-size", "32"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    p2 = _popen(torchrun + [str(HELPER)] + args + ["--out", str(two)], tmp_path / "two.log")
    p1 = _popen([sys.executable, str(HELPER)] + args + ["--out", str(one)], tmp_path / "one.log")
    _finish(p1, tmp_path / "one.log", "the one-process run")
    _finish(p2, tmp_path / "two.log", "the torchrun run")

    single = json.loads((one / "rank0.json").read_text())
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert single["world"] == 1
    assert [r["world"] for r in ranks] == [2, 2] and [r["rank"] for r in ranks] == [0, 1]
    assert "accuracy" in ranks[0] and "accuracy" not in ranks[1]
    assert single["steps"] == ranks[0]["steps"] == ranks[1]["steps"]

    w0, w1 = torch.load(two / "rank0.pt"), torch.load(two / "rank1.pt")
    _assert_same_state(w0, w1)  # DDP keeps every rank's replica identical
    assert ranks[0]["checksum"] == ranks[1]["checksum"]

    assert abs(single["accuracy"] - ranks[0]["accuracy"]) <= 0.02
    assert single["accuracy"] > 0.5  # the run learnt something (3 classes)
    w_single = torch.load(one / "rank0.pt")
    assert w_single.keys() == w0.keys()
    for k in w0:  # the same training up to floating-point noise (summation order)
        assert torch.allclose(w0[k], w_single[k], rtol=0, atol=1e-4), f"{k}: 2 processes diverge from 1"


def test_batch_size_not_divisible_by_world_size_raises(monkeypatch):
    source, target = _arrays(n_s=96, n_t=96)
    monkeypatch.setattr(tk_distributed, "init_from_env", lambda: (0, 3))
    with pytest.raises(ValueError, match=r"batch_size=32 .*3 processes"):
        fit_loop(Classifier(), source, target, _config(batch_size=32, epochs=1, checkpoint_every=0))
    # The effective batch size counts: 200 asked, 96 samples -> 96, divisible by 3.
    result = fit_loop(Classifier(), source, target, _config(batch_size=200, epochs=1, checkpoint_every=0))
    assert result.steps == 1
    result = fit_loop(Classifier(), source, target, _config(batch_size=30, epochs=1, checkpoint_every=0))
    assert result.steps == 96 // 30


# --------------------------------------------------------------------------------------------
# 6. Learning-rate schedule
# --------------------------------------------------------------------------------------------
class LinearLoss(nn.Module):
    """loss = sum(w) + sum(v): every SGD step moves w by exactly -lr and v by -lr * lr_mult."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.v = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.progress: list[float] = []

    def param_groups(self):
        return [{"params": [self.w]}, {"params": [self.v], "lr_mult": 0.1}]

    def forward(self, batch, progress):
        self.progress.append(progress)
        return {"loss": self.w.sum() + self.v.sum() + 0.0 * batch["xs"].sum()}


@pytest.mark.parametrize("schedule", ["ganin", "constant"])
def test_lr_schedule_logged_and_applied(schedule):
    n, batch, epochs, lr0 = 40, 8, 6, 0.1
    spe, total = n // batch, (n // batch) * epochs
    module = LinearLoss()
    cfg = FitConfig(
        epochs=epochs,
        batch_size=batch,
        lr=lr0,
        optimizer="sgd",
        momentum=0.0,
        lr_schedule=schedule,
        seed=0,
        device="cpu",
        progress=False,
    )
    result = fit_loop(module, {"xs": np.ones((n, 2), np.float32)}, None, cfg)

    steps = np.arange(total)
    p = steps / total
    expected = lr0 / (1 + 10 * p) ** 0.75 if schedule == "ganin" else np.full(total, lr0)
    np.testing.assert_array_equal(module.progress, p)  # forward sees progress = step / total

    # The history logs, per epoch, the lr of the epoch's last step.
    logged = np.array([h["lr"] for h in result.history])
    assert [h["epoch"] for h in result.history] == list(range(1, epochs + 1))
    np.testing.assert_allclose(logged, expected[spe - 1 :: spe], rtol=1e-12, atol=0)
    if schedule == "ganin":
        assert logged[0] < lr0 and np.all(np.diff(logged) < 0)
        np.testing.assert_allclose(logged[-1], lr0 / (1 + 10 * (total - 1) / total) ** 0.75, rtol=1e-12)

    # And the optimiser really used it at every step (float64 parameters: exact up to rounding).
    np.testing.assert_allclose(module.w.item(), -expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(module.v.item(), -0.1 * expected.sum(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# 7. Errors
# --------------------------------------------------------------------------------------------
class Diverging(nn.Module):
    def __init__(self, bad_call: int, value: float):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.calls, self.bad_call, self.value = 0, bad_call, value

    def forward(self, batch, progress):
        self.calls += 1
        loss = (self.w * batch["xs"]).mean()
        if self.calls == self.bad_call:
            loss = loss * self.value
        return {"loss": loss}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_loss_raises_naming_the_step(value):
    source = {"xs": np.ones((40, 2), np.float32)}
    module = Diverging(bad_call=7, value=value)  # 5 steps per epoch: step 6 is in epoch 1
    with pytest.raises(FloatingPointError, match=r"at step 6 \(epoch 1\)"):
        fit_loop(module, source, None, FitConfig(epochs=3, batch_size=8, device="cpu", progress=False))
    assert torch.isfinite(module.w).all(), "the non-finite loss must not reach the weights"


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("epochs", -2),
        ("epochs", 2.5),
        ("batch_size", 0),
        ("lr", -1),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("lr", float("inf")),
        ("optimizer", "rmsprop"),
        ("lr_schedule", "x"),
    ],
)
def test_invalid_config_raises_naming_the_field(field, value):
    source, target = _arrays()
    cfg = FitConfig(device="cpu", progress=False, **{field: value})
    with pytest.raises(ValueError, match=rf"^{field}="):
        cfg.validate()
    module = Classifier()
    with pytest.raises(ValueError, match=rf"^{field}="):
        fit_loop(module, source, target, cfg)
    assert module.calls == 0


def test_mismatched_array_lengths_raise():
    source, target = _arrays()
    cfg = _config(epochs=1)
    bad_source = {"xs": source["xs"], "ys": source["ys"][:-1]}
    with pytest.raises(ValueError, match=r"source arrays differ in length"):
        fit_loop(Classifier(), bad_source, target, cfg)
    bad_target = {"xt": target["xt"], "extra": np.zeros(len(target["xt"]) + 2, np.float32)}
    with pytest.raises(ValueError, match=r"target arrays differ in length"):
        fit_loop(Classifier(), source, bad_target, cfg)
    with pytest.raises(ValueError, match="source is empty"):
        fit_loop(Classifier(), {"xs": source["xs"][:0], "ys": source["ys"][:0]}, target, cfg)
    with pytest.raises(ValueError, match="source has no arrays"):
        fit_loop(Classifier(), {}, target, cfg)


def test_grad_clip_bounds_every_step():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)

    class Obj(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, batch, progress):
            return {"loss": 1e3 * torch.nn.functional.cross_entropy(self.net(batch["xs"]), batch["ys"])}

    before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y = np.arange(8) % 2
    cfg = FitConfig(epochs=1, batch_size=8, lr=1.0, optimizer="sgd", momentum=0.0, grad_clip=1e-3, progress=False)
    fit_loop(Obj(), {"xs": x, "ys": y}, None, cfg)
    after = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert float((after - before).norm()) <= 1e-3 + 1e-7
    with pytest.raises(ValueError, match="grad_clip"):
        FitConfig(grad_clip=-1.0).validate()


# --------------------------------------------------------------------------------------------
# Sparse inputs: batched without densifying, the same training as the dense arrays
# --------------------------------------------------------------------------------------------
def _sparse_arrays():
    import scipy.sparse

    source, target = _arrays()
    rng = np.random.default_rng(5)
    for arrays, key in ((source, "xs"), (target, "xt")):
        arrays[key] = arrays[key] * (rng.random(arrays[key].shape) < 0.3)  # mostly zeros
    sparse_s = {**source, "xs": scipy.sparse.csr_matrix(source["xs"])}
    sparse_t = {"xt": scipy.sparse.csr_matrix(target["xt"])}
    return (source, target), (sparse_s, sparse_t)


class _SeesBatches(Classifier):
    def forward(self, batch, progress):
        self.layouts = {k: v.layout for k, v in batch.items()}
        return super().forward(batch, progress)


def test_sparse_arrays_train_like_dense_ones_and_arrive_sparse():
    (dense_s, dense_t), (sparse_s, sparse_t) = _sparse_arrays()
    dense, sparse = _SeesBatches(), _SeesBatches()
    r_dense = fit_loop(dense, dense_s, dense_t, _config())
    r_sparse = fit_loop(sparse, sparse_s, sparse_t, _config())
    assert sparse.layouts["xs"] == sparse.layouts["xt"] == torch.sparse_coo
    assert dense.layouts["xs"] == torch.strided
    for k, v in dense.state_dict().items():
        torch.testing.assert_close(sparse.state_dict()[k], v, rtol=1e-4, atol=1e-5)
    assert r_sparse.steps == r_dense.steps


def test_sparse_run_resumes_exactly(tmp_path):
    _, (sparse_s, sparse_t) = _sparse_arrays()
    ref = Classifier()
    fit_loop(ref, sparse_s, sparse_t, _config())
    with pytest.raises(Interrupted):
        fit_loop(Classifier(fail_at=14), sparse_s, sparse_t, _config(tmp_path))
    resumed = Classifier()
    result = fit_loop(resumed, sparse_s, sparse_t, _config(tmp_path))
    assert result.resumed_at_step == 12
    _assert_same_state(resumed.state_dict(), ref.state_dict())


def test_estimators_batch_bag_of_words_sparsely_only_for_their_own_vector_backbones():
    from transferkit.nn import build_backbone

    rng = np.random.default_rng(0)
    words = (rng.random((50, 400)) < 0.02).astype(np.float32)
    dense = rng.standard_normal((50, 400)).astype(np.float32)
    import scipy.sparse

    assert DANN()._sparse(words) and scipy.sparse.issparse(DANN()._batchable(words, True))
    assert not DANN()._sparse(dense) and not scipy.sparse.issparse(DANN()._batchable(dense, False))
    own = build_backbone("shallow", (400,), 2)  # a user's network may not start with a linear layer
    assert not DANN(backbone=own)._sparse(words)


def test_a_checkpoint_folder_of_other_settings_or_another_method_is_refused(tmp_path):
    """Resuming must never hand back another run's model (lambda_max=0 returned for lambda_max=1)."""
    from transferkit import DAN, DANN, DeepCORAL
    from transferkit.datasets import make_blobs_shift

    task = make_blobs_shift(n_source=120, n_target=120, seed=0)
    source, target = task.source, task.target.unlabelled()
    DANN(epochs=1, lambda_max=0.0, checkpoint_dir=str(tmp_path / "a")).fit(source, target)
    with pytest.raises(ValueError, match=r"identity.lambda_max: checkpoint 0.0 vs now 1.0"):
        DANN(epochs=1, lambda_max=1.0, checkpoint_dir=str(tmp_path / "a")).fit(source, target)
    DAN(epochs=1, checkpoint_dir=str(tmp_path / "b")).fit(source, target)
    with pytest.raises(ValueError, match=r"identity.method: checkpoint 'DAN' vs now 'DeepCORAL'"):
        DeepCORAL(epochs=1, checkpoint_dir=str(tmp_path / "b")).fit(source, target)
    same = DANN(epochs=1, lambda_max=0.0, checkpoint_dir=str(tmp_path / "a"), verbose=True).fit(source, target)
    assert same.fit_result_.resumed_at_step is not None  # the run's own folder still resumes


def test_selection_checkpoints_each_candidate_in_its_own_folder(tmp_path):
    from transferkit import DANN, select
    from transferkit.datasets import make_blobs_shift

    task = make_blobs_shift(n_source=600, n_target=200, seed=0)
    grid = {"lambda_max": [0.0, 3.0]}
    est = DANN(epochs=2, checkpoint_dir=str(tmp_path))
    result = select(est, grid, task.source, task.target.unlabelled(), "source")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate-1", "candidate-2", "refit"]
    fitted = result.fitted
    assert not np.allclose(fitted[0].predict_proba(task.target.X), fitted[1].predict_proba(task.target.X))
    again = select(est, grid, task.source, task.target.unlabelled(), "source")  # resumes every folder
    assert again.scores == result.scores and again.fitted[0].fit_result_.resumed_at_step is not None


def test_two_processes_saving_into_one_folder_never_lose_a_save(tmp_path):
    """Each save holds the folder's lock, so no process removes another's in-flight temporary file."""
    script = (
        "import sys, torch\n"
        "from transferkit.train.checkpoint import CheckpointManager\n"
        "m = CheckpointManager(sys.argv[1], keep=2)\n"
        "for i in range(40):\n"
        "    m.save({'format': 1, 'w': torch.zeros(1_000_000)}, int(sys.argv[2]) * 1000 + i)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(k)], env=env, stderr=subprocess.PIPE)
        for k in (1, 2)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errors


def test_write_text_atomic_uses_a_temp_name_of_its_own(tmp_path, monkeypatch):
    import tempfile

    from transferkit.report import write_text_atomic

    names = []
    real = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", lambda **kw: names.append(kw) or real(**kw))
    write_text_atomic(tmp_path / "a.json", "1")
    write_text_atomic(tmp_path / "a.json", "2")
    assert len(names) == 2 and (tmp_path / "a.json").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


class _ConvObjective(nn.Module):
    """A small convolutional classifier that records the layout its inputs and weights arrive in."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc, self.seen = nn.Conv2d(2, 4, 3), nn.Linear(4 * 6 * 6, 2), []

    def forward(self, batch, progress):
        x = batch["xs"]
        self.seen.append(
            (
                x.is_contiguous(memory_format=torch.channels_last),
                self.conv.weight.is_contiguous(memory_format=torch.channels_last),
            )
        )
        return {"loss": F.cross_entropy(self.fc(F.relu(self.conv(x)).flatten(1)), batch["ys"])}


@pytest.mark.parametrize("enabled", [True, False])
def test_convolutional_networks_train_channels_last_and_leave_in_the_default_layout(enabled, monkeypatch):
    import transferkit.train.loop as loop

    monkeypatch.setattr(loop, "CHANNELS_LAST", enabled)
    rng = np.random.default_rng(0)
    data = {"xs": rng.normal(size=(32, 2, 8, 8)).astype(np.float32), "ys": np.arange(32) % 2}
    objective = _ConvObjective()
    fit_loop(objective, data, None, FitConfig(epochs=1, batch_size=8))
    assert objective.seen == [(enabled, enabled)] * 4  # every batch and the weights, NHWC while training
    assert objective.conv.weight.is_contiguous()  # back in the default layout: safetensors can save it
