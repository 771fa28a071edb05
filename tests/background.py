"""Long, self-contained work of a test run in a process of its own, started when the run starts, at the lowest CPU
priority, so that it runs on the cores the rest of the suite leaves idle (while apps and command lines start, browsers
render, servers answer over HTTP).

A test module declares its jobs in `BACKGROUND_JOBS`: name -> function of a fresh folder giving the arguments of
`python` (for example `-m app.evaluate ...`: the real command with the real models and a real store; nothing is
replaced). When one of the module's tests is selected, conftest starts the job after collection; the fixture
`background` hands the test the finished process (`subprocess.CompletedProcess`): waiting for it first puts it back
to the normal priority, so a job that the idle cores did not finish runs at full speed while the test waits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.servers import ROOT

JobArgs = Callable[[Path], list[str]]
"""A folder of the job's own -> the arguments of `python`."""

LOWEST_PRIORITY = 19


def _normal_priority(pid: int) -> None:
    """Every thread of `pid` back to nice 0 (Linux keeps a nice value per thread). Where that is not allowed (not
    root, no CAP_SYS_NICE) the job keeps its low priority: it then still gets every core the waiting suite leaves."""
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(tid), 0)


class BackgroundJob:
    """`python ARGS` from the repository root with stdout and stderr in files (a pipe nobody reads would fill)."""

    def __init__(self, name: str, args: JobArgs, folder: Path, env: dict[str, str]) -> None:
        self.name = name
        folder.mkdir(parents=True)
        self.args = [sys.executable, *args(folder)]
        nice = shutil.which("nice")  # coreutils; it execs the command, so the process id stays the job's
        self.stdout_path, self.stderr_path = folder / "stdout", folder / "stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [nice, "-n", str(LOWEST_PRIORITY), *self.args] if nice else self.args,
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )

    def result(self, timeout: float) -> subprocess.CompletedProcess[str]:
        """Wait (at normal priority) for the job to end; its exit status and output."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:  # renewed every few seconds: threads started since, a `nice` not yet exec'd
            _normal_priority(self.process.pid)
            try:
                self.process.wait(min(5.0, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise
        return subprocess.CompletedProcess(
            self.args, self.process.returncode,
            self.stdout_path.read_text(encoding="utf-8", errors="replace"),
            self.stderr_path.read_text(encoding="utf-8", errors="replace"),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
