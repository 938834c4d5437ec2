"""A real llm-backend server in a subprocess (uvicorn on a free loopback port)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.zygote import ZYGOTE, ForkedServer, forkable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen | ForkedServer, timeout: float = 15) -> None:
    """SIGTERM to the process group (a server and its engine workers), SIGKILL after ``timeout``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# Set by tests/conftest.py for the whole run (every test process): a folder the servers
# share for what they derive from installed packages alone, the parsed OpenAI document and
# the assembled model files (each written to a temporary name and renamed, so servers may
# build them at once). Each server parsing the 3 MB YAML for itself cost ~2 s of CPU, ~90
# times a run. A test's own env may still name other folders.
SHARED_CACHE = "LLM_BACKEND_TEST_SHARED_CACHE"


def shared_caches() -> dict[str, str]:
    root = os.environ.get(SHARED_CACHE)
    if not root:
        return {}
    return {"LLM_BACKEND_CACHE_DIR": f"{root}/cache", "LLM_BACKEND_MODELS_DIR": f"{root}/models"}


def shared_cache_settings() -> dict[str, str]:
    """``shared_caches`` as ``Settings`` fields, for an app built in the test process."""
    return {name.removeprefix("LLM_BACKEND_").lower(): value for name, value in shared_caches().items()}


# What each server would otherwise make at its first start: a SQLite database migrated from
# nothing (21 revisions, a commit each: ~0.12 CPU-s and 0.3-0.6 s of a start on the loaded
# cores, ~150 starts a run), made once a run by the CLI as an operator would (``db upgrade``)
# and copied into a new data folder. The session's server still migrates from nothing
# (``migrated=False``: tests/conftest.py), as do the migration tests.
DATABASE = "llm-backend.db"


def migrated_database() -> Path | None:
    """The run's migrated SQLite file (made on first use; None outside a test run)."""
    root = os.environ.get(SHARED_CACHE)
    if not root:
        return None
    made = Path(root) / "database" / DATABASE
    if not made.exists():
        folder = Path(tempfile.mkdtemp(dir=root))  # test processes may make it at once: one rename wins
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_BACKEND_") and k not in ("DATABASE_URL", "OPENAI_API_KEY")}
        subprocess.run([sys.executable, "-m", "llm_backend", "db", "upgrade"], env={**env, "LLM_BACKEND_DATA_DIR": str(folder)},
                       capture_output=True, check=True, timeout=300)
        made.parent.mkdir(exist_ok=True)
        os.replace(folder / DATABASE, made)
    return made


# Whether this kernel lists each thread's children (CONFIG_PROC_CHILDREN).
CHILDREN_LISTED = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``: the kernel's list of each of its threads'
    children (``/proc/PID/task/TID/children``), a read a thread: 0.13 ms for a server's
    tree, where a pass over all of /proc took 0.8 ms idle and 3-4 ms in a full run (~300
    processes), and rss.py's watch samples a service's tree every 20 ms. A kernel without
    those lists (CONFIG_PROC_CHILDREN) gets the pass over /proc."""
    if not CHILDREN_LISTED:
        return _children_from_stat(pid)
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found  # gone
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as listed:
                found.extend(int(child) for child in listed.read().split())
        except OSError:
            continue  # the thread ended meanwhile
    return found


def _children_from_stat(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        found.append(int(name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return found


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User and system CPU seconds ``pid`` has used (from /proc); ``reaped``: with those of
    its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(ticks) for ticks in fields[11 : 15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """Each thread of ``pid``: its user and system CPU seconds (from /proc)."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def computing(pid: int, since: float, seconds: float = 0.3, within: float = 300) -> None:
    """Wait until ``pid`` has used ``seconds`` of CPU more than ``since`` (its CPU seconds
    before it was given work): it is at work now, however slow the machine. ``within`` is
    only a guard against a request that never started."""
    deadline = time.monotonic() + within
    while cpu_seconds(pid) - since < seconds:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not start computing within {within} s")
        time.sleep(0.05)


