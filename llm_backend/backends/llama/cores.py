"""How many cores this process may really use, for the engines' default thread counts.

``os.cpu_count()`` is the machine's. A Kubernetes pod limited to 2 CPUs on a 16-core node
sees 16, and 16 llama.cpp threads under a 2-CPU quota are throttled most of each period,
spinning at barriers for siblings that may not run. So: the CPU affinity (cpusets), capped
by the cgroup's CPU quota (`limits.cpu`: cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``),
rounded up. Measured in `make deploy-check`: two replicas on one 2-core machine each taking
2 batch threads decoded 24 tokens in 28-30 s on one of them (the other was fine); with a
1-CPU limit each and the threads following it, neither slows down.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def available_cores(cgroup: Path = CGROUP) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(cgroup)
    return min(cores, max(1, math.ceil(quota))) if quota else cores


def service_cores(configured: int | None = None) -> int:
    """The cores the service sizes its default threads by (the engines', the audio workers'):
    the ``cpu_cores`` setting where set, for a host whose other work shares its cores, else
    what this process may use."""
    return configured or available_cores()


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """CPUs per period this cgroup may use (None: no quota). Read where a container sees
    its own cgroup: at the root of the mount (cgroup namespaces, as Docker, Podman and
    the kubelet set them up)."""
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()  # v2: "max 100000" or "150000 100000"
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())  # v1: -1 is none
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
