"""Training against damage and misuse, with the tiny random backbones: checkpoints really
truncated, emptied or missing a file (resume falls back to the newest intact one, and the run
ends bit-identical to an uninterrupted one), a real SIGKILL in the middle of a checkpoint
write, two runs on one output directory, and non-finite numbers in the config or the loss."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from desta.errors import ConfigError
from desta.locking import LockedError
from desta.training.config import load_config
from test_training_engine import make_rows, tiny_overrides, trainable, write_jsonl

STEPS = ["train.max_steps=4", "train.save_every=1", "train.keep_checkpoints=3"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("robust_corpus")
    write_jsonl(root / "train.jsonl", make_rows(root, range(12)))
    return root


def trainer(tiny_backbones, corpus: Path, out: Path, *extra: str, resume="auto"):
    from desta.training.trainer import Trainer

    return Trainer(load_config("tiny-cpu", tiny_overrides(tiny_backbones, corpus, out, *STEPS,
                                                          *extra)), resume=resume)


@pytest.fixture(scope="module")
def reference(tiny_backbones, corpus, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Final trainable weights of an uninterrupted 4-step run, on one thread like the tests
    (a module fixture is set up before the function-scoped `one_thread`; other thread counts
    sum in other orders, and exact resume is compared bit for bit)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = trainer(tiny_backbones, corpus, tmp_path_factory.mktemp("reference") / "run",
                      resume=None)
        assert run.fit().steps == 4
        return trainable(run.model)
    finally:
        torch.set_num_threads(before)


def assert_same_weights(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)


# ---- damaged checkpoints --------------------------------------------------------------------
def damage(checkpoint: Path, how: str) -> None:
    if how == "empty marker":
        (checkpoint / "trainer_state.json").write_bytes(b"")
    elif how == "truncated weights":
        weights = checkpoint / "model.safetensors"
        with weights.open("r+b") as fh:
            fh.truncate(weights.stat().st_size // 2)
    elif how == "missing optimizer":
        (checkpoint / "optimizer.bin").unlink()
    elif how == "flipped byte":
        weights = checkpoint / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-3] ^= 0xFF
        weights.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["empty marker", "truncated weights", "missing optimizer",
                                 "flipped byte"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
        tiny_backbones, corpus, reference, tmp_path, caplog, how):
    out = tmp_path / "run"
    first = trainer(tiny_backbones, corpus, out, resume=None)
    assert first.fit(stop_after_steps=3).steps == 3  # the 4-step schedule, cut after 3
    checkpoints = out / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "step_00000001", "step_00000002", "step_00000003"]
    damage(checkpoints / "step_00000003", how)

    with caplog.at_level(logging.WARNING):
        resumed = trainer(tiny_backbones, corpus, out)  # resume="auto"
    assert resumed.resumed_from == checkpoints / "step_00000002"
    assert "step_00000003 is not usable" in caplog.text
    assert "resuming from" in caplog.text and "step_00000002" in caplog.text
    result = resumed.fit()
    assert result.steps == 4 and result.final_dir is not None
    assert_same_weights(trainable(resumed.model), reference)
    # The damaged step was written again, intact.
    from desta.training.trainer import checkpoint_problem

    assert checkpoint_problem(checkpoints / "step_00000003") is None


def test_resume_refuses_a_named_damaged_checkpoint_and_an_all_damaged_folder(
        tiny_backbones, corpus, tmp_path):
    out = tmp_path / "run"
    assert trainer(tiny_backbones, corpus, out, "train.max_steps=2", resume=None).fit().steps == 2
    damage(out / "checkpoints" / "step_00000002", "truncated weights")
    with pytest.raises(ConfigError, match=r"step_00000002: model.safetensors is \d+ bytes"):
        trainer(tiny_backbones, corpus, out, resume=out / "checkpoints" / "step_00000002")
    damage(out / "checkpoints" / "step_00000001", "empty marker")
    with pytest.raises(ConfigError, match="no intact checkpoint"):
        trainer(tiny_backbones, corpus, out)


# ---- a real kill in the middle of a checkpoint write ---------------------------------------
TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from desta.training.config import load_config
    from desta.training.trainer import Trainer

    torch.set_num_threads(1)
    trainer = Trainer(load_config("tiny-cpu", json.loads(sys.argv[1])))
    trainer.fit()
""")


