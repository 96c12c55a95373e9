"""The SLURM launcher of conf/hydra/launcher/slurm.yaml: hydra-submitit-launcher's, except for how it waits.

submitit's launcher collects the array's results in task order, so the first task that dies (cancelled, out of
memory, a node failure) raises and ends the multirun while its siblings still run; and it asks sacct alone for the
jobs' states, so on a cluster without accounting a cancelled job is never seen to end and the sweep waits forever.
This one waits for every task, from its result file or the scheduler's state (sacct where accounting is on, else
squeue), prints the array's states (with the reason a job pends) whenever they change, and turns a task that ended
without a result into a failed job whose error is SLURM's state and reason, recorded in failure.json like any
failure (failures.py). Jobs also record the sweep's command line as their argv (summary.json env.argv), as under
the local launcher, instead of submitit's.
"""
# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in sys.modules, and
# @dataclass cannot resolve string annotations there (AttributeError at every Hydra start).
import copy
import logging
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.errors import CompactHydraException
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf, open_dict

from .failures import record_failure

log = logging.getLogger(__name__)
# pending for a reason that lasts until the cluster's configuration changes: the request exceeds the partition
NEVER_STARTS = {"PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "BadConstraints", "AssocMaxCpuPerJobLimit"}
RESOURCES = ("partition", "gpus_per_node", "cpus_per_task", "mem_gb", "timeout_min")
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "RESIZING", "SUSPENDED", "PREEMPTED",
          "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED", "SPECIAL_EXIT"}


@dataclass(frozen=True)
class TaskState:
    state: str                          # SLURM's job state, e.g. RUNNING, CANCELLED (sacct: "CANCELLED by 0")
    reason: str                         # why it pends or ended ("None" when SLURM gives none)

    @property
    def active(self) -> bool:
        return self.state.split()[0] in ACTIVE

    def __str__(self) -> str:
        return self.state + (f" (reason: {self.reason})" if self.reason not in ("", "None") else "")


class SchedulerError(CompactHydraException):
    """A task that SLURM ended before it produced a result (Hydra prints just the message)."""


class SubmissionError(CompactHydraException):
    """sbatch refused the array (e.g. a GPU request on a partition without GPUs); Hydra prints just the message."""


def _task_ids(job_id: str) -> list[str]:
    """'12_3' -> ['12_3']; '12_[0-2,5%4]' (pending array tasks) -> ['12_0', '12_1', '12_2', '12_5']."""
    match = re.fullmatch(r"(\d+)_\[([^\]]*)\]", job_id)
    if not match:
        return [job_id]
    ids = []
    for part in match.group(2).split("%")[0].split(","):
        first, _, last = part.partition("-")
        ids += [f"{match.group(1)}_{i}" for i in range(int(first), int(last or first) + 1)]
    return ids