def cpu_when_still(pid: int, within: float = 300) -> float:
    """``pid``'s CPU seconds once a whole second passes with (almost) none used: its work is
    over, however long the machine took for it. ``within`` is only a guard."""
    deadline = time.monotonic() + within
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - before < 0.1:
            return now
        before = now
    raise AssertionError(f"process {pid} still computes after {within} s")


# A start is probed often at first, then less (x1.25 a probe, at most every 0.2 s): a server
# is ready 0.5-3 s after it starts, and each probe of /ready costs it 2-3 ms of CPU through
# the whole middleware stack (2,900 probes of 176 starts in a full run at a probe every 25 ms).
POLL_SECONDS, POLL_GROWTH, POLL_MAX_SECONDS = 0.025, 1.25, 0.2


class PortTaken(Exception):
    pass


# A test's server loads its models on first use unless its env or config says otherwise:
# 60 of a full run's 150 engine workers were started at 0.6 CPU-s each (most of it the
# default's 32,768-cell KV pool cleared) and never asked anything. The session's server
# loads eagerly, as ``make run`` does (``load=None``: tests/conftest.py).
LOAD = {"LLM_BACKEND_MODEL_LOAD": "lazy"}
# And its default model shares a pool of 8,192 KV cells (SmolLM2's trained window, so a window
# of as many), not ``make run``'s 32,768: llama.cpp clears a pool as it makes it, and the
# default's 720 MiB cost each of a run's ~120 engine starts 0.37 CPU-s of page faults (0.09 at
# 8,192). The session's server keeps the default (tests/conftest.py), as does a server whose
# test is about windows (``pool=None``; an env naming LLAMA_CONTEXT_SIZE or LLAMA_KV_SIZE).
POOL = {"LLAMA_KV_SIZE": "8192"}
# And it sizes its default threads by one core (``cpu_cores``): a run's three test processes
# and their servers share two, so an engine's or Whisper's second thread would wait at each
# barrier for a sibling that another process holds. On these 2 cores (2026-11-28) a run's
# test trees took 974-1,003 CPU-seconds against 1,092 with two, and 571-593 s against 633.
# A test about threads names its own (``LLM_BACKEND_AUDIO_THREADS``...), which wins.
CORES = {"LLM_BACKEND_CPU_CORES": "1"}


