"""A warm interpreter for the tests that run the training scripts (``$PYTHON -m lvg.cli ...`` a dozen times each).

Each of those processes spends ~8 CPU seconds importing torch and transformers before a few tiny training steps.
:func:`warm_python` starts one server process that imports them (and lvg) once, and returns an executable to put in
``PYTHON``: each run of it forks a copy of the warm server, which takes the caller's arguments, working directory,
environment and standard streams, runs ``-m MODULE ARGS`` or ``- ARGS`` (a script on stdin) there, and exits with
its status. The script and the CLI code run unchanged; only the interpreter's start-up is shared. Fork is safe here
because the server has run no torch operation (no thread pool exists yet). ``LVG_TEST_COLD_PYTHON=1`` turns it off.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import runpy
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

CLIENT = """import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ.get("LVG_FORKSERVER") or {sock!r})
req = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(s, [struct.pack("!I", len(req)) + req], [0, 1, 2])
code = b""
while len(code) < 4:
    part = s.recv(4 - len(code))
    if not part:
        sys.exit("forkserver: the run ended without a status")
    code += part
sys.exit(struct.unpack("!i", code)[0])
"""


def _recv_exact(conn: socket.socket, n: int, first: bytes) -> bytes:
    data = first
    while len(data) < n:
        part = conn.recv(n - len(data))
        if not part:
            raise EOFError("client closed")
        data += part
    return data


def _run(req: dict, fds: list[int]) -> None:
    """In the forked runner: become the caller's process, run its command, exit with its status."""
    for i, fd in enumerate(fds):
        os.dup2(fd, i)
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    argv, code = req["argv"], 0
    try:
        if len(argv) >= 2 and argv[0] == "-m":
            sys.argv = argv[1:]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv and argv[0] == "-":
            sys.argv = argv
            exec(compile(sys.stdin.read(), "<stdin>", "exec"), {"__name__": "__main__"})
        else:
            raise SystemExit(f"forkserver: only '-m MODULE ...' and '- ...' are supported, got {argv!r}")
    except SystemExit as e:
        if isinstance(e.code, int) or e.code is None:
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for f in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                f.flush()
    os._exit(code)


def _handle(conn: socket.socket) -> None:
    """In a forked handler: read the request, fork the runner, report its exit status."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server ignores it (auto-reaping); this one waits
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    (n,) = struct.unpack("!I", msg[:4])
    req = json.loads(_recv_exact(conn, n, msg[4:]))
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run(req, fds)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    conn.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
    os._exit(0)


def serve(sock: str, preload: list[str]) -> None:
    with contextlib.suppress(Exception):  # Linux: die with the test process that started us, however it ends
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    for name in preload:
        importlib.import_module(name)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock + ".tmp")
    srv.listen(64)
    os.rename(sock + ".tmp", sock)  # ready: the socket appears only now
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped automatically
    while True:
        conn, _ = srv.accept()
        if os.fork() == 0:
            srv.close()
            try:
                _handle(conn)
            finally:
                os._exit(1)
        conn.close()


PRELOAD = ["torch", "transformers", "peft", "torchmetrics", "lvg.cli", "lvg.cli.train", "lvg.train.loop",
           "lvg.train.planner", "lvg.train.reader", "lvg.train.painter", "lvg.train.gan", "lvg.train.tokenizer",
           "lvg.pipelines.planned", "lvg.eval.recon"]  # fmt: skip


@contextlib.contextmanager
def warm_python(workdir: Path, cwd: Path, env: dict[str, str], timeout: float = 120) -> Iterator[str]:
    """An executable for ``PYTHON`` that runs each call in a fork of one warm server (see the module docstring);
    ``cwd``/``env`` are the server's (its ``sys.path``, so ``lvg`` is imported from where the callers would)."""
    if os.environ.get("LVG_TEST_COLD_PYTHON"):
        yield sys.executable
        return
    workdir.mkdir(parents=True, exist_ok=True)
    sock = os.path.join(tempfile.mkdtemp(prefix="lvg-fs-"), "s")  # short: a socket path has at most 107 bytes
    exe = workdir / "python"
    (workdir / "client.py").write_text(CLIENT.format(sock=sock), encoding="utf-8")
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -S -E {workdir / "client.py"} "$@"\n', encoding="utf-8")
    exe.chmod(0o755)
    preload = [m for m in PRELOAD if importlib.util.find_spec(m.split(".")[0])]
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import forkserver; "
    code += f"forkserver.serve({sock!r}, {preload!r})"
    server = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, start_new_session=True)
    try:
        t0 = time.monotonic()
        while not os.path.exists(sock):
            if server.poll() is not None or time.monotonic() - t0 > timeout:
                raise RuntimeError(f"the fork server did not start (exit {server.poll()})")
            time.sleep(0.05)
        yield str(exe)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # the server and any runner still going
        server.wait()
        with contextlib.suppress(OSError):
            os.remove(sock)
            os.rmdir(os.path.dirname(sock))
