"""Commands run as buildspec version 0.2 runs them: one after another, each
seeing the variables (exported or not) and the working directory the ones
before it left, across phases.

CodeBuild runs each command from a script of its own; so do we. Before a
command, the script restores the state the previous one saved; on exit (a
failing command, `exit 1`, or the end) a trap saves it again. The first
state is the build's environment, so an `unset` or a changed PATH sticks
exactly as it would in one long shell session.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

# What bash manages itself: never saved, so a restore cannot clash with it.
_BASH_OWN = (
    "BASH[A-Z_]*|BASHOPTS|SHELLOPTS|PPID|UID|EUID|PWD|OLDPWD|SHLVL|_|FUNCNAME|GROUPS|DIRSTACK|"
    "PIPESTATUS|RANDOM|SRANDOM|SECONDS|LINENO|EPOCHREALTIME|EPOCHSECONDS|HISTCMD|OPTIND|OPTERR|"
    "COMP_WORDBREAKS|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|__codebuild_[a-z_]*"
)
# How long a finished command's output may still arrive (from a background
# child holding the pipe) before the build moves on.
_OUTPUT_GRACE_S = 5.0


class Stopped(Exception):
    """The command was killed because the build was stopped or timed out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Shell:
    """The build's shell session, saved in `state_dir` between commands."""

    def __init__(self, state_dir: Path, environment: dict[str, str], cwd: Path, posix: bool = False) -> None:
        self.state_dir = state_dir
        self.cwd = cwd
        self.posix = posix
        self._bash = shutil.which("bash") or "/bin/bash"
        self._grep = shutil.which("grep") or "/bin/grep"
        self._variables = state_dir / "variables.sh"
        self._pwd = state_dir / "pwd"
        self._count = 0
        self._groups: list[int] = []
        self._variables.write_text(
            "".join(f"declare -x {name}={shlex.quote(value)}\n" for name, value in environment.items())
        )

    def run(
        self,
        command: str,
        on_output: Callable[[str], None],
        should_stop: Callable[[], str | None],
        poll_s: float = 0.1,
    ) -> int:
        """Run `command`; its exit status. `should_stop` is asked while it
        runs: a reason ends it (its process group killed) with Stopped."""
        self._count += 1
        script = self.state_dir / f"command-{self._count}.sh"
        script.write_text(self._script(command))
        cwd = self.cwd if self.cwd.is_dir() else None
        args = [self._bash, "--posix", str(script)] if self.posix else [self._bash, str(script)]
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env={},  # everything comes from the saved state
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._groups.append(process.pid)
        reader = threading.Thread(target=_pump, args=(process, on_output), daemon=True)
        reader.start()
        while True:
            try:
                status = process.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                reason = should_stop()
                if reason is not None:
                    _kill_group(process.pid)
                    process.wait()
                    reader.join(_OUTPUT_GRACE_S)
                    raise Stopped(reason) from None
        reader.join(_OUTPUT_GRACE_S)
        if self._pwd.exists():
            self.cwd = Path(self._pwd.read_text())
        return status

    def set(self, name: str, value: str) -> None:
        """Export `name` to every later command, as CodeBuild updates its
        own variables (CODEBUILD_BUILD_SUCCEEDING) between phases."""
        with self._variables.open("a") as state:
            state.write(f"declare -x {name}={shlex.quote(value)}\n")

    def variable(self, name: str) -> str | None:
        """A variable's value as the last command left it (None if unset)."""
        probe = f"source {shlex.quote(str(self._variables))}\nprintf '%s' \"${{{name}+set}}${{{name}-}}\"\n"
        result = subprocess.run([self._bash, "-c", probe], env={}, capture_output=True, text=True)
        out = result.stdout
        return out[3:] if out.startswith("set") else None

    def close(self) -> None:
        """Kill what commands left running in the background: the build's
        container is gone once the build ends."""
        for group in self._groups:
            _kill_group(group)
        self._groups.clear()

    def _script(self, command: str) -> str:
        variables = shlex.quote(str(self._variables))
        pwd = shlex.quote(str(self._pwd))
        return (
            f"source {variables}\n"
            "__codebuild_save() {\n"
            f"  declare -p | {self._grep} -Ev "
            f"'^declare -[a-zA-Z]*r[a-zA-Z]* |^declare -[-a-zA-Z]+ ({_BASH_OWN})(=|$)' > {variables}\n"
            f"  printf '%s' \"$PWD\" > {pwd}\n"
            "}\n"
            "trap __codebuild_save EXIT\n"
            f"{command}\n"
        )


def _pump(process: subprocess.Popen[bytes], on_output: Callable[[str], None]) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        on_output(raw.decode("utf-8", errors="replace").rstrip("\n"))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone
