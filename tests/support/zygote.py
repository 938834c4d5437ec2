"""Test servers forked from a process that imported the service once (a zygote).

A server's start is mostly Python importing the service: 1.0-1.2 of the API process's
1.3-1.7 CPU-seconds to ready, about 150 times a run of a suite that keeps both cores busy
(forked, the same start takes 0.45-0.5). So each test process has one zygote: it imports
what ``llm-backend serve`` imports, freezes those objects out of the garbage collector
(shared with every server, never copied by a collection's writes) and forks each server,
which takes its own environment, session, working folder and log, and runs the same
command line (``llm_backend.cli.app``). The server is the same program from the same
code, on a real port; what differs is only who imported its modules.

A fork cannot change what a library read from the environment when it was imported, nor
load a preloaded library (``LD_PRELOAD``): a server whose environment differs from the
zygote's in anything but the service's own settings (``FORKABLE``), or that runs another
checkout's code, is started as a plain ``python -m llm_backend`` subprocess.

The zygote is this module run as a program; it takes one JSON request a line on stdin
and answers one line on stdout: ``spawn`` (a server: its pid) and ``status`` (a server's
exit status once it ended, Popen's ``returncode``). It reaps its children as it answers,
and exits when its test process closes the pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Variables the service reads when it runs, never when a module is imported (and pytest's
# own, PYTEST_CURRENT_TEST changing with every test): a server whose environment differs
# from the zygote's in these alone can be forked.
FORKABLE_PREFIXES = ("LLM_BACKEND_", "OPENAI_", "LLAMA_", "PYTEST_")
FORKABLE = {"DATABASE_URL", "LOG_LEVEL"}


def forkable(env: dict[str, str], base: dict[str, str]) -> bool:
    """Whether a server with ``env`` can be forked from a zygote started with ``base``."""
    changed = {key for key in env.keys() | base.keys() if env.get(key) != base.get(key)}
    return all(key in FORKABLE or key.startswith(FORKABLE_PREFIXES) for key in changed)


class ForkedServer:
    """The zygote's child as ``subprocess.Popen`` shows a process: ``pid``, ``poll``,
    ``wait`` (``subprocess.TimeoutExpired`` past its timeout), ``returncode``, signals."""

    def __init__(self, zygote: "Zygote", pid: int) -> None:
        self.zygote, self.pid = zygote, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"server {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signal: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal)

    def terminate(self) -> None:
        self.send_signal(15)

    def kill(self) -> None:
        self.send_signal(9)


class Zygote:
    """The test process's side: starts the zygote on first use, asks it for servers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # start_together asks from several threads
        self._process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self.env = dict(os.environ)
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "tests.support.zygote"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, cwd=Path(__file__).resolve().parents[2],
                )
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError("the test servers' zygote ended")
        return json.loads(answer)

    def spawn(self, args: list[str], env: dict[str, str], cwd: str, log: Path) -> ForkedServer:
        return ForkedServer(self, self._ask({"op": "spawn", "args": args, "env": env, "cwd": cwd, "log": str(log)})["pid"])

    def status(self, pid: int) -> int | None:
        return self._ask({"op": "status", "pid": pid})["returncode"]

    def base_env(self) -> dict[str, str]:
        """The environment the zygote has (or will have when started now)."""
        return self.env if self._process is not None and self._process.poll() is None else dict(os.environ)


ZYGOTE = Zygote()


# --- the zygote itself ----------------------------------------------------------------------


# The API process's packages whose modules it imports as it builds the app, starts and
# serves (controllers found by operation, services, families' clients): 0.6 CPU-s of each
# forked server's start when the zygote had imported only what ``llm_backend.app`` does.
# Not ``backends``: its engines' modules (llama.cpp, faster-whisper, PyAV) run in workers.
SERVER_PACKAGES = ("controllers", "families", "http", "mcp", "moderation", "serving", "spec", "storage")


def _preload() -> None:
    """What a server imports before it is ready: the command line, the app, uvicorn's
    loop and protocols, the migrations' Alembic, and every module of ``SERVER_PACKAGES``."""
    import importlib
    import pkgutil

    import alembic.command  # noqa: F401
    import uvicorn.lifespan.on  # noqa: F401
    import uvicorn.loops.auto  # noqa: F401
    import uvicorn.protocols.http.auto  # noqa: F401
    import uvicorn.protocols.websockets.auto  # noqa: F401

    import llm_backend.app  # noqa: F401
    import llm_backend.cli  # noqa: F401

    for name in SERVER_PACKAGES:
        package = importlib.import_module(f"llm_backend.{name}")
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".migrations." not in module.name:  # Alembic loads those from their files
                try:
                    importlib.import_module(module.name)
                except ModuleNotFoundError as missing:
                    # An optional extra's module (http/trace_export.py: ``otel``), which the
                    # service imports only when configured: its package absent where the extra
                    # is not installed (the GPU check's kit). One of ours missing is an error.
                    if (missing.name or "llm_backend").startswith("llm_backend"):
                        raise


def _serve(args: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become the server ``args`` names; never returns."""
    code = 1
    try:
        os.setsid()  # its own process group, as start_new_session gives a subprocess
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        sys.argv = ["llm-backend", *args]
        from llm_backend.cli import app

        app(args=args, prog_name="llm-backend")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reap(ended: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ended[pid] = os.waitstatus_to_exitcode(status)


def main() -> None:
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    _preload()
    import gc

    gc.collect()
    gc.freeze()  # the imports' objects: shared by every child, out of its collections
    assert threading.active_count() == 1, "a thread before fork: the children would lack it"
    ended: dict[int, int] = {}
    while line := requests.readline():
        request = json.loads(line)
        if request["op"] == "spawn":
            answers.flush()
            pid = os.fork()
            if pid == 0:
                _serve(request["args"], request["env"], request["cwd"], request["log"])
            answer: dict[str, Any] = {"pid": pid}
        else:
            _reap(ended)
            answer = {"returncode": ended.pop(request["pid"], None)}  # asked once: its pid may come again
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    main()
