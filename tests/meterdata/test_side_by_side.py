"""Several processes on one meter-data store: short leases (MTR-1 side by side, issue 14).

Every test here uses real separate processes on a temporary store: a holder process
takes a lease and keeps it until the test says so (a line on its stdin), while other
processes (``python -m meetpunt ...`` or a small script) wait for it. Nothing is timed:
the tests release the holder when the waiters have said they wait, and check what
they printed and stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from meetpunt.errors import StoreUnavailableError
from meetpunt.meterdata import store as store_module
from meetpunt.meterdata.store import STORE_WAIT_ENV, open_store, store_wait_s
from tests.meterdata.conftest import E1X25, E3X25, build_register
from tests.meterdata.test_mqtt import telegram

HOST = "127.0.0.1"
WAITING = "waiting for the meter-data store"

HOLDER = """
import sys
from meetpunt.meterdata.store import open_store
store = open_store(sys.argv[1], read_only=sys.argv[2] == "read")
with store.lease() as con:
    con.execute("SELECT count(*) FROM batch").fetchall()
    print("held", flush=True)
    sys.stdin.readline()
"""
"""Takes a lease (``read`` or ``write``) on the store at argv[1], says ``held`` and keeps
it until a line arrives on stdin (or stdin closes)."""

READER = """
import sys
from meetpunt.meterdata.store import open_store
print("batches", open_store(sys.argv[1], read_only=True).count("batch"), flush=True)
"""

WRITER = """
import sys
from meetpunt.meterdata.store import open_store
with open_store(sys.argv[1]).transaction() as con:
    con.execute("INSERT INTO meta VALUES (?, 'written')", [sys.argv[2]])
print("wrote", sys.argv[2], flush=True)
"""


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    out.pop(STORE_WAIT_ENV, None)
    out.update(extra)
    return out


def python(script: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
    )


def meetpunt(*args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "meetpunt", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
    )


class Holder:
    """A process holding a lease on ``path`` until :meth:`release`."""

    def __init__(self, path: Path, mode: str) -> None:
        self.process = python(HOLDER, str(path), mode)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "held", self.process.communicate()

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        _, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def said_waiting(process: subprocess.Popen[str]) -> str:
    """Read ``process``'s stderr until it says what it waits for; that line."""
    assert process.stderr is not None
    while True:
        line = process.stderr.readline()
        assert line, f"{process.args} ended without waiting: {process.communicate()}"
        if WAITING in line:
            return line


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "meterdata.duckdb"
    open_store(path).close()
    return path


def test_a_reader_and_a_second_writer_wait_for_a_writer_and_then_succeed(
    store_path: Path,
) -> None:
    holder = Holder(store_path, "write")
    try:
        reader = python(READER, str(store_path))
        writer = python(WRITER, str(store_path), "second")
        for waiter in (reader, writer):
            line = said_waiting(waiter)
            assert str(store_path) in line and f"PID {holder.process.pid}" in line
        holder.release()
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        assert out.strip() == "batches 0"
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert out.strip() == "wrote second"
    finally:
        holder.kill()
    with open_store(store_path, read_only=True) as opened:
        found = opened.query("SELECT value FROM meta WHERE key = 'second'").to_pylist()
    assert found == [{"value": "written"}]


def test_readers_share_the_store_and_a_writer_waits_for_them(store_path: Path) -> None:
    holder = Holder(store_path, "read")
    try:
        reader = python(READER, str(store_path))
        out, err = reader.communicate(timeout=60)  # gets in while the holder still reads
        assert reader.returncode == 0, err
        assert out.strip() == "batches 0" and WAITING not in err
        writer = python(WRITER, str(store_path), "after-readers")
        said_waiting(writer)
        holder.release()
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    finally:
        holder.kill()


@pytest.fixture
def register_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'register.sqlite'}"
    build_register(url).dispose()
    return url


