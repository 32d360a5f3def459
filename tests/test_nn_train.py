"""Training smoke runs on tiny generated data: the CLI, determinism, resuming, evaluation."""

import argparse
import gzip
import json
import struct

import numpy as np
import pytest
import torch

from hdlgen.errors import HdlgenError
from hdlgen.nn.checkpoint import load_checkpoint, read_checkpoint
from hdlgen.evaluate_cli import add_eval_arguments, cli_eval
from hdlgen.nn.loop import cosine_lr
from hdlgen.nn.train import add_train_arguments, cli_train, main


def write_fashion(root, n_train=96, n_test=40, seed=0):
    """Tiny idx files whose class shows as a bright band, so training has something to learn."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 100, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 * c:2 * c + 3] = 250
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            raw = struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
            (root / f"{stem}-{kind}-ubyte.gz").write_bytes(gzip.compress(raw, mtime=0))
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_fashion(tmp_path_factory.mktemp("fashion"))


def train_args(data, out, *extra):
    p = add_train_arguments(argparse.ArgumentParser())
    return p.parse_args(["mlp", "--data", str(data), "--dataset", "fashion-mnist", "--out", str(out),
                         "--config", '{"hidden": [24, 16]}', "--batch-size", "16", "--lr", "0.01",
                         "--log-every", "2", *extra])


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_one_epoch_smoke_and_eval(data_dir, tmp_path, capsys):
    out = tmp_path / "run" / "checkpoint.pt"
    assert cli_train(train_args(data_dir, out, "--epochs", "1", "--log", str(tmp_path / "train.log"))) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1 batch 2/6 loss" in text and "final test accuracy" in text
    assert (tmp_path / "train.log").read_text() == text
    model, ckpt = load_checkpoint(out)
    meta = ckpt["meta"]
    assert "train_state" not in ckpt
    assert meta["dataset"] == "fashion-mnist" and meta["epochs"] == 1 and meta["name"] == "run"
    assert ckpt["config"] == {"input_shape": [28, 28, 1], "hidden": [24, 16], "classes": 10}
    assert set(meta["accuracy"]) == {"float", "integer", "golden"}
    assert meta["accuracy"]["golden"] == meta["accuracy"]["integer"]
    assert meta["command"].startswith("python -m hdlgen train mlp ")
    json.dumps(meta)

    p = add_eval_arguments(argparse.ArgumentParser())
    assert cli_eval(p.parse_args(["--model", str(out), "--data", str(data_dir), "--json"])) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mismatches"] == 0 and result["count"] == 40 and result["weight_bits"] == 28 * 28 * 24 + 24 * 16 + 16 * 10
    assert result["dataset"] == "fashion-mnist"
    assert result["accuracy"]["golden"] == pytest.approx(meta["accuracy"]["golden"])
    assert cli_eval(p.parse_args(["--model", str(out), "--data", str(data_dir), "--limit", "7"])) == 0
    text = capsys.readouterr().out
    assert "7 images" in text and "mismatches: 0" in text


def test_deterministic_and_resumable(data_dir, tmp_path, capsys):
    a, b, c = (tmp_path / f"{k}.pt" for k in "abc")
    cli_train(train_args(data_dir, a, "--epochs", "2", "--seed", "5"))
    cli_train(train_args(data_dir, b, "--epochs", "2", "--seed", "5"))
    sa, sb = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
    assert states_equal(sa, sb)
    # an interrupted run: after epoch 1 the checkpoint holds the training state
    cli_train(train_args(data_dir, c, "--epochs", "1", "--seed", "5"))
    with pytest.raises(HdlgenError, match="without training state"):
        cli_train(train_args(data_dir, c, "--epochs", "2", "--resume"))
    c.unlink()

    def stop_after_first_epoch(args):
        from hdlgen.nn import train as t
        real = t.train_epochs

        def one(*x, **kw):
            hook = kw["on_epoch"]

            def stop(position, record):
                hook(position, record)
                raise KeyboardInterrupt

            kw["on_epoch"] = stop
            return real(*x, **kw)

        t.train_epochs = one
        try:
            with pytest.raises(KeyboardInterrupt):
                cli_train(args)
        finally:
            t.train_epochs = real

    stop_after_first_epoch(train_args(data_dir, c, "--epochs", "2", "--seed", "5"))
    assert read_checkpoint(c)["train_state"]["epoch"] == 1
    with pytest.raises(HdlgenError, match="already exists; pass --resume"):
        cli_train(train_args(data_dir, c, "--epochs", "2", "--seed", "5"))
    cli_train(train_args(data_dir, c, "--epochs", "2", "--resume"))
    assert "resuming after epoch 1" in capsys.readouterr().out
    final = read_checkpoint(c)
    assert final["meta"]["epochs"] == 2 and len(final["meta"]["history"]) == 2
    assert states_equal(final["state_dict"], sa)


def test_train_errors(data_dir, tmp_path, capsys):
    with pytest.raises(HdlgenError, match="does not exist"):
        cli_train(train_args(data_dir, tmp_path / "x.pt", "--epochs", "1", "--resume"))
    with pytest.raises(HdlgenError, match="--config"):
        cli_train(train_args(data_dir, tmp_path / "x.pt", "--epochs", "1", "--config", "[1]"))
    with pytest.raises(HdlgenError, match="takes images"):
        cli_train(train_args(data_dir, tmp_path / "x.pt", "--epochs", "1",
                             "--config", '{"input_shape": [8, 8, 1]}'))
    assert main(["nosuch", "--data", str(data_dir), "--dataset", "mnist", "--epochs", "1",
                 "--out", str(tmp_path / "y.pt")]) == 2
    assert "unknown recipe 'nosuch'" in capsys.readouterr().err


def test_cosine_schedule():
    assert cosine_lr(1.0, 0, 10) == 1.0
    assert cosine_lr(1.0, 5, 10) == pytest.approx(0.5)
    assert cosine_lr(1.0, 10, 10) == pytest.approx(0.0)


def test_resume_mid_epoch_equals_uninterrupted(data_dir):
    """The loop's position saved inside an epoch resumes to exactly the uninterrupted run."""
    from hdlgen.nn.data import load_dataset
    from hdlgen.nn.loop import train_epochs
    from hdlgen.nn.recipes import build_model

    train = load_dataset(data_dir, "fashion-mnist", "train")

    def fresh():
        torch.manual_seed(3)
        return build_model("mlp", {"input_shape": [28, 28, 1], "hidden": [24, 16], "classes": 10})[0]

    kw = dict(epochs=2, batch_size=16, lr=0.01, seed=3, aug=(2, True), log=lambda line: None)
    whole = fresh()
    full_history = train_epochs(whole, train, None, **kw)

    class Killed(Exception):
        pass

    saved = {}

    def save_then_die(position):
        if position["epoch"] == 1 and position["batch"] == 3:
            saved.update(position=position, state={k: v.clone() for k, v in part.state_dict().items()})
            raise Killed

    part = fresh()
    with pytest.raises(Killed):
        train_epochs(part, train, None, on_checkpoint=save_then_die, checkpoint_seconds=0, **kw)
    resumed = fresh()
    resumed.load_state_dict(saved["state"])
    history = train_epochs(resumed, train, None, resume=saved["position"], **kw)
    assert states_equal(resumed.state_dict(), whole.state_dict())
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in h] for h in (history, full_history)]
    assert untimed[0] == untimed[1]


