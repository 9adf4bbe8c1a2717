"""One training code path for 1 CPU process, N GPUs or several machines, through Hugging
Face accelerate (`accelerate launch -m mmu_core train ...`, or torchrun).

Data parallelism that keeps the recipe's meaning: every process draws the same global batch
(same seed, same draws), encodes only its own contiguous rows, and gathers the features of
all rows with their gradients (BLIP's `all_gather_with_grad`), so ITC sees every in-batch
negative and ITM's hard negatives come from the whole batch, as in one process. Each
process's loss is the sum over its rows times `world / n`; DDP averages the gradients, so
the update is that of the global batch's mean loss, whatever the process count. Hence a run
resumes from its checkpoint on a different number of processes.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Shard:
    """This process's rows of a global batch of `n` rows split over `world` processes."""

    rank: int = 0
    world: int = 1
    n: int = 0

    @property
    def sizes(self) -> list[int]:
        return [len(a) for a in np.array_split(np.arange(self.n), self.world)]

    @property
    def start(self) -> int:
        return sum(self.sizes[:self.rank])

    @property
    def stop(self) -> int:
        return self.start + self.sizes[self.rank]

    @property
    def rows(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def weight(self) -> float:
        """Sum a loss over this process's rows and multiply by this: the mean over
        processes is then the global batch's mean."""
        return self.world / self.n

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every process's rows of `x`, in global order, gradients flowing back."""
        return x if self.world == 1 else _GatherRows.apply(x, self)


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, shard: Shard):
        ctx.shard = shard
        size = max(shard.sizes)  # all_gather wants equal sizes: pad, then drop the padding
        padded = torch.cat([x, x.new_zeros((size - x.shape[0], *x.shape[1:]))]).contiguous()
        parts = [torch.empty_like(padded) for _ in range(shard.world)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:k] for p, k in zip(parts, shard.sizes)])

    @staticmethod
    def backward(ctx, grad):
        # Every process's loss reads every row: sum their gradients (all_reduce works on
        # gloo, where reduce_scatter does not), keep this process's rows.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.shard.rows], None


def shard_of(accelerator, n: int) -> Shard:
    return Shard(accelerator.process_index, accelerator.num_processes, n)


@functools.lru_cache(maxsize=None)
def accelerator(cpu: bool = True, mixed_precision: str = "no"):
    """The process's Accelerator (accelerate keeps one state per process, so one per
    setting). Parameters no process-group step uses (the VE head in privacy) are allowed.
    Gradient accumulation is `Stepper`'s (accelerate's own counts steps of a prepared
    dataloader, and would carry an epoch's leftover batches into the next)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # device_placement=False: training runs where the caller put the model (the CLI puts
    # it on `accelerator().device`, one GPU per process)
    return Accelerator(cpu=cpu, mixed_precision=mixed_precision, device_placement=False,
                       kwargs_handlers=[DistributedDataParallelKwargs(
                           find_unused_parameters=True)])


def close_process_group(acc) -> None:
    """End a command's training: every process waits for the others, then the process
    group closes. A gloo group left for the interpreter's exit to tear down can abort a
    process ("terminate called without an active exception") after its work is done."""
    if acc.num_processes > 1:
        acc.wait_for_everyone()
        acc.end_training()


def accelerator_for(module: torch.nn.Module, mixed_precision: str = "no"):
    """The Accelerator matching where `module` already lives (training never moves a model
    the caller placed)."""
    return accelerator(next(module.parameters()).device.type == "cpu", mixed_precision)


class LossStep(nn.Module):
    """Trainable `parts` and a loss closure over them as one module, so that DDP (which
    syncs gradients of a forward that went through its wrapper) sees one forward."""

    def __init__(self, parts: dict[str, nn.Module], loss_fn):
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.loss_fn = loss_fn

    def forward(self, *args):
        return self.loss_fn(*args)


class Stepper:
    """One training step per call, through accelerate: autocast, backward, gradient
    clipping, DDP's gradient averaging, and the optimiser and scheduler every `grad_accum`
    calls (each call's loss divided by it; `last=True` steps early, e.g. on an epoch's
    final batch, so no gradient carries over). `loss_fn(*args)` returns a dict of losses on
    this process's rows (each its share of the batch mean, or the mean over its rows for
    equal shards); a call returns the whole batch's losses as floats."""

    def __init__(self, parts: dict[str, nn.Module], loss_fn, opt, sched=None,
                 clip: float | None = None, mixed_precision: str = "no", grad_accum: int = 1,
                 clip_each: bool = False):
        """`clip_each`: clip each part's gradient norm on its own (parts trained against
        each other, e.g. a discriminator, must not shrink each other's steps)."""
        first = next(iter(parts.values()))
        self.acc = accelerator_for(first, mixed_precision)
        groups = [[q for q in m.parameters() if q.requires_grad] for m in parts.values()]
        self.clip_groups = groups if clip_each else [[q for g in groups for q in g]]
        self.module, self.opt = self.acc.prepare(LossStep(parts, loss_fn), opt)
        self.sched, self.clip, self.grad_accum, self.pending = sched, clip, grad_accum, 0

    def __call__(self, *args, counts: dict[str, float] | None = None,
                 last: bool = False) -> dict[str, float]:
        """`counts`: per-process numbers returned summed over processes (e.g. rows)."""
        acc = self.acc
        counts = counts or {}
        self.pending += 1
        step = last or self.pending == self.grad_accum
        # between optimiser steps DDP need not average gradients (no_sync)
        with (contextlib.nullcontext() if step else acc.no_sync(self.module)), acc.autocast():
            losses = self.module(*args)
            acc.backward(sum(losses.values()) / self.grad_accum)
        if step:
            if self.clip is not None:
                for group in self.clip_groups:
                    acc.clip_grad_norm_(group, self.clip)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            if self.sched is not None:
                self.sched.step()
            self.pending = 0
        # one reduction: each process holds its share of the mean
        device = next(iter(losses.values())).device
        stats = acc.reduce(torch.stack([v.detach().float() for v in losses.values()] + [
            torch.tensor(float(c), device=device) for c in counts.values()]), "sum")
        out = {k: float(v) / acc.num_processes for k, v in zip(losses, stats)}
        return {**out, **{k: float(v) for k, v in zip(counts, stats[len(losses):])}}

    def close(self) -> None:
        """Drop the accelerator's references to this run's objects (the accelerator lives
        as long as the process, e.g. an app serving many requests)."""
        for name, obj in (("_models", self.module), ("_optimizers", self.opt)):
            held = getattr(self.acc, name, [])
            if obj in held:
                held.remove(obj)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def noise_generator(gen: torch.Generator, accelerator, seed: int) -> torch.Generator:
    """The generator for per-row noise (reparameterisation, diffusion noise). One process
    keeps the batch generator (the same draws as ever); several draw their own rows' noise
    from a per-process stream, leaving the shared batch generator in step."""
    if accelerator.num_processes == 1:
        return gen
    return torch.Generator().manual_seed(seed * 1000 + 1 + accelerator.process_index)
