"""A throw-away single-node SLURM cluster with accounting, from Debian's packages (slurm-wlm, slurmdbd, munge,
mariadb-server): slurmctld, slurmd and slurmdbd run as root with proctrack/linuxproc and task/none (no cgroups),
MariaDB with a fresh data directory; every file in one temporary folder, every daemon stopped on exit.
Clients find it through SLURM_CONF (the environment `cluster()` yields)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

NEEDED = ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "munged", "mariadbd", "mariadb-install-db")


def missing_tools() -> list[str]:
    found = [shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin") for tool in NEEDED]
    return [tool for tool, path in zip(NEEDED, found) if not path]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout_s: float = 90.0, logs: tuple[Path, ...] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    tails = "\n".join(f"--- {p}:\n" + p.read_text(errors="replace")[-2000:] for p in logs if p.exists())
    raise RuntimeError(f"the test cluster's {what} did not come up in {timeout_s:.0f} s\n{tails}")


def ok(args: list[str], env: dict) -> bool:
    return subprocess.run(args, env=env, capture_output=True, timeout=60).returncode == 0


@contextlib.contextmanager
def cluster(work: Path, cpus: int = 2, memory_mb: int = 8000):
    """Yields the environment (SLURM_CONF, PATH) of a running one-node cluster with partition `cpu`."""
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    host = socket.gethostname()
    env = {**os.environ, "SLURM_CONF": str(work / "slurm.conf"), "PATH": os.environ["PATH"] + ":/usr/sbin"}
    daemons: list[subprocess.Popen] = []

    def start(args: list[str], log: str, **kwargs) -> None:
        daemons.append(subprocess.Popen(args, env=env, stdout=open(work / log, "w"), stderr=subprocess.STDOUT, **kwargs))

    try:
        if not ok(["sh", "-c", "munge -n | unmunge"], env):          # a host munged is used as it is
            Path("/run/munge").mkdir(exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            start(["runuser", "-u", "munge", "--", "munged", "--foreground"], "munged.log")
            wait_for("munged", lambda: ok(["sh", "-c", "munge -n | unmunge"], env), logs=(work / "munged.log",))

        db, db_port, dbd_port = work / "mariadb", free_port(), free_port()
        subprocess.run(["mariadb-install-db", f"--datadir={db}", "--user=root", "--auth-root-authentication-method=normal"],
                       env=env, capture_output=True, check=True, timeout=300)
        start(["mariadbd", "--no-defaults", f"--datadir={db}", "--user=root", f"--socket={work}/mysql.sock",
               f"--port={db_port}", "--bind-address=127.0.0.1", f"--pid-file={work}/mariadb.pid"], "mariadb.log")
        sql = ["mariadb", "--no-defaults", f"--socket={work}/mysql.sock", "-uroot"]
        wait_for("MariaDB", lambda: ok([*sql, "-e", "select 1"], env), logs=(work / "mariadb.log",))
        subprocess.run([*sql, "-e", "CREATE USER 'slurm'@'localhost' IDENTIFIED BY 'slurm'; GRANT ALL ON *.* TO 'slurm'@'localhost';"],
                       env=env, check=True, capture_output=True)

        dbd_conf = work / "slurmdbd.conf"
        dbd_conf.write_text(f"""AuthType=auth/munge
DbdHost=localhost
DbdPort={dbd_port}
SlurmUser=root
PidFile={work}/slurmdbd.pid
LogFile={work}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
""")
        os.chmod(dbd_conf, 0o600)
        (work / "slurm.conf").write_text(f"""ClusterName=salsatest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={work}/state
SlurmdSpoolDir={work}/spool
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmctldLogFile={work}/slurmctld.log
SlurmdLogFile={work}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={dbd_port}
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        for folder in ("state", "spool"):
            (work / folder).mkdir(exist_ok=True)
        start(["slurmdbd", "-D"], "slurmdbd.out")             # reads slurmdbd.conf beside SLURM_CONF
        wait_for("slurmdbd", lambda: ok(["sacctmgr", "-n", "list", "cluster"], env), logs=(work / "slurmdbd.log",))
        subprocess.run(["sacctmgr", "-i", "add", "cluster", "salsatest"], env=env, capture_output=True)
        start(["slurmctld", "-D", "-i"], "slurmctld.out")
        start(["slurmd", "-D"], "slurmd.out")
        wait_for("node", lambda: b"idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True).stdout,
                 logs=(work / "slurmctld.log", work / "slurmd.log"))
        yield env
    finally:
        if daemons and ok(["scancel", "--full", "--user=root"], env):     # no job outlives its cluster
            for _ in range(120):
                if not subprocess.run(["squeue", "-h"], env=env, capture_output=True).stdout.strip():
                    break
                time.sleep(1)
        for daemon in reversed(daemons):
            daemon.terminate()
        for daemon in reversed(daemons):
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
