"""Server subprocesses and the `hdx` CLI, started so that they are always cleaned up.

A server announces its address on its first line of standard output, `... serving
on HOST:PORT`, as `hdx serve` does. Output goes to files in the benchmark's
temporary directory, so a full pipe never stalls a server and a failure can show
the server's own last words.
"""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
_SERVING = re.compile(r"serving on (\S+):(\d+)\s*$")


def environment() -> dict[str, str]:
    """This process's environment without HDX_* overrides, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HDX_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
    return env


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def stop_signalled() -> None:
    """Returns once the process gets SIGTERM or SIGINT: how a server started here is told
    to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def hdx(data_dir: Path, *args: str) -> str:
    """Runs one `hdx --data-dir data_dir ...` command and returns its standard output.

    Raises:
        RuntimeError: the command failed; with its error output.
    """
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), *args]
    done = subprocess.run(
        argv, capture_output=True, text=True, env=environment(), timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"`hdx {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


class ServerProcess:
    """A server subprocess, from its ready line until stop(); a context manager.

    Args:
        name: for messages and the names of its output files.
        argv: the command.
        log_dir: where its standard output and error go.

    Raises:
        RuntimeError: the server exited or did not announce its address in time.
    """

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=environment()
            )
        try:
            self.target = self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.stdout_path.read_text(encoding="utf-8", errors="replace")
            if "\n" in text:
                match = _SERVING.search(text.split("\n", 1)[0])
                if match is None:
                    raise RuntimeError(f"{self.name}: unexpected first line {text!r}")
                return f"{match.group(1)}:{match.group(2)}"
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{_tail(self.stderr_path)}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start in {READY_TIMEOUT_S:.0f} s")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Asks the server to stop (SIGTERM) and kills it if it has not in a while."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def errors(self) -> str:
        """The last lines of the server's error output."""
        return _tail(self.stderr_path)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def checked(servers: Mapping[str, ServerProcess]) -> None:
    """Raises if one of the servers has died, with its last error output."""
    for name, server in servers.items():
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(f"{name} exited with {code}:\n{server.errors()}")
