"""Data-parallel training over several processes with ``torch.distributed``.

Started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE`` and the rendezvous variables), the
same ``hdlgen train`` / ``python -m hdlgen.nn.compress`` command runs in every process:

    torchrun --nproc-per-node 2 -m hdlgen train mlp --data DIR --dataset fashion-mnist ...

``--batch-size`` stays the global batch. Every process draws the same shuffling and
augmentation for the whole batch and trains on its share (``rank::world``); BatchNorm
computes its statistics over the whole global batch (:class:`GlobalBatchNorm`, on CPU too,
where ``nn.SyncBatchNorm`` does not run); gradients are summed over the processes once per
step in one flat buffer. The model itself is not wrapped, so checkpoints and export see the
plain model, and the result equals one process with the same global batch up to the order of
floating-point sums. Process 0 alone logs and writes checkpoints. Backend: gloo on CPU, NCCL
on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes (rank 0 of 1 when alone)."""
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's part of a global batch."""
        return batch if self.world == 1 else batch[self.rank::self.world]

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the processes (running loss, counts)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def sum_gradients(self, model: nn.Module) -> None:
        """Sum every parameter's gradient over the processes, in one flat buffer."""
        if self.world == 1:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def current() -> Group:
    """The group of the running process: joins it on first use when ``torchrun`` started us."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("HDLGEN_DIST_BACKEND") != "gloo" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return Group(dist.get_rank(), dist.get_world_size())


def barrier() -> None:
    """Wait for every process (nothing when alone)."""
    if dist.is_initialized():
        dist.barrier()


def close() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the global batch of all processes.

    Each process sums its share's values and squares per channel; one differentiable
    all-reduce adds the sums, so gradients flow through the global mean and variance as in
    one process. Alone, or in evaluation, it is the plain BatchNorm."""

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = torch.full((1,), x.numel() / c, dtype=x.dtype, device=x.device)
        sums = dist_fn.all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = sums[2 * c]
        mean = sums[:c] / n
        var = sums[c:2 * c] / n - mean * mean
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


class GlobalBatchNorm1d(GlobalBatchNorm, nn.BatchNorm1d):
    pass


class GlobalBatchNorm2d(GlobalBatchNorm, nn.BatchNorm2d):
    pass


def use_global_batch_norm(model: nn.Module) -> nn.Module:
    """Make every BatchNorm1d/2d of ``model`` a global one in place (same parameters, buffers
    and state-dict names; still instances of their BatchNorm class)."""
    for m in model.modules():
        if type(m) is nn.BatchNorm1d:
            m.__class__ = GlobalBatchNorm1d
        elif type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm2d
    return model