def _table(args: list[str]) -> list[list[str]] | None:
    """Rows of a `|`-separated SLURM listing, or None when the command fails (e.g. sacct without accounting)."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else None


def scheduler_states(array_ids: list[str]) -> dict[str, TaskState]:
    """Task id -> state. sacct (accounting) knows how a task ended ("CANCELLED by 1000"); squeue knows why a
    task pends ("Resources"; sacct says "None") and is all there is without accounting, but forgets a task
    MinJobAge after it ends: a task that neither lists has ended without a trace."""
    def states(rows):
        return {task: TaskState(state, reason) for job_id, state, reason in rows for task in _task_ids(job_id)}
    accounted = _table(["sacct", "-X", "-n", "-P", "-o", "JobID,State,Reason", "-j", ",".join(array_ids)])
    queued = states(row for array in array_ids
                    for row in _table(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", array]) or [])
    if accounted is None:
        return queued
    return {**states(accounted), **{task: s for task, s in queued.items() if s.active}}


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """conf/hydra/launcher/slurm.yaml's _target_; Hydra registers it when it scans hydra_plugins."""

    def __call__(self, sweep_overrides, *args, **kwargs) -> JobReturn:
        sys.argv = list(self.argv)     # in the job: the sweep's command, as the local launcher records it
        return super().__call__(sweep_overrides, *args, **kwargs)

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        import submitit

        self.argv = list(sys.argv)
        executor = submitit.AutoExecutor(cluster="slurm", folder=self.params["submitit_folder"],
                                         slurm_max_num_timeout=self.params["max_num_timeout"])
        queue_keys = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{key if key in queue_keys else f"slurm_{key}": value for key, value in self.params.items()
                                      if key not in ("submitit_folder", "max_num_timeout")})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        try:
            jobs = executor.map_array(self, *zip(*job_params))
        except Exception as e:  # noqa: BLE001 - sbatch refused: its message, not submitit's traceback
            raise SubmissionError(f"sbatch refused the job array: {str(e).strip()[-600:]}\nThe jobs asked for "
                                  + ", ".join(f"{k}={self.params.get(k)}" for k in RESOURCES) + "; on a CPU partition "
                                  "use hydra/launcher=slurm_cpu (experiments.reproduce: --launcher slurm_cpu), or set "
                                  "hydra.launcher.<key>=... (--slurm <key>=...)") from None
        log.info(f"submitted SLURM job array {jobs[0].job_id.split('_')[0]} ({len(jobs)} tasks); waiting for every task")
        final = self.wait(jobs)
        return [self.result(job, final.get(job.job_id), overrides, idx)
                for job, (overrides, _, idx, *_) in zip(jobs, job_params)]

    def wait(self, jobs) -> dict[str, TaskState]:
        """Until every task has a result file or has ended; polls SLURM less often as the wait grows (2 s to 60 s).
        A task that pends for a reason only a new cluster configuration lifts (it asks for more than the partition
        has) is cancelled, so that the sweep ends with that reason instead of waiting forever."""
        arrays = sorted({job.job_id.split("_")[0] for job in jobs})
        started, asked, shown, states, given_up = time.monotonic(), float("-inf"), None, {}, {}
        while True:
            waiting = [job for job in jobs if not job.paths.result_pickle.exists()]
            elapsed = time.monotonic() - started
            if waiting and time.monotonic() - asked >= min(60.0, max(2.0, elapsed / 10)):
                states, asked = scheduler_states(arrays), time.monotonic()
                stuck = [j.job_id for j in waiting if j.job_id not in given_up and j.job_id in states
                         and states[j.job_id].state == "PENDING" and states[j.job_id].reason in NEVER_STARTS]
                if stuck:
                    subprocess.run(["scancel", *stuck], capture_output=True, timeout=120)
                    given_up.update({j: TaskState("CANCELLED by the sweep: it could never start; it pended", states[j].reason)
                                     for j in stuck})
                states.update(given_up)
                summary = ", ".join(f"{n} {s}" for s, n in sorted(Counter(str(states[j.job_id]) if j.job_id in states
                                                                           else "not listed" for j in waiting).items()))
                if summary != shown:
                    log.info(f"SLURM {','.join(arrays)} after {elapsed:.0f} s: {len(jobs) - len(waiting)} with a result; {summary}")
                    shown = summary
                # a task that ended without a result: cancelled, killed, a failed node; after 60 s, one that no
                # listing knows (ended and forgotten: no accounting, MinJobAge passed) has ended too
                if all(not states[j.job_id].active if j.job_id in states else elapsed > 60 for j in waiting):
                    return states
            if not waiting:
                return states
            time.sleep(2)

    def result(self, job, state: TaskState | None, overrides: list[str], idx: int) -> JobReturn:
        if job.paths.result_pickle.exists():
            try:
                return job.results()[0]
            except Exception as e:  # noqa: BLE001 - the job raised outside Hydra's run_job (e.g. while composing)
                return self.failed(overrides, idx, f"SLURM job {job.job_id} failed: {type(e).__name__}: {e}")
        what = f"ended as {state}" if state else "is no longer listed by SLURM (no accounting: its final state is unknown)"
        hint = (" (it asks for more than the partition has: " + ", ".join(f"{k}={self.params.get(k)}" for k in RESOURCES)
                + "; on a CPU partition use hydra/launcher=slurm_cpu)") if state and state.reason in NEVER_STARTS else ""
        return self.failed(overrides, idx, f"SLURM job {job.job_id} {what} before the run finished{hint}; log: {job.paths.stderr}")

    def failed(self, overrides: list[str], idx: int, message: str) -> JobReturn:
        log.error(message)
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config.hydra.job):
            config.hydra.job.num = idx
        task_cfg = copy.deepcopy(config)
        with open_dict(task_cfg):
            del task_cfg["hydra"]
        out = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        record_failure(out, task_cfg, overrides, message)
        return JobReturn(overrides=list(overrides), cfg=task_cfg, hydra_cfg=config, working_dir=str(out),
                         task_name=config.hydra.job.name, status=JobStatus.FAILED, _return_value=SchedulerError(message))
