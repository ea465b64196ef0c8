"""Run a command pinned to one free GPU of this machine: ``python gpu_slot.py -- CMD ...``.

Snakemake's local ``--resources gpu=N`` stops more than N GPU jobs from running at
once, but it does not tell a job *which* GPU is free. This launcher takes an
exclusive lock on one GPU (a lock file per GPU index), sets CUDA_VISIBLE_DEVICES to
it and replaces itself with the command, which inherits the lock and holds it until
it exits (also when it is killed). Under a scheduler that already assigned GPUs
(CUDA_VISIBLE_DEVICES set, e.g. SLURM with --gpus) it runs the command unchanged.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

LOCK_DIR = Path(os.environ.get("MIDAS_GPU_LOCK_DIR", ".snakemake/gpu-locks"))


def gpu_count() -> int:
    """GPUs visible on this machine (nvidia-smi; 0 if it is missing)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    out = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def acquire(n: int, wait_s: float = 5.0) -> tuple[int, int]:
    """Index and open lock descriptor of the first free GPU; waits while all are taken."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(n):
            fd = os.open(LOCK_DIR / f"gpu{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return i, fd
        time.sleep(wait_s)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print("usage: gpu_slot.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        n = gpu_count()
        if n:
            index, fd = acquire(n)
            os.set_inheritable(fd, True)  # the lock lives as long as the command
            os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
            print(f"gpu_slot: running on GPU {index} of {n}", file=sys.stderr)
    os.execvp(argv[0], argv)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