def test_a_holder_that_never_lets_go_gives_store_busy_not_a_refusal(
    store_path: Path, register_url: str
) -> None:
    holder = Holder(store_path, "write")
    common = ["--store", str(store_path), "--db", register_url]
    try:
        shown = meetpunt("ingest", "quarantine", *common, "--store-wait", "1")
        out, err = shown.communicate(timeout=120)
        assert shown.returncode == 2, (out, err)  # the environment, not a refusal (1)
        assert "MTR-1.store_busy" in err and WAITING in err
        assert f"PID {holder.process.pid}" in err
        assert "Traceback" not in out + err
        assert "refused" not in (out + err).lower()

        uc09 = meetpunt(
            "usecase",
            "uc09",
            "--from",
            "2025-06-02",
            "--to",
            "2025-06-03",
            *common,
            "--json",
            **{STORE_WAIT_ENV: "0.5"},
        )
        out, err = uc09.communicate(timeout=120)
        assert uc09.returncode == 2, (out, err)
        error = json.loads(out)["error"]
        assert error["rule"] == "MTR-1.store_busy"
        assert "--store-wait" in error["hint"]
        assert "Traceback" not in err and "refused" not in out.lower()
    finally:
        holder.kill()


# --- live ingestion beside every other command -------------------------------------------


class Publisher(threading.Thread):
    """Publishes telegram 0, 1, 2, ... of E3X25 (QoS 1) until stopped; ``sent`` counts."""

    def __init__(self, port: int, topic: str) -> None:
        super().__init__(daemon=True)
        self.port, self.topic = port, topic
        self.sent = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        import asyncio

        import aiomqtt

        async def publish() -> None:
            async with aiomqtt.Client(HOST, self.port) as client:
                while not self.halt.is_set():
                    await client.publish(self.topic, telegram(self.sent), qos=1)
                    self.sent += 1
                    await asyncio.sleep(0.05)

        try:
            asyncio.run(publish())
        except BaseException as exc:  # seen by the test
            self.error = exc


def stored_readings(path: Path) -> int:
    with open_store(path, read_only=True) as opened:
        return opened.count("p1_readings")


def test_every_command_runs_while_ingest_mqtt_runs_and_it_keeps_storing(
    tmp_path: Path, store_path: Path, register_url: str, broker: int
) -> None:
    common = ["--store", str(store_path), "--db", register_url]
    capture = tmp_path / "capture.p1"
    capture.write_bytes(b"".join(telegram(1000 + i) for i in range(3)))
    live = meetpunt(
        "ingest", "mqtt", "--broker", f"mqtt://{HOST}:{broker}", "--topic", "side/p1/+",
        "--client-id", "side-by-side", "--batch-seconds", "0.2", "--seconds", "600",
        *common,
    )  # fmt: skip
    publisher = Publisher(broker, f"side/p1/{E3X25}")
    try:
        assert live.stderr is not None
        assert "listening on" in live.stderr.readline()
        publisher.start()
        while stored_readings(store_path) == 0:  # the live ingester stores
            assert live.poll() is None, live.communicate()
            time.sleep(0.1)
        commands = [
            ["ingest", str(capture), "--ean", E1X25, "--json"],
            ["ingest", "quarantine", "--json"],
            ["ingest", "completeness", "--at", "2025-06-02", "--json"],
            ["usecase", "uc09", "--from", "2025-06-02", "--to", "2025-06-03", "--json"],
            ["retention", "run", "--at", "2025-06-10", "--json"],
        ]
        before = stored_readings(store_path)
        for command in commands:
            run = meetpunt(*command, *common)
            out, err = run.communicate(timeout=300)
            assert run.returncode == 0, (command, out, err)
            assert "Traceback" not in err and "error" not in out[:20]
        assert stored_readings(store_path) > before  # it stored while the others ran
        publisher.halt.set()
        publisher.join(30)
        assert publisher.error is None, publisher.error
        while stored_readings(store_path) < publisher.sent + 3:  # + the capture's 3
            assert live.poll() is None, live.communicate()
            time.sleep(0.1)
        live.terminate()  # SIGTERM: a clean stop
        out, err = live.communicate(timeout=60)
        assert live.returncode == 0, err
        assert "Traceback" not in err
    finally:
        publisher.halt.set()
        if live.poll() is None:
            live.kill()
            live.communicate()
    with open_store(store_path, read_only=True) as opened:
        per_meter = opened.query(
            "SELECT count(*) AS n FROM p1_readings GROUP BY connection ORDER BY n"
        ).column("n")
    assert per_meter.to_pylist() == [3, publisher.sent]  # the capture, the live telegrams


