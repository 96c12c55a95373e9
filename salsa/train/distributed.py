"""torchrun support: the process group, each rank's device, the DDP wrapper and the few collectives the harness needs.

A run started by `torchrun --nproc_per_node=N run.py ...` (WORLD_SIZE > 1 in the environment) joins the default
process group: nccl when the run's device is CUDA (rank r on cuda:LOCAL_RANK), gloo on the CPU. Anything else
(plain `python run.py`, or torchrun with one process) is a single process and never touches torch.distributed."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from salsa.registry import UserError


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job. The collectives are no-ops for a single process."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise sum over the ranks (in place; returned for chaining)."""
        if self.active:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def max(self, value: float, device: torch.device) -> float:
        if not self.active:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.item()

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm statistics) on every rank, as DDP does before each training forward."""
        if self.active:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def from_main(self, obj):
        """Rank 0's `obj` on every rank (picklable objects)."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def agree(self, error: str | None) -> None:
        """Raises the same UserError on every rank when any rank reports an error (so none waits forever)."""
        errors = [(r, e) for r, e in enumerate(self.gather(error)) if e]
        if errors:
            raise UserError("; ".join(f"rank {r}: {e}" if self.active else e for r, e in errors))


SINGLE = Ranks()


def from_env() -> Ranks:
    """The ranks torchrun describes in RANK / WORLD_SIZE / LOCAL_RANK; SINGLE outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def resolve_device(name: str, ranks: Ranks) -> torch.device:
    """trainer.device (auto | cpu | cuda | cuda:N) for this rank; under torchrun rank r uses cuda:LOCAL_RANK."""
    wants_cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if wants_cuda and not torch.cuda.is_available():
        hint = " (under torchrun on a machine without GPUs, gloo runs the ranks on the CPU)" if ranks.active else ""
        raise UserError(f"trainer.device={name} but no CUDA device is visible; use trainer.device=cpu or auto{hint}")
    if not ranks.active:
        return torch.device(("cuda" if wants_cuda else "cpu") if name == "auto" else name)
    if not wants_cuda:
        return torch.device("cpu")
    if name not in ("auto", "cuda"):
        raise UserError(f"trainer.device={name} under torchrun: every rank takes cuda:LOCAL_RANK, so use trainer.device=cuda "
                        "(or auto), and choose the GPUs with CUDA_VISIBLE_DEVICES")
    if ranks.local_rank >= torch.cuda.device_count():
        raise UserError(f"torchrun started more processes on this node than there are visible GPUs ({torch.cuda.device_count()}): "
                        f"local rank {ranks.local_rank} has no GPU; use --nproc_per_node={torch.cuda.device_count()} or fewer")
    return torch.device("cuda", ranks.local_rank)


def setup(device_name: str) -> tuple[Ranks, torch.device]:
    """This process's ranks and device; joins the process group (once per process) under torchrun."""
    ranks = from_env()
    device = resolve_device(device_name, ranks)
    if not ranks.active:
        return ranks, device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if dist.is_initialized():
        if dist.get_backend() != backend:
            raise UserError(f"this torchrun job runs on {dist.get_backend()}; a run on {device.type} needs {backend}: "
                            "one device type per job")
        return ranks, device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group(backend, device_id=device)
    else:
        dist.init_process_group(backend)
    atexit.register(dist.destroy_process_group)
    return ranks, device


def on_rank0(ranks: Ranks, work, *, then_others: bool = False):
    """work() on rank 0; a UserError there is raised on every rank. then_others=False: every rank gets rank 0's
    result. then_others=True: the other ranks then run work() themselves (they find rank 0's downloads and
    caches) and each keeps its own result."""
    result, error = None, None
    if ranks.main:
        try:
            result = work()
        except UserError as e:
            if not ranks.active:  # alone: the error as it is (its exit status too)
                raise
            error = str(e)
    if then_others:
        error = ranks.from_main(error)
    else:
        result, error = ranks.from_main((result, error))
    if error:
        raise UserError(error)
    return work() if then_others and not ranks.main else result


def wrap(net: torch.nn.Module, ranks: Ranks, device: torch.device) -> DistributedDataParallel | None:
    """DistributedDataParallel under torchrun (gradients averaged over ranks), else None."""
    if not ranks.active:
        return None
    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)


def check_batch_size(batch_size: int, ranks: Ranks) -> None:
    """trainer.batch_size is the global batch: every rank takes an equal share of each full batch."""
    if ranks.active and batch_size % ranks.world_size:
        raise UserError(f"trainer.batch_size={batch_size} is the global batch, split evenly over the {ranks.world_size} "
                        f"ranks: choose a multiple of {ranks.world_size}")


def check_last_batch(num_train: int, batch_size: int, ranks: Ranks) -> None:
    """Every rank gets at least one example of the last (partial) batch of an epoch."""
    last = num_train - (-(-num_train // batch_size) - 1) * batch_size
    if ranks.active and last < ranks.world_size:
        raise UserError(f"the last batch of each epoch holds {last} training example(s), fewer than the {ranks.world_size} "
                        "ranks: choose another trainer.batch_size (or trainer.limit)")


def quiet_hydra_overrides() -> list[str]:
    """Command-line overrides that keep Hydra's output directory and log on rank 0 only: the other ranks of a
    torchrun job write theirs into a temporary directory that is removed at exit."""
    rank = int(os.environ.get("RANK", "0"))
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or rank == 0:
        return []
    scratch = tempfile.mkdtemp(prefix=f"salsa-rank{rank}-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return [f"hydra.run.dir={scratch}", f"hydra.sweep.dir={scratch}", "hydra.output_subdir=null",
            "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