def test_killed_process_resumes_to_the_same_weights(tmp_path):
    """A real SIGKILL while the run writes its checkpoint after every batch."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = write_fashion(tmp_path / "data", n_train=640, n_test=20)
    root = __import__("pathlib").Path(__file__).resolve().parent.parent

    def command(out, *extra):
        return [sys.executable, "-m", "hdlgen", "train", "mlp", "--data", str(data), "--dataset", "fashion-mnist",
                "--out", str(out), "--config", '{"hidden": [24, 16]}', "--batch-size", "16", "--epochs", "3",
                "--seed", "4", "--log-every", "0", "--eval-images", "0", *extra]

    env = dict(os.environ, PYTHONPATH=str(root))
    whole = tmp_path / "whole.pt"
    subprocess.run(command(whole), check=True, env=env, cwd=root, capture_output=True)
    cut = tmp_path / "cut.pt"
    proc = subprocess.Popen(command(cut, "--checkpoint-minutes", "0"), env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    position = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            position = read_checkpoint(cut).get("train_state")
        except HdlgenError:   # not written yet
            position = None
        if position and (position["epoch"], position["batch"]) >= (1, 5):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert position is not None, "the run ended before it could be killed; make it longer"
    killed_at = read_checkpoint(cut)["train_state"]
    assert killed_at["epoch"] < 3
    done = subprocess.run(command(cut, "--resume"), env=env, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout
    assert states_equal(read_checkpoint(cut)["state_dict"], read_checkpoint(whole)["state_dict"])


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    """torchrun with two CPU processes (gloo): each trains on half of every global batch,
    BatchNorm sees the whole batch, gradients are summed; the weights end as one process's
    (up to the order of floating-point sums)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data = write_fashion(tmp_path / "data", n_train=128, n_test=16)
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")

    def train(out, *launcher):
        cmd = [sys.executable, *launcher, "-m", "hdlgen", "train", "mlp", "--data", str(data), "--dataset",
               "fashion-mnist", "--out", str(out), "--config", '{"hidden": [24, 16]}', "--batch-size", "32",
               "--epochs", "2", "--lr", "0.003", "--seed", "2", "--log-every", "1"]
        proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    one = train(tmp_path / "one.pt")
    two = train(tmp_path / "two.pt", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2")
    assert "1 process(es)" in one and "2 process(es)" in two
    assert two.count("epoch 1/2 batch 1/4") == 1   # the second process does not log
    a, b = read_checkpoint(tmp_path / "one.pt"), read_checkpoint(tmp_path / "two.pt")
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.double(), b["state_dict"][k].double(), atol=1e-4, rtol=1e-4), k
    # the running loss is the global batch's, as one process reports it
    losses = [[line.split("loss ")[1].split()[0] for line in out.splitlines() if " batch 4/4 " in line]
              for out in (one, two)]
    assert losses[0] == losses[1]


def test_augment_is_the_same_on_any_device_and_bfloat16_forward_trains():
    from hdlgen.nn.data import augment
    from hdlgen.nn.loop import train_epochs
    from hdlgen.nn.recipes import build_model

    x = torch.randint(0, 256, (6, 8, 8, 3), dtype=torch.uint8)
    a = augment(x, torch.Generator().manual_seed(1), 2, True)
    b = augment(x.to("meta"), torch.Generator().manual_seed(1), 2, True)
    assert b.device.type == "meta" and b.shape == a.shape
    torch.manual_seed(0)
    model, _ = build_model("mlp", {"input_shape": [4, 4, 1], "hidden": [8], "classes": 3})
    data = (np.random.default_rng(0).integers(0, 256, (32, 4, 4, 1), dtype=np.uint8), np.arange(32) % 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_epochs(model, data, None, epochs=1, batch_size=8, lr=0.01, seed=0, amp=True,
                           log=lambda line: None)
    assert history[0]["loss"] > 0 and not states_equal(before, model.state_dict())
    assert all(v.dtype in (torch.float32, torch.int64) for v in model.state_dict().values())