# --- in one process ------------------------------------------------------------------------


def test_a_lease_is_reentrant_and_a_write_inside_a_read_is_refused(store_path: Path) -> None:
    writer = open_store(store_path)
    reader = open_store(store_path, read_only=True)
    with writer.lease() as outer:
        with writer.lease() as inner, reader.lease() as read:
            assert inner is outer and read is outer  # the one open connection
        assert writer.count("batch") == 0  # a read inside the lease uses it too
    with (
        reader.lease(),
        pytest.raises(RuntimeError, match="inside a read-only"),
        writer.lease(),
    ):
        pass
    with pytest.raises(RuntimeError, match="outside a lease"):
        _ = writer.con


def test_a_current_store_opens_without_its_schema_statements(
    store_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(store_module, "_SUPPORT_TABLES", ("SELECT no_such_column",))
    with open_store(store_path).lease() as con:  # current: the statements are not run
        assert con.execute("SELECT count(*) FROM quality").fetchall()[0][0] > 0
    with pytest.raises(Exception, match="no_such_column"):
        open_store(tmp_path / "new.duckdb")  # a new store runs them


def test_a_wait_that_is_not_seconds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_WAIT_ENV, "soon")
    with pytest.raises(StoreUnavailableError) as caught:
        store_wait_s()
    assert caught.value.rules == ("MTR-1.store_wait",)
    monkeypatch.setenv(STORE_WAIT_ENV, "-1")
    with pytest.raises(StoreUnavailableError):
        store_wait_s()
    monkeypatch.setenv(STORE_WAIT_ENV, "2.5")
    assert store_wait_s() == 2.5


# --- a read lease kept between reads (a serving process, issue 17 follow-up) ------------


def kept(path: Path) -> bool:
    """Whether this process keeps ``path`` attached with no lease using it."""
    found = store_module._host().attached.get(os.path.realpath(path))
    return found is not None and found.idle_since is not None


def ingest_capture(
    tmp_path: Path, store_path: Path, register_url: str, wait: str
) -> tuple[int | None, str, str]:
    """``meetpunt ingest`` of three telegrams in its own process, waiting at most
    ``wait`` seconds for the store; the finished process."""
    capture = tmp_path / "capture.p1"
    capture.write_bytes(b"".join(telegram(1000 + i) for i in range(3)))
    run = meetpunt(
        "ingest", str(capture), "--ean", E1X25, "--json", "--store", str(store_path),
        "--db", register_url, "--store-wait", wait,
    )  # fmt: skip
    out, err = run.communicate(timeout=300)
    return run.returncode, out, err


def test_a_kept_read_lets_ingest_in_and_the_next_read_sees_its_rows(
    tmp_path: Path, store_path: Path, register_url: str
) -> None:
    """MTR-1 with a kept read lease: this process would keep the store for an hour,
    far longer than the ingester waits; the ingester gets in because it announces that
    it waits and the kept lease lets go, and the next read attaches again and sees the
    rows it committed."""
    reader = open_store(store_path, read_only=True, keep_s=3600)
    try:
        assert reader.count("p1_readings") == 0
        assert kept(store_path)
        code, out, err = ingest_capture(tmp_path, store_path, register_url, "60")
        assert code == 0, (out, err)
        assert not kept(store_path)
        assert reader.count("p1_readings") == 3
        assert kept(store_path)
    finally:
        reader.close()
    assert not kept(store_path)


