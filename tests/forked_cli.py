"""`drlab ARGS` as a fresh process that skips Python's start and the imports.

Every drlab command that trains imports PyTorch, Gymnasium and, to build an optimizer, torch._dynamo:
3-5 s a process on a slow 2-core machine, more than most of the tests' runs take. A zygote process
imports them once per test worker and forks a child for each command. The child is a process of its
own (its own pid, working directory, environment, standard streams, signal handlers and exit status)
and runs the same `drlab.cli.main` as the `drlab` console script, through the interpreter's own exit (an
uncaught exception prints its traceback and exits 1); only the imports happened before it started.

The child's import path is the console script's (its first entry is the script's directory, not the
current directory as under `python -m`): a user's module in the working directory is importable only
where drlab itself makes it so.

The zygote imports modules and runs nothing: no thread pool exists yet when it forks. Commands that
need another import system or environment at their start (test_cli.drlab's ``refuse`` and ``env``)
run as `python -m drlab.cli`.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ZYGOTE = r"""
import json, os, sys
import gymnasium, torch, torch._dynamo  # what every training command imports (the optimizers: torch._dynamo)
import drlab.cli, drlab.envs, drlab.run.runner

sys.path[0] = os.path.dirname(sys.executable)  # `python -c` put the current directory there; the console script its own

reply = os.fdopen(os.dup(1), "w", buffering=1)
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush(), sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: becomes `drlab ARGS`, then exits as that would
        reply.close()  # the zygote's answers are not the child's to hold open (nor its own children's)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        sys.stdin = open(os.devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [drlab.cli.__file__, *request["args"]]
        sys.exit(drlab.cli.main(request["args"]))
    print(pid, file=reply)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), file=reply)
"""


class Zygote:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, args: list[str], cwd, timeout: float) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            request = {"args": args, "cwd": str(cwd or os.getcwd()), "env": dict(os.environ), "stdout": str(out),
                       "stderr": str(err)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = int(self.process.stdout.readline())
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                self.process.stdout.readline()
                raise subprocess.TimeoutExpired(["drlab", *args], timeout, out.read_text(), err.read_text())
            code = int(self.process.stdout.readline())
            return subprocess.CompletedProcess(["drlab", *args], code, out.read_text(), err.read_text())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


_zygote: Zygote | None = None


def run_drlab(args: list[str], cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`drlab ARGS` in a forked child of this test process's zygote (started on first use)."""
    global _zygote
    if _zygote is None or not _zygote.alive():
        _zygote = Zygote()
        atexit.register(_zygote.close)
    return _zygote.run([str(a) for a in args], cwd, timeout)
