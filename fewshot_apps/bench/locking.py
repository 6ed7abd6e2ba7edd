"""Locks on a benchmark output folder, so that two ``bench`` runs never write one row twice.

``out/.lock`` is the folder's write lock: held while a run reads what is done, appends rows to
``results.csv`` / ``timings.json`` and writes the summary and reports (seconds each time);
another run waits for it (up to :data:`WRITE_WAIT_S`). ``out/.claims/<suite>--<dataset>--
<learner>.lock`` is a run's claim on the learner it is training: taken when that learner's turn
comes and given up once its rows are written. A run leaves a learner another live run has
claimed to that run (naming the holder) and goes on with the rest; it refuses at once when
another run holds all it has left to do. So several runs of one suite, of one ``--learners``
list or of other lists, may share a folder and split its learners between them.

Each lock file holds its holder's pid, host, start time and command (JSON). On POSIX the lock
is ``fcntl.flock`` on that file, which the kernel releases when the holder dies; a file left
behind by a dead holder is stale and taken over with a note. Where there is no ``fcntl`` the
file is created with ``O_CREAT | O_EXCL`` and is stale when its pid is gone on this host.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from fewshot_apps.bench.suites import file_slug
from fewshot_apps.errors import FewshotError

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None

LOCK_FILE = ".lock"
CLAIMS_FOLDER = ".claims"
WRITE_WAIT_S = 600.0  # a run waits this long for another's summary / report writing
UNREADABLE_STALE_S = 30.0  # no-fcntl fallback: an empty lock file this old was left by a crash


class OutputLockedError(FewshotError):
    """Another run holds a lock on the output folder; ``holder`` says who (may be empty)."""

    def __init__(self, message: str, holder: dict | None = None):
        super().__init__(message)
        self.holder = holder or {}


def describe(holder: dict) -> str:
    """``pid 123 on host h, started 2026-01-01T10:00:00+00:00, running `fewshot-apps ...```."""
    if not holder:
        return "an unknown process (its lock file is empty or unreadable)"
    text = (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')}")
    if holder.get("command"):
        text += f", running `{holder['command']}`"
    return text


def _pid_alive(pid) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True  # someone else's process, or a pid we cannot judge: assume alive
    except OSError:
        return True
    return True


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _read_holder(path: Path, fd: int | None = None) -> dict:
    try:
        if fd is not None:
            os.lseek(fd, 0, os.SEEK_SET)
            raw = b""
            while chunk := os.read(fd, 65536):
                raw += chunk
        else:
            raw = path.read_bytes()
        holder = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


class FileLock:
    """An exclusive lock on ``path`` that records its holder; ``what`` names what it guards
    (in messages). Reentrant within one object: :meth:`acquire` while held does nothing."""

    def __init__(self, path: str | Path, what: str, command: str | None = None):
        self.path = Path(path)
        self.what = what
        self.command = command if command is not None else " ".join(sys.argv)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _me(self) -> bytes:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "command": self.command, "what": self.what}
        return json.dumps(holder).encode("utf-8")

    def acquire(self, wait_s: float = 0.0, poll_s: float = 0.2) -> FileLock:
        """Take the lock, waiting up to ``wait_s`` seconds for its holder; else raise
        :class:`OutputLockedError` naming the holder."""
        if self.held:
            return self
        deadline = time.monotonic() + wait_s
        while True:
            holder = self._try_flock() if fcntl is not None else self._try_exclusive()
            if holder is None:
                return self
            if time.monotonic() >= deadline:
                waited = f" (waited {wait_s:g} s)" if wait_s else ""
                raise OutputLockedError(
                    f"{self.what} is locked by another bench run: {describe(holder)}{waited}. "
                    "Wait for it to finish or choose another --out; if that process is gone "
                    f"(e.g. on another host), delete {self.path}", holder)
            time.sleep(poll_s)

    def _try_flock(self) -> dict | None:
        """None when taken; else the holder (``{}`` when its file is not yet written)."""
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(self.path, fd)
                if not holder and exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    time.sleep(0.05)  # the holder may be writing its name just now
                    holder = _read_holder(self.path, fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return holder
                if not holder:  # the empty file just created here
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                return self._try_exclusive()  # a file system without flock (ENOLCK ...)
            # A holder releasing the lock unlinks its file: make sure ours is still the one.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
                os.close(fd)
                continue
            previous = _read_holder(self.path, fd)
            if previous:
                _note(f"{self.what}: taking over the lock of {describe(previous)}, which ended "
                      "without releasing it")
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, self._me())
            os.fsync(fd)
            self._fd = fd
            return None

    def _try_exclusive(self) -> dict | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _read_holder(self.path)
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return self._try_exclusive()
            stale = (holder.get("host") == socket.gethostname()
                     and not _pid_alive(holder.get("pid"))) if holder else age > UNREADABLE_STALE_S
            if not stale:
                return holder
            _note(f"{self.what}: taking over the lock of {describe(holder)}, which ended "
                  "without releasing it")
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return self._try_exclusive()
        os.write(fd, self._me())
        os.fsync(fd)
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            # Unlink while still holding it; a waiter that opened the old file notices.
            current = os.stat(self.path)
            mine = os.fstat(fd)
            if (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class OutputLocks:
    """A run's locks on its output folder: the write lock (:meth:`writing`) and its claims on
    the learner it is running (:meth:`claim`); :meth:`release_all` at the end of the run."""

    def __init__(self, out: str | Path, command: str | None = None,
                 write_wait_s: float | None = None):
        self.out = Path(out)
        self.command = command
        self.write_wait_s = WRITE_WAIT_S if write_wait_s is None else write_wait_s
        self.write_lock = FileLock(self.out / LOCK_FILE, f"output folder {self.out}", command)
        self.claims: dict[tuple[str, str, str], FileLock] = {}
        self._depth = 0

    @contextlib.contextmanager
    def writing(self):
        """Hold the folder's write lock for a ``with`` block (nested blocks share it)."""
        if self._depth == 0:
            self.write_lock.acquire(self.write_wait_s)
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.write_lock.release()

    def hold_writing(self) -> None:
        """Take the write lock until :meth:`release_all` (the run's last step)."""
        self.write_lock.acquire(self.write_wait_s)
        self._depth += 1

    def claim_path(self, key: tuple[str, str, str]) -> Path:
        suite, dataset, learner = key
        name = f"{file_slug(suite)}--{file_slug(dataset)}--{file_slug(learner)}.lock"
        return self.out / CLAIMS_FOLDER / name

    def claim(self, keys) -> None:
        """Claim ``(suite, dataset, learner)`` keys for this run, all or none: a key another
        live run holds raises :class:`OutputLockedError` at once, naming it and its holder."""
        taken = []
        try:
            for key in dict.fromkeys(keys):
                if key in self.claims:
                    continue
                lock = FileLock(self.claim_path(key),
                                f"{self.out}: learner {key[2]} of {key[0]}/{key[1]}", self.command)
                try:
                    lock.acquire(0)
                except OutputLockedError as exc:
                    raise OutputLockedError(
                        f"{self.out}: learner {key[2]} of {key[0]}/{key[1]} is being run into "
                        f"this folder by another bench run: {describe(exc.holder)}. Wait for it "
                        "to finish, run other --learners, or choose another --out",
                        exc.holder) from None
                self.claims[key] = lock
                taken.append(key)
        except BaseException:
            for key in taken:
                self.claims.pop(key).release()
            raise

    def claim_available(self, keys) -> dict[tuple[str, str, str], OutputLockedError]:
        """Claim those of ``keys`` that no other live run holds; returns the others, each with
        the refusal that names its holder, for this run to leave to that run."""
        held = {}
        for key in dict.fromkeys(keys):
            try:
                self.claim([key])
            except OutputLockedError as exc:
                held[key] = exc
        return held

    def held_by_others(self, keys) -> dict[tuple[str, str, str], OutputLockedError]:
        """Those of ``keys`` that another live run holds now, each with the refusal that names
        its holder; claims nothing (a probe: the free ones are claimed and released)."""
        free = [key for key in dict.fromkeys(keys) if key not in self.claims]
        held = self.claim_available(free)
        for key in free:
            if key not in held:
                self.release(key)
        return held

    def release(self, key: tuple[str, str, str]) -> None:
        """Give up this run's claim on ``key`` (its rows are written; nothing when unclaimed)."""
        lock = self.claims.pop(key, None)
        if lock is not None:
            lock.release()

    def release_all(self) -> None:
        for lock in self.claims.values():
            lock.release()
        self.claims.clear()
        with contextlib.suppress(OSError):
            (self.out / CLAIMS_FOLDER).rmdir()  # only when empty: other runs' claims stay
        self._depth = 0
        self.write_lock.release()

    def __enter__(self) -> OutputLocks:
        return self

    def __exit__(self, *exc) -> None:
        self.release_all()