def test_without_the_writers_announcement_a_kept_read_keeps_ingest_out(
    tmp_path: Path, store_path: Path, register_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key step of the test above removed: a reader that does not see the waiting
    writer keeps the store, and the ingester gives up (MTR-1.store_busy, exit 2)."""
    monkeypatch.setattr(store_module, "writer_waiting", lambda _path: False)
    reader = open_store(store_path, read_only=True, keep_s=3600)
    try:
        assert reader.count("p1_readings") == 0
        code, out, err = ingest_capture(tmp_path, store_path, register_url, "1")
        assert code == 2, (out, err)
        assert "MTR-1.store_busy" in out + err
        assert kept(store_path)
    finally:
        reader.close()


def test_a_read_does_not_begin_while_a_writer_waits(store_path: Path) -> None:
    """A read lease waits while a writer announces that it waits (MTR-1), so a stream
    of reads cannot keep a writer out; the read goes on once the writer has got in."""
    intent = store_module._Intent(os.path.realpath(store_path))
    intent.take("PID 4711 (a long read)")
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            open_store(store_path, read_only=True, wait_s=0.2).count("batch")
        assert caught.value.rules == ("MTR-1.store_busy",)
        said = str(caught.value)
        assert "PID 4711 (a long read), and a writer" in said and "waits for it first" in said
    finally:
        intent.release()
    assert open_store(store_path, read_only=True, wait_s=0.2).count("batch") == 0


def test_a_write_in_the_serving_process_lets_its_kept_read_go(store_path: Path) -> None:
    """A write lease in the process that keeps a read lease detaches the kept one first
    (DuckDB: one mode per file and process), and the next read sees the write."""
    reader = open_store(store_path, read_only=True, keep_s=3600)
    try:
        assert reader.count("batch") == 0 and kept(store_path)
        with open_store(store_path, wait_s=5).transaction() as con:
            con.execute("INSERT INTO meta VALUES ('kept', 'written')")
        found = reader.query("SELECT value FROM meta WHERE key = 'kept'").to_pylist()
        assert found == [{"value": "written"}]
    finally:
        reader.close()


def test_a_kept_read_lease_is_let_go_when_idle(store_path: Path) -> None:
    """An idle kept lease is detached after ``keep_s`` (here 50 ms), so a process that
    stops reading does not keep the file (waited for by polling, not timed)."""
    reader = open_store(store_path, read_only=True, keep_s=0.05)
    assert reader.count("batch") == 0
    deadline = time.monotonic() + 60
    while kept(store_path):
        assert time.monotonic() < deadline, "the kept lease was never let go"
        time.sleep(0.01)
    assert store_module._host().attached.get(os.path.realpath(store_path)) is None


def test_a_reader_behind_a_waiting_writer_says_whom_both_wait_for(store_path: Path) -> None:
    """A reader that waits because a writer waits (MTR-1, writers first) still names
    the process that holds the store, from the writer's announcement; then both get in."""
    holder = Holder(store_path, "write")
    try:
        writer = python(WRITER, str(store_path), "first")
        said_waiting(writer)
        while not store_module.writer_waiting(os.path.realpath(store_path)):
            assert writer.poll() is None, writer.communicate()
            time.sleep(0.01)
        reader = python(READER, str(store_path))
        line = said_waiting(reader)
        assert f"PID {holder.process.pid}" in line and "waits for it first" in line
        holder.release()
        for waiter, said in ((writer, "wrote first"), (reader, "batches 0")):
            out, err = waiter.communicate(timeout=60)
            assert waiter.returncode == 0, err
            assert out.strip() == said
    finally:
        holder.kill()
