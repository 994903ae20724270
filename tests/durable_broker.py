"""A Kafka-protocol broker whose log survives a crash: tansu on an S3 store on loopback.

The session broker of tests/conftest.py keeps its log in memory, so a test can
only pause it. This one writes its log to an S3 bucket served by `moto_server`
(the `moto[server]` test dependency) on 127.0.0.1, so a test can `kill -9` the
broker and start it again on the same port, with every acknowledged record
still there: a real crash and recovery, not a pause.

The S3 store outlives the broker: `DurableBroker.stop()` ends both,
`kill9()` and `restart()` only the broker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from monitor.sinks.embedded import broker_binary

__all__ = ["DurableBroker", "S3Store", "moto_server_binary"]

BUCKET = "tansu"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str,
                    timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL when it has not exited within 5 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def moto_server_binary() -> str | None:
    """`moto_server` next to this Python (the venv), else on PATH; None if absent."""
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    return shutil.which("moto_server")


class S3Store:
    """`moto_server` on a loopback port, with the bucket tansu writes to."""

    def __init__(self, log_path: Path) -> None:
        self.port = _free_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = moto_server_binary()
        if binary is None:
            raise RuntimeError("moto_server is not installed: pip install 'moto[server]'")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=log, start_new_session=True,
            )
        _wait_listening(self.port, self._process, "moto_server", 30.0)
        # S3 CreateBucket is a PUT on the bucket's path; moto accepts it unsigned.
        request = urllib.request.Request(f"{self.endpoint}/{BUCKET}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        process, self._process = self._process, None
        _stop(process)


class DurableBroker:
    """tansu with `--storage-engine s3://tansu/` on a fixed loopback port.

    `kill9()` ends the broker as a crash would; `restart()` starts it again on
    the same port and the same store, so clients reconnect to the address they know.
    """

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.store = S3Store(workdir / "moto.log")
        self.log_path = workdir / "tansu.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """The S3 store (first time only), then the broker."""
        if self.store._process is None:
            self.store.start()
        self._start_broker()

    def _start_broker(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "AWS_ENDPOINT": self.store.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(broker_binary()), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", f"s3://{BUCKET}/"],
                stdout=log, stderr=log, env=env, start_new_session=True,
            )
        _wait_listening(self.port, self._process, "the durable tansu broker", 30.0)

    def kill9(self) -> None:
        """SIGKILL: no flush, no goodbye to clients."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        """Start the broker again on the same port and store (after `kill9`)."""
        self.kill9()
        self._start_broker()

    def stop(self) -> None:
        process, self._process = self._process, None
        _stop(process)
        self.store.stop()
