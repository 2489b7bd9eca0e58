"""Writing files safely, naming output files, and PEM / PKCS#12 encoding.

Every file devcert writes goes through :func:`atomic_write`: a temporary file in the same
folder, created with the final mode, fsynced, then renamed over the target. A crash or a
kill at any point leaves either the old file or the new one, never half of one, and a private
key is never readable by others, not even for an instant, whatever the umask.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import FileWriteError

PRIVATE = 0o600
PUBLIC = 0o644


def _explain(err: OSError, path: Path) -> str:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "the folder does not exist",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EISDIR: "it is a folder",
    }
    return reasons.get(err.errno, err.strerror or str(err))


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = PUBLIC) -> Path:
    """Write ``data`` to ``path`` atomically with permission bits ``mode``.

    Raises :class:`FileWriteError` with a readable reason when the folder is missing or not
    writable. Returns the absolute path written.
    """
    if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
        raise FileWriteError(f"cannot write {path}: it is a folder; give a file name")
    target = Path(path).absolute()
    folder = target.parent
    tmp = folder / f".{target.name}.{os.urandom(6).hex()}.tmp"
    try:
        # O_EXCL: never follow or reuse a file someone else put there; 0600 until fchmod.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as err:
        raise FileWriteError(f"cannot write {target}: {_explain(err, folder)}") from err
    try:
        try:
            # mkstemp creates 0600; set the final mode on the descriptor, so the umask
            # never applies and a private key is never briefly world-readable.
            os.fchmod(fd, mode)
        except (AttributeError, NotImplementedError):  # pragma: no cover - Windows
            pass
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise FileWriteError(f"cannot write {target}: {_explain(err, target)}") from err
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return target


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700, whatever the umask."""
    if path.exists() and not path.is_dir():
        raise FileWriteError(f"{path} is a file, not a folder: move it aside (or set DEVCERT_CAROOT to another folder)")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix":
            os.chmod(path, 0o700)
    except OSError as err:
        raise FileWriteError(f"cannot create folder {path}: {_explain(err, path)}") from err
    return path


def output_basename(names: list[str], client: bool = False) -> str:
    """The stem mkcert would use for these names: ``localhost+2``, ``_wildcard.app.test``.

    The first name gives the stem, ``*`` becomes ``_wildcard``, characters that cannot be in
    a file name (``:`` of IPv6 and URIs, ``/``) become ``_``, ``+N`` counts the other names,
    and ``-client`` marks client certificates.
    """
    stem = names[0].replace("*", "_wildcard")
    for char in ':/\\?#%"<>|':
        stem = stem.replace(char, "_")
    if len(names) > 1:
        stem += f"+{len(names) - 1}"
    if client:
        stem += "-client"
    return stem


def default_output_paths(names: list[str], client: bool = False) -> tuple[Path, Path, Path]:
    """``(cert, key, p12)`` paths in the current folder, named as mkcert names them."""
    stem = output_basename(names, client)
    return Path(f"{stem}.pem"), Path(f"{stem}-key.pem"), Path(f"{stem}.p12")
