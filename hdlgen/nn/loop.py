"""The training loop: Adam with a cosine learning rate, resumable at any batch.

Deterministic for a given seed on CPU: each epoch's shuffling and augmentation come from a
generator seeded by (seed, epoch). The loop's position (epoch, batches done, that generator's
state, the optimizer, the running sums and the history) is a plain dict that
:func:`train_epochs` hands out every ``checkpoint_seconds`` and after every epoch, and takes
back as ``resume``: a run resumed from it continues exactly as the uninterrupted one.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import HdlgenError
from .data import augment
from .distributed import Group, use_global_batch_norm
from .evaluate import predict


def cosine_lr(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))


def accuracy(model, x, y, *, float_reference=False, device="cpu", batch=1000) -> float:
    if len(x) == 0:
        return float("nan")
    p = predict(model, x, float_reference=float_reference, device=device, batch=batch)
    return float((p == np.asarray(y)).mean())


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch: a last batch of one image is dropped (BatchNorm needs two)."""
    return sum(1 for i in range(0, n, batch_size) if min(batch_size, n - i) >= 2)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def train_epochs(model, train_data, eval_data, *, epochs: int, batch_size: int, lr: float, seed: int,
                 device="cpu", resume: dict | None = None, aug=(0, False), log=print, log_every: int = 100,
                 on_epoch=None, on_checkpoint=None, checkpoint_seconds: float = 600.0, label: str = "",
                 integer_eval: bool = True, group: Group = Group(), amp: bool = False):
    """Train ``model`` for ``epochs`` epochs (from ``resume``'s position, if given); returns the
    history, one record per epoch.

    ``train_data``/``eval_data`` are ``(x uint8 (N,H,W,C), y int64)`` NumPy arrays; after each
    epoch the float and (``integer_eval``) integer accuracy on ``eval_data`` (a fixed subset,
    say) go into the record. ``on_checkpoint(position)`` runs every ``checkpoint_seconds`` of training inside an
    epoch, ``on_epoch(position, record)`` after each epoch; both save checkpoints.
    """
    device = torch.device(device)
    model.to(device)
    if group.world > 1:
        use_global_batch_norm(model)
    x_train = torch.from_numpy(np.ascontiguousarray(train_data[0])).to(device)
    y_train = torch.from_numpy(np.asarray(train_data[1], np.int64)).to(device)
    n = len(x_train)
    if n < 2:
        raise HdlgenError(f"training needs at least 2 images, got {n}")
    per_epoch = steps_per_epoch(n, batch_size)
    total = per_epoch * epochs
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    resume = resume or {}
    if resume.get("optimizer") is not None:
        opt.load_state_dict(resume["optimizer"])
    history = list(resume.get("history", []))
    pad, flip = aug
    prefix = f"{label}: " if label else ""
    session_start, session_steps = time.monotonic(), 0

    def position(epoch, batch, gen, sums):
        return {"epoch": epoch, "batch": batch, "generator": None if gen is None else gen.get_state(),
                "sums": list(sums), "optimizer": opt.state_dict(), "history": list(history)}

    for epoch in range(resume.get("epoch", 0), epochs):
        model.train()
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        perm = torch.randperm(n, generator=gen)
        first = 0
        loss_sum, correct, seen, seconds = 0.0, 0, 0, 0.0
        if resume.get("batch") and epoch == resume["epoch"]:
            first = resume["batch"]
            gen.set_state(resume["generator"])
            loss_sum, correct, seen, seconds = resume["sums"]
        t0, last_save = time.monotonic() - seconds, time.monotonic()
        for b in range(first, per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            step = epoch * per_epoch + b
            for params in opt.param_groups:
                params["lr"] = cosine_lr(lr, step, total)
            xb = x_train[idx.to(device)]
            if pad or flip:   # the whole global batch, so that every process's generator agrees
                xb = augment(xb, gen, pad, flip)
            yb = y_train[idx.to(device)]
            xb, yb = group.share(xb), group.share(yb)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb, reduction="sum") / len(idx)   # this share of the batch mean
            opt.zero_grad(set_to_none=True)
            loss.backward()
            group.sum_gradients(model)
            opt.step()
            model.clip_weights()
            step_loss, step_correct = group.sum([float(loss.detach()) * len(idx),
                                                 float((out.argmax(1) == yb).sum())])
            loss_sum += step_loss
            correct += int(step_correct)
            seen += len(idx)
            session_steps += 1
            if not group.main:
                continue
            if log_every and (b + 1) % log_every == 0:
                left = (total - step - 1) * (time.monotonic() - session_start) / session_steps
                log(f"{prefix}epoch {epoch + 1}/{epochs} batch {b + 1}/{per_epoch} "
                    f"loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}% "
                    f"lr {cosine_lr(lr, step, total):.2e} ({time.monotonic() - t0:.1f} s, "
                    f"ETA {_duration(left)})")
            if on_checkpoint is not None and b + 1 < per_epoch and \
                    time.monotonic() - last_save >= checkpoint_seconds:
                on_checkpoint(position(epoch, b + 1, gen, (loss_sum, correct, seen, time.monotonic() - t0)))
                last_save = time.monotonic()
        train_time = time.monotonic() - t0
        if not group.main:
            history.append({})
            continue
        record = {"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                  "seconds": round(train_time, 1)}
        if eval_data is not None and len(eval_data[0]):
            record["eval_images"] = len(eval_data[0])
            record["test_float"] = accuracy(model, *eval_data, float_reference=True, device=device)
            if integer_eval:
                record["test_integer"] = accuracy(model, *eval_data, device=device)
        history.append(record)
        msg = (f"{prefix}epoch {epoch + 1}/{epochs} done: loss {record['loss']:.4f} "
               f"train acc {100 * record['train_acc']:.2f}%")
        if "test_float" in record:
            msg += f", test acc on {record['eval_images']} images: float {100 * record['test_float']:.2f}%"
            if "test_integer" in record:
                msg += f" integer {100 * record['test_integer']:.2f}%"
        log(msg + f" ({train_time:.1f} s)")
        if on_epoch is not None:
            on_epoch(position(epoch + 1, 0, None, (0.0, 0, 0, 0.0)), record)
    return history
