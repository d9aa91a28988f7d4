"""Writing files safely: the one atomic writer, exclusive locks, and deferred interrupts.

Everything semsim writes (result tables, plots, manifests, cached models and BLER tables)
goes through :func:`atomic_write_bytes`: the bytes are written to a temporary file in the
target's folder (named ``.<name>.<random>.semsim-tmp``), flushed to disk, then renamed over
the target, so a reader sees the old file or the new one, never half of one. Any
:class:`OSError` on the way (a full disk, a read-only or vanished folder, a permission
error) leaves the old file as it was, removes the temporary file and is raised as one
:class:`~simulator.errors.OutputError` naming the path.

:func:`exclusive` holds an inter-process lock (the ``filelock`` library, ``flock`` on POSIX)
without waiting: a second process asking for the same lock gets an
:class:`~simulator.errors.OutputError` at once naming the path and, when it is known, the
process that holds it. :func:`waiting_lock` is the blocking variant for caches, where the
second process should wait and then read what the first one wrote.

:func:`deferred_interrupts` postpones SIGINT and SIGTERM over a few renames that must happen
together (moving a finished run into place); the signal is re-delivered right after.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import filelock

from .errors import OutputError

TMP_SUFFIX = ".semsim-tmp"
T = TypeVar("T")


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new file ``.<name>.<random>.semsim-tmp`` beside ``path``, opened for writing with mode
    0o666 less the process umask (as any new file; the umask is never changed)."""
    for _ in range(100):
        name = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def describe_os_error(err: OSError) -> str:
    """``"No space left on device"``-style text of an OS error (its errno's name if unknown)."""
    if err.strerror:
        return err.strerror
    if err.errno is not None:
        return os.strerror(err.errno)
    return str(err) or type(err).__name__


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; an OS error becomes :class:`OutputError`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:  # a file stands where a folder is needed (the path or a parent)
        raise OutputError("exists and is not a directory", where=str(err.filename or path)) from None
    except OSError as err:
        raise OutputError(f"cannot create the directory ({describe_os_error(err)})",
                          where=str(err.filename or path)) from None
    return path


def _write_fully(fh, data: bytes, path: Path) -> None:  # noqa: ARG001 - ``path`` is for fault injection in tests
    """Write, flush and fsync ``data`` to the open file ``fh`` (the temporary file for ``path``)."""
    fh.write(data)
    fh.flush()
    os.fsync(fh.fileno())


