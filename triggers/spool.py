"""The sink's spool: an accepted event is appended to a file on this host before its 202, and another process
(`taskhub events ingest --follow`, which `taskhub serve` runs beside its web workers) moves it into the database
and queues its job.

Recording the event and its job in the request (two rows, ten index entries, a commit) made the sink's 202 cost
three times a bare Flask 202 (bench/events.py). One write(2) to a file survives a crash of the web process as a
commit does in SQLite's WAL mode with synchronous=NORMAL, the hub's (catalog/db.py): neither waits for the disk.
So an event is as safe on a hub whose database is a file on this host once it is spooled as once it is recorded.

A spool directory holds:

- `<pid>-<token>.spool`: one file per web process at a time, appended to under an exclusive flock(2) that the
  process holds while it writes there. A file nobody holds is finished: its writer moved on to a new file (past
  ROTATE_BYTES) or died. Files appear under their final name already locked (made as `.new`, then renamed), so
  the mover never takes a file about to be written for a finished one.
- `wake`: a FIFO the mover reads; each append writes a byte to it. The mover also looks every POLL_SECONDS.
- `mover.lock`: held by the one process moving this spool.

Each event is a frame: MAGIC, the payload's length and CRC-32 (big-endian), then the payload: the length of a JSON
object of the event's columns (headers redacted and sealed as the database keeps them), that object, and the
raw body. A frame cut short by a crash was never answered 202, and is dropped with a warning; every complete
frame is moved. Moves are idempotent: a mover that restarts reads the files again from their start, and events
already recorded (by eventID) are skipped. A file is removed only once what was recorded from it is on disk
(`durable`); one that is damaged is kept as `*.damaged`, and headers sealed with another secrets key stop the move,
logged, until the mover is given the hub's key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import select
import struct
import threading
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

MAGIC = b"TSE1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, CRC-32 of the payload
_LENGTHS = struct.Struct(">II")
SUFFIX = ".spool"
WAKE = "wake"
MOVER_LOCK = "mover.lock"
# A writer starts a new file past this size, so a finished one can be moved whole and removed.
ROTATE_BYTES = 16 * 1024 * 1024
# How often the mover looks without being woken: the bound on a lost wake-up.
POLL_SECONDS = 1.0
# How long the mover lets events gather after it moved some: the first event of a burst is recorded at once, the
# rest in transactions of many (a 7 kB push event cost 0.63 ms of CPU to record alone, 0.25 ms in a batch of ten,
# 0.20 ms in one of fifty, on SQLite).
GATHER_SECONDS = 0.01
# The most events, and bytes of them, moved in one transaction.
BATCH_EVENTS = 256
BATCH_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Spooled:
    """An event as the spool keeps it: its columns (triggers.events.EventLog.accepted_values), and its full headers,
    which the mover seals as the database keeps them."""

    values: dict[str, Any]
    headers: list[tuple[str, str]]


class SpoolCipher:
    """Seals an event's full headers in the spool: AES-256-GCM under a key derived from the secrets key (Fernet,
    which seals them in the database, costs a tenth of the sink's time in Python; this is one call), bound to the
    eventID, so the spool holds no signature or token in the clear."""

    PURPOSE = b"taskhub spool headers v1"

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encode(self, event: Spooled) -> bytes:
        """The payload of a frame: the lengths of the columns' JSON and of the sealed headers, both, then the raw
        body."""
        row = dict(event.values)
        body = row.pop("body")
        row["received_at"] = row["received_at"].isoformat()
        meta = json.dumps(row, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        headers = json.dumps(event.headers, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, headers, row["event_id"].encode())
        return _LENGTHS.pack(len(meta), len(sealed)) + meta + sealed + body

    def decode(self, payload: bytes) -> Spooled:
        """An event from its payload; InvalidTag for headers sealed with another key."""
        meta_length, sealed_length = _LENGTHS.unpack_from(payload)
        start = _LENGTHS.size
        row: dict[str, Any] = json.loads(payload[start : start + meta_length])
        sealed = payload[start + meta_length : start + meta_length + sealed_length]
        row["body"] = payload[start + meta_length + sealed_length :]
        row["received_at"] = datetime.fromisoformat(row["received_at"])
        headers = json.loads(self._aead.decrypt(sealed[:12], sealed[12:], row["event_id"].encode()))
        return Spooled(row, [(str(k), str(v)) for k, v in headers])


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


class SpoolWriter:
    """The web process's side: appends events to its own file in `directory` (any thread)."""

    def __init__(self, directory: Path, cipher: SpoolCipher, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.directory, self.cipher, self.rotate_bytes = Path(directory), cipher, rotate_bytes
        self._lock = threading.Lock()
        self._fd, self._written = -1, 0
        self._wake_fd = -1
        forget = weakref.WeakMethod(self._forget_in_child)
        os.register_at_fork(after_in_child=lambda: (method := forget()) is not None and method())

    def _forget_in_child(self) -> None:
        """In a forked child: its copies of the parent's descriptors closed (the parent keeps its lock: a lock
        goes only with the last descriptor), and a lock of its own, should a thread have held the parent's."""
        for fd in (self._fd, self._wake_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._lock = threading.Lock()
        self._fd = self._wake_fd = -1

    def append(self, event: Spooled) -> None:
        """Keeps one event; once it returns, the event survives this process. Raises OSError (a full disk, a
        directory not writable), having written nothing that the mover would take for an event."""
        data = frame(self.cipher.encode(event))
        with self._lock:
            if self._fd < 0 or self._written >= self.rotate_bytes:
                self._open()
            try:
                view = memoryview(data)
                while view:  # a regular file takes it all in one write unless the disk is full
                    view = view[os.write(self._fd, view) :]
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._written)  # no torn frame ahead of the next ones
                self._close()  # the next event goes to a new file
                raise
            self._written += len(data)
            self._wake()

    def _open(self) -> None:
        self._close()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        new = self.directory / f"{name}.new"
        fd = os.open(new, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(new, self.directory / f"{name}{SUFFIX}")
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(new)
            raise
        self._fd, self._written = fd, 0

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def _wake(self) -> None:
        if self._wake_fd < 0:
            try:
                self._wake_fd = os.open(self.directory / WAKE, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:  # no mover listening now: it finds the event when it looks (POLL_SECONDS)
                return
        try:
            os.write(self._wake_fd, b"!")
        except BlockingIOError:  # full of wake-ups already
            pass
        except OSError:  # the mover went away: open the FIFO again next time
            os.close(self._wake_fd)
            self._wake_fd = -1

    def close(self) -> None:
        with self._lock:
            self._close()
            if self._wake_fd >= 0:
                os.close(self._wake_fd)
                self._wake_fd = -1


class SpoolBusy(Exception):
    """Another process is moving this spool."""


class SpoolKeyError(Exception):
    """The spool's events were sealed with another secrets key than the mover's: a setting to fix, not damage."""


@dataclass
class _Reading:
    fd: int
    offset: int = 0
    damaged: bool = False


# Records a batch of events in the database; returns how many were new there.
Record = Callable[[list[Spooled]], int]


class SpoolMover:
    """The mover's side: takes the spool's events, in order within each file, into the database through `record`.
    Only one mover per directory: SpoolBusy when another holds it (unless `wait`)."""

    def __init__(
        self, directory: Path, cipher: SpoolCipher, record: Record, *, durable: Callable[[], None] | None = None,
        wait: bool = False,
    ) -> None:  # fmt: skip
        """`durable`: makes what `record` committed survive a power cut, before a file is removed (SQLite's WAL
        is not synced at each commit)."""
        self.directory, self.cipher, self.record, self.durable = Path(directory), cipher, record, durable
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # it holds bodies and sealed headers
        self._lock_fd = os.open(self.directory / MOVER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"another process is moving the spool in {self.directory}") from None
        self._files: dict[str, _Reading] = {}
        self.moved = self.dropped_bytes = 0
        fifo = self.directory / WAKE
        with contextlib.suppress(FileExistsError):
            os.mkfifo(fifo, 0o600)
        # Read and write: never at end of file, whoever comes and goes on the other side.
        self._wake_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._interrupt_r, self._interrupt_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def move(self) -> int:
        """Moves every complete event in the spool; removes the files that are finished and moved; returns how
        many events it recorded. A file that fails (the database away, a key that does not open it) is left as it
        is, the other files are moved, and the first failure is raised."""
        moved, failed = 0, None
        names = sorted(p.name for p in self.directory.iterdir() if p.name.endswith(SUFFIX))
        for name in names:
            try:
                moved += self._move_file(name)
            except Exception as exc:
                failed = failed or exc
        for gone in set(self._files) - set(names):
            os.close(self._files.pop(gone).fd)
        self.moved += moved
        if failed is not None:
            raise failed
        return moved

    def follow(self) -> None:
        """One step of following the spool: moves what is there, then lets the next batch gather for
        GATHER_SECONDS (under load, one transaction records many events), or waits for an append when there was
        nothing; when the database fails, the events stay spooled, and it tries again after POLL_SECONDS."""
        try:
            moved = self.move()
        except SpoolKeyError as exc:
            log.error("%s", exc)
            select.select([self._interrupt_r], [], [], POLL_SECONDS)
            return
        except Exception as exc:  # the database away, say
            log.warning("spooled events wait to be recorded: %s", exc)
            select.select([self._interrupt_r], [], [], POLL_SECONDS)
            return
        if moved:
            select.select([self._interrupt_r], [], [], GATHER_SECONDS)
            return
        ready, _, _ = select.select([self._wake_fd, self._interrupt_r], [], [], POLL_SECONDS)
        if self._wake_fd in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_fd, 65536):
                    pass

    def interrupt(self) -> None:
        """Ends the current wait of `follow` (from a signal handler too)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._interrupt_w, b"!")

    def _move_file(self, name: str) -> int:
        path = self.directory / name
        reading = self._files.get(name)
        if reading is None:
            try:
                reading = self._files[name] = _Reading(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                return 0
        try:  # decided before reading: once its writer let go, everything it wrote is there
            fcntl.flock(reading.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finished = True
        except BlockingIOError:
            finished = False
        moved, batch, size, taken = 0, [], 0, reading.offset
        for payload, end in self._frames(reading, name, finished):
            try:
                batch.append(self.cipher.decode(payload))
            except InvalidTag:  # every file would say so: the events wait for the hub's key
                raise SpoolKeyError(
                    f"the events in the spool {self.directory / name} were sealed with another secrets key: give "
                    "this process the hub's (TASKHUB_SECRETS_KEY, or the data directory's secrets.key)"
                ) from None
            size, taken = size + len(payload), end
            if len(batch) >= BATCH_EVENTS or size >= BATCH_BYTES:
                moved += self.record(batch)  # raises while the database is away: the offset stays
                reading.offset, batch, size = taken, [], 0
        if batch:
            moved += self.record(batch)
            reading.offset = taken
        if finished:
            self._finish(name, reading)
        return moved

    def _frames(self, reading: _Reading, name: str, finished: bool) -> Iterator[tuple[bytes, int]]:
        """The complete frames after the file's offset, each with the offset where it ends."""
        if reading.damaged:
            return
        offset, fd = reading.offset, reading.fd
        end_of_file = os.fstat(fd).st_size
        while end_of_file - offset >= _HEADER.size:
            magic, length, crc = _HEADER.unpack(os.pread(fd, _HEADER.size, offset))
            if magic != MAGIC:
                self._damaged(reading, name, offset, "no frame starts there")
                return
            if end_of_file - offset - _HEADER.size < length:
                break  # still being written, or cut short by a crash
            payload = os.pread(fd, length, offset + _HEADER.size)
            if zlib.crc32(payload) != crc:
                self._damaged(reading, name, offset, "its checksum does not match")
                return
            offset += _HEADER.size + length
            yield payload, offset
        if finished and offset < end_of_file:
            self.dropped_bytes += end_of_file - offset
            log.warning(
                "spool %s: %d bytes at its end are an event cut short by a crash of its writer (never answered 202); "
                "dropped", name, end_of_file - offset,
            )  # fmt: skip

    def _damaged(self, reading: _Reading, name: str, offset: int, why: str) -> None:
        reading.damaged = True
        log.error("spool %s is damaged at byte %d (%s): the events after it stay in the file, which is kept as "
                  "%s.damaged once its writer is done with it", name, offset, why, name)  # fmt: skip

    def _finish(self, name: str, reading: _Reading) -> None:
        if self.durable is not None:
            self.durable()
        path = self.directory / name
        if reading.damaged:
            os.rename(path, path.with_name(name + ".damaged"))
        else:
            os.unlink(path)
        os.close(reading.fd)
        del self._files[name]

    def close(self) -> None:
        for reading in self._files.values():
            os.close(reading.fd)
        self._files.clear()
        for fd in (self._wake_fd, self._interrupt_r, self._interrupt_w, self._lock_fd):
            os.close(fd)