class LiveServer:
    def __init__(
        self, workdir: Path, env: dict[str, str] | None = None, config: str | None = None, cwd: Path | None = None,
        migrated: bool = True, load: dict[str, str] | None = LOAD, pool: dict[str, str] | None = POOL,
    ) -> None:
        self.workdir = workdir
        self.migrated = migrated  # a new data folder starts from the run's migrated database
        self.config = config
        self.cwd = cwd  # where ``python -m llm_backend`` finds the package (another version's checkout)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        # The SDK's OPENAI_* variables of the caller's shell would turn on an upstream.
        inherited = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        if config is not None and "model_load" in config:
            load = None  # the config's own word (the environment would win over it)
        if env is not None and ("LLAMA_CONTEXT_SIZE" in env or "LLAMA_KV_SIZE" in env):
            pool = None
        self.env = {**inherited, **CORES, **(load or {}), **(pool or {}), "LLM_BACKEND_DATA_DIR": str(workdir / "data"), **shared_caches(), **(env or {})}
        if config is not None:
            config_path = workdir / "config.yaml"
            config_path.write_text(config)
            self.env["LLM_BACKEND_CONFIG"] = str(config_path)
        # A plain subprocess, or a fork of the run's zygote (tests/support/zygote.py).
        self.process: subprocess.Popen | ForkedServer | None = None

    @property
    def api(self) -> str:
        return self.base_url + "/v1"

    def start(self, timeout: float = 120, wait_ready: bool = True) -> "LiveServer":
        for _ in range(3):
            try:
                return self._start(timeout, wait_ready)
            except PortTaken:
                # Another test process took the free port between our probe and the bind.
                self.port = free_port()
                self.base_url = f"http://127.0.0.1:{self.port}"
        return self._start(timeout, wait_ready)

    def _start(self, timeout: float, wait_ready: bool) -> "LiveServer":
        self._log = self.log_path.open("ab")
        since = self.log_path.stat().st_size
        self._seed_database()
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.cwd is None and forkable(self.env, ZYGOTE.base_env()):
            self.process = ZYGOTE.spawn(args, self.env, os.getcwd(), self.log_path)
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llm_backend", *args],
                env=self.env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.cwd,
            )
        deadline = time.monotonic() + timeout
        path = "/ready" if wait_ready else "/health"
        # One client for the whole wait, probing often at first: a server is ready about 2 s
        # after it starts, ~150 times a run.
        pause = POLL_SECONDS
        with httpx.Client(base_url=self.base_url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._log.close()
                    if "address already in use" in self.log()[since:]:
                        raise PortTaken(self.port)
                    raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
                try:
                    if http.get(path).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(pause)
                pause = min(pause * POLL_GROWTH, POLL_MAX_SECONDS)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout}s:\n{self.log()}")

    def _seed_database(self) -> None:
        """A new default SQLite database of this code's own migrations (``migrated_database``)."""
        if not self.migrated or self.cwd is not None or "database_url" in (self.config or ""):
            return
        if any(self.env.get(name) for name in ("LLM_BACKEND_DATABASE_URL", "DATABASE_URL")):
            return
        data = Path(self.env["LLM_BACKEND_DATA_DIR"])
        template = migrated_database()
        if template is not None and not (data / DATABASE).exists():
            data.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, data / DATABASE)

    def worker_pids(self, *command: bytes) -> list[int]:
        """Worker processes: children of the server whose command line holds each of
        ``command`` (default: the engine worker's module), found through /proc, as an
        operator would, not through any server endpoint."""
        wanted = command or (b"llama.worker",)
        pids = []
        for pid in children(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if all(part in cmdline for part in wanted):
                pids.append(pid)
        return sorted(pids)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process:
            stop_group(self.process)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_together(*servers: LiveServer, timeout: float = 120) -> list[LiveServer]:
    """Start ``servers`` at once (replicas of one database: their starts are independent),
    each waited for as ``start`` does; those started are stopped if one fails."""
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [pool.submit(server.start, timeout) for server in servers]
        failures = [future.exception() for future in futures if future.exception() is not None]
    if failures:
        for server in servers:
            server.stop()
        raise failures[0]
    return list(servers)


def access_lines(live: LiveServer, path: str, since: int = 0, expect: int = 0, request_id: str | None = None) -> list[dict]:
    """The access log lines of ``live`` for ``path``, from byte offset ``since`` (of the
    request ``request_id`` only, if given: another's socket may close in the meantime).

    A server logs a request just after its response is sent, so a client can see the
    answer before the line exists: with ``expect``, wait (up to 10 s) for that many lines.
    """
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in log_records(live, since) if r.get("logger") == "llm_backend.access" and r.get("path") == path
                 and request_id in (None, r.get("request_id"))]
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def log_records(live: LiveServer, since: int = 0) -> list[dict]:
    """The JSON records of ``live``'s log from byte offset ``since``: whole lines only, as
    the server may be writing the last one while it is read (a run failed parsing half a line)."""
    written = live.log_path.read_bytes()[since:]
    lines = written[: written.rfind(b"\n") + 1].decode(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def logged(live: LiveServer, since: int, level: str) -> list[str]:
    """The events ``live`` logged at ``level`` from byte offset ``since``."""
    return [record["event"] for record in log_records(live, since) if record["level"] == level]


def log_size(live: LiveServer) -> int:
    return live.log_path.stat().st_size