def run_script(tmp_path: Path, overrides: list[str]) -> subprocess.Popen:
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    return subprocess.Popen([sys.executable, str(script), json.dumps(overrides)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_sigkill_during_a_checkpoint_write_loses_nothing(tiny_backbones, corpus, reference,
                                                          tmp_path):
    """SIGKILL as soon as the step-3 checkpoint starts being written: the previous ones are
    intact, the torn one is never used, and the resumed run ends on the reference weights."""
    out = tmp_path / "run"
    overrides = tiny_overrides(tiny_backbones, corpus, out, *STEPS)
    proc = run_script(tmp_path, overrides)
    checkpoints = out / "checkpoints"
    writing = [checkpoints / "step_00000003.partial", checkpoints / "step_00000003"]
    deadline = time.monotonic() + 600
    while not any(p.exists() for p in writing):
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL

    from desta.training.trainer import checkpoint_problem, latest_checkpoint

    assert checkpoint_problem(checkpoints / "step_00000002") is None
    assert latest_checkpoint(out) == checkpoints / "step_00000002"
    resumed = trainer(tiny_backbones, corpus, out)
    assert resumed.resumed_from == checkpoints / "step_00000002"
    assert resumed.fit().steps == 4
    assert_same_weights(trainable(resumed.model), reference)
    assert not (checkpoints / "step_00000003.partial").exists()


# ---- one output directory, one run ----------------------------------------------------------
def test_a_second_run_on_the_same_output_directory_is_refused(tiny_backbones, corpus,
                                                               tmp_path):
    out = tmp_path / "run"
    long_run = tiny_overrides(tiny_backbones, corpus, out, "train.max_steps=100000",
                              "train.epochs=100000", "train.save_every=0")
    proc = run_script(tmp_path, long_run)
    try:
        lock = out / ".train.lock"
        deadline = time.monotonic() + 300
        while not (lock.exists() and f"pid {proc.pid} " in lock.read_text()):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(LockedError) as excinfo:
            trainer(tiny_backbones, corpus, out, resume=None)
        assert f"pid {proc.pid} " in str(excinfo.value) and str(out) in str(excinfo.value)
    finally:
        proc.kill()
        proc.wait(60)
    # kill -9 released it: the directory is usable again.
    again = trainer(tiny_backbones, corpus, out, "train.max_steps=1", resume=None)
    assert again.fit().steps == 1


# ---- non-finite numbers -----------------------------------------------------------------------
@pytest.mark.parametrize(("override", "field"), [
    ("optim.lr=.inf", "optim.lr"),
    ("optim.lr=.nan", "optim.lr"),
    ("optim.grad_clip=.nan", "optim.grad_clip"),
    ("optim.weight_decay=.nan", "optim.weight_decay"),
    ("optim.eps=-.inf", "optim.eps"),
    ("optim.betas=[0.9, .nan]", r"optim.betas\[1\]"),
    ("distill.temperature=.inf", "distill.temperature"),
    ("model.qformer_dropout=.nan", "model.qformer_dropout"),
])
def test_non_finite_numbers_in_a_config_are_refused(override, field):
    with pytest.raises(ConfigError, match=rf"{field} must be a finite number"):
        load_config("tiny-cpu", [override])


def test_a_diverging_run_stops_with_the_step_named_and_saves_nothing(tiny_backbones, corpus,
                                                                     tmp_path):
    """lr 1e30 is finite (so the config is valid) but blows the connector up after the first
    update: the next step's loss is NaN and the run stops there with a DestaError (exit 2 from
    the CLI), keeping only the intact step-1 checkpoint; the lock is released."""
    from desta.training.trainer import NonFiniteLossError

    out = tmp_path / "run"
    run = trainer(tiny_backbones, corpus, out, "optim.lr=1e30", "optim.warmup_steps=0",
                  "optim.schedule=constant", resume=None)
    with pytest.raises(NonFiniteLossError, match=r"loss became (nan|inf) at step 2 \(epoch 0\)"):
        run.fit()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_00000001"]
    assert not run._lock.held
