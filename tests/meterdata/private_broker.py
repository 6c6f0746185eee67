"""A private Mosquitto on a free loopback port, run with meetpunt's own configuration
(docs/mosquitto/meetpunt.conf): the broker tests and the restart benchmark use it, the
machine's broker on 1883 is left alone.

Only the listener's port and ``persistence_location`` are changed (and ``user root``
added when we are root: Mosquitto would otherwise switch to the ``mosquitto`` user,
which cannot write a test's folder); ``overrides`` change or remove (None) a setting to
show what happens without it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
CONFIG = Path(__file__).resolve().parents[2] / "docs" / "mosquitto" / "meetpunt.conf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def broker_config(port: int, folder: Path, overrides: dict[str, str | None] | None = None) -> str:
    """The shipped configuration for a private broker on ``port`` keeping its database
    in ``folder``."""
    settings: dict[str, str | None] = {
        "listener": f"{port} {HOST}",
        "persistence_location": f"{folder}/",
        **(overrides or {}),
    }
    lines = CONFIG.read_text().splitlines()
    seen: set[str] = set()
    out: list[str] = []
    for line in lines:
        match = re.match(r"(\w+)\s", line)
        name = match.group(1) if match else None
        if name in settings:
            if name in seen:
                raise AssertionError(f"{CONFIG} sets {name} twice")
            seen.add(name)
            value = settings[name]
            if value is not None:
                out.append(f"{name} {value}")
            continue
        out.append(line)
    missing = {k for k, v in settings.items() if v is not None} - seen
    out += [f"{name} {settings[name]}" for name in sorted(missing)]
    if os.geteuid() == 0:
        out.append("user root")
    return "\n".join(out) + "\n"


class PrivateBroker:
    """Mosquitto with :func:`broker_config`; :meth:`restart` keeps port and database."""

    def __init__(self, folder: Path, overrides: dict[str, str | None] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(broker_config(self.port, folder, overrides))
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateBroker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto stopped: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """SIGTERM: Mosquitto saves its database first; SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(30)
        self.process = None

    def restart(self, how: signal.Signals = signal.SIGTERM) -> None:
        self.stop(how)
        self.start()

    def __enter__(self) -> PrivateBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