def atomic_write_bytes(path: Path, data: bytes, make_parents: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    Args:
        path: the target file.
        data: its new content.
        make_parents: create the folder if missing. Writers inside a directory that must
            already exist (a run's staging directory) pass ``False``, so a folder that
            vanished during a run is reported instead of silently recreated.

    Raises:
        OutputError: the folder cannot be created or the file cannot be written (the message
            names the path; a file that stood at ``path`` before is left unchanged).
    """
    path = Path(path)
    if make_parents:
        ensure_dir(path.parent)
    tmp: str | None = None
    try:
        fd, tmp = _create_temporary(path)
        with os.fdopen(fd, "wb") as fh:
            _write_fully(fh, data, path)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise OutputError(f"cannot write ({describe_os_error(err)}); nothing that was there before "
                          "was changed", where=str(path)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write_text(path: Path, text: str, make_parents: bool = True) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), make_parents)


def atomic_write_json(path: Path, data: Any, make_parents: bool = True) -> None:
    """Write JSON atomically: keys sorted, two-space indent, trailing newline."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", make_parents)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_write_bytes`'s temporary files."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def owner_record(command: str) -> dict[str, Any]:
    """Who is writing: process id, host, command and start time (for lock messages)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def describe_owner(owner: dict[str, Any] | None) -> str:
    """``"semsim run (pid 123 on host, started ...)"`` from :func:`owner_record`, or a generic text."""
    if not owner or "pid" not in owner:
        return "another semsim process"
    return (f"another semsim process ({owner.get('command', 'semsim')}, pid {owner['pid']} on "
            f"{owner.get('host', '?')}, started {owner.get('started', '?')})")


def _check_owner_file(path: Path) -> None:
    """Refuse to replace an owner file that semsim did not write (a user's file of that name)."""
    if not os.path.lexists(path):
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ours = isinstance(data, dict) and {"pid", "host", "command", "started"} <= set(data) and not path.is_symlink()
    except (OSError, ValueError):
        ours = False
    if not ours:
        raise OutputError("is in the way of semsim's lock record and was not written by semsim; move it away",
                          where=str(path))


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str, owner_file: Path | None = None,
              command: str = "semsim") -> Iterator[None]:
    """Hold the lock ``lock_path`` for the duration of the block, or fail at once.

    Args:
        lock_path: the lock file (created if missing; left in place after release, as the
            locking library requires for a safe hand-over).
        what: the thing guarded, named in the error (e.g. the run directory).
        owner_file: a small JSON file written (atomically) once the lock is held, naming this
            process; a process that finds the lock taken reads it to name the holder.
        command: the semsim command, for the owner record.

    Raises:
        OutputError: the lock is held by another process (or its file cannot be created).
    """
    ensure_dir(Path(lock_path).parent)
    lock = filelock.FileLock(str(lock_path), timeout=0, is_singleton=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        if not Path(lock_path).exists():  # nobody holds it: the file cannot be made (filelock says "timeout")
            try:
                with open(lock_path, "a", encoding="utf-8"):
                    pass
            except OSError as err:
                raise OutputError(f"cannot create the lock file ({describe_os_error(err)})",
                                  where=str(lock_path)) from None
        owner = None
        if owner_file is not None:
            with contextlib.suppress(OSError, ValueError):
                owner = json.loads(Path(owner_file).read_text(encoding="utf-8"))
        raise OutputError(f"{describe_owner(owner)} is writing this; wait for it to finish or choose "
                          "another output path", where=what) from None
    except OSError as err:
        raise OutputError(f"cannot create the lock file ({describe_os_error(err)})",
                          where=str(lock_path)) from None
    try:
        if owner_file is not None:
            _check_owner_file(Path(owner_file))
            atomic_write_json(owner_file, owner_record(command))
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def waiting_lock(lock_path: Path) -> Iterator[None]:
    """Hold the lock ``lock_path`` (blocking until it is free) for the duration of the block.

    Used around cache fills, so that two processes that need the same model or table compute
    it once: the second waits, then finds the first one's file.
    """
    ensure_dir(Path(lock_path).parent)
    lock = filelock.FileLock(str(lock_path), is_singleton=False)
    try:
        lock.acquire()
    except OSError as err:
        raise OutputError(f"cannot create the lock file ({describe_os_error(err)})",
                          where=str(lock_path)) from None
    try:
        yield
    finally:
        lock.release()


def fill_once(lock_path: Path, read: Callable[[], T | None], fill: Callable[[], T]) -> tuple[T, bool]:
    """A cache entry that is computed once across processes: the one routine of every cache.

    ``read()`` returns the cached value or ``None``; it runs first without the lock (files are
    written atomically, so a present one is whole, and a read-only cache works). Otherwise,
    under the blocking lock ``lock_path``, ``read()`` runs again (another process may have
    filled the entry while this one waited) and, still ``None``, ``fill()`` computes and writes
    it. Returns ``(value, was_cached)``.
    """
    got = read()
    if got is not None:
        return got, True
    with waiting_lock(lock_path):
        got = read()
        if got is not None:
            return got, True
        return fill(), False


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Postpone SIGINT and SIGTERM until the block has finished (main thread only).

    A signal that arrives inside the block is remembered and re-raised with its original
    handler right after, so a few file-system steps that must happen together are never cut
    in half by Ctrl-C or ``kill``. Elsewhere than the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    signals = [signal.SIGINT, signal.SIGTERM]
    previous = {s: signal.getsignal(s) for s in signals}

    def remember(signum, frame):  # noqa: ARG001 - signal handler signature
        pending.append(signum)

    for s in signals:
        signal.signal(s, remember)
    try:
        yield
    finally:
        for s in signals:
            signal.signal(s, previous[s])
        if pending:
            signal.raise_signal(pending[0])


__all__ = ["sealed_json", "unsealed_json", "fill_once", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "ensure_dir", "exclusive",
           "waiting_lock", "deferred_interrupts", "is_temporary", "describe_os_error", "owner_record",
           "describe_owner", "TMP_SUFFIX"]


def sealed_json(fmt: str, version: int, digest: str, payload: dict) -> str:
    """A cache file's text: ``payload`` (its ``key`` and body fields) with the file's format,
    version, the key's digest and a sha256 checksum of the payload (:func:`unsealed_json`)."""
    checksum = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return json.dumps({"format": fmt, "version": version, "digest": digest, **payload, "checksum": checksum},
                      indent=1, sort_keys=True)


def unsealed_json(text: str, fmt: str, version: int, key: dict, digest: str, body: str, what: str):
    """The ``body`` field of a :func:`sealed_json` text, once its format and version, its key
    (``key``, ``digest``) and its checksum are verified; ``ValueError`` saying why it cannot be
    trusted (``what`` names the kind of file)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"not valid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != fmt or data.get("version") != version:
        raise ValueError(f"not a semsim {what} of this version")
    if data.get("key") != key or data.get("digest") != digest:
        raise ValueError(f"{what} was measured for another key")
    payload = {"key": data["key"], body: data.get(body)}
    if hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest() != data.get("checksum"):
        raise ValueError("checksum mismatch")
    return data[body]

