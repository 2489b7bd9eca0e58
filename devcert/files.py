"""Writing files safely, naming output files, and PEM / PKCS#12 encoding.

Every file devcert writes goes through :func:`atomic_write`: a temporary file in the same
folder, created with the final mode, fsynced, then renamed over the target. A crash or a
kill at any point leaves either the old file or the new one, never half of one, and a private
key is never readable by others, not even for an instant, whatever the umask.
"""

from __future__ import annotations

import errno
import os
import stat
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
        errno.ENAMETOOLONG: "the file name is too long (give a shorter one with --cert-file / --key-file)",
    }
    return reasons.get(err.errno, err.strerror or str(err))


def _check_target(path: str | os.PathLike[str]) -> Path:
    try:
        is_dir = str(path).endswith(("/", os.sep)) or Path(path).is_dir()
    except OSError as err:  # e.g. a name longer than the file system allows
        raise FileWriteError(f"cannot write {path}: {_explain(err, Path(path))}") from err
    if is_dir:
        raise FileWriteError(f"cannot write {path}: it is a folder; give a file name")
    return Path(path).absolute()


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _stage(target: Path, data: bytes, mode: int) -> Path:
    """A fsynced temporary file with ``data`` and ``mode`` beside ``target``."""
    # The temporary name stays short whatever the target's length (NAME_MAX is 255 bytes).
    tmp = target.parent / f".{target.name[:64]}.{os.urandom(6).hex()}.tmp"
    try:
        # O_EXCL: never follow or reuse a file someone else put there; 0600 until fchmod.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as err:
        raise FileWriteError(f"cannot write {target}: {_explain(err, target.parent)}") from err
    try:
        try:
            # Set the final mode on the descriptor, so the umask never applies and a private
            # key is never briefly world-readable.
            os.fchmod(fd, mode)
        except (AttributeError, NotImplementedError):  # pragma: no cover - Windows
            pass
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        _unlink(tmp)
        raise FileWriteError(f"cannot write {target}: {_explain(err, target)}") from err
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = PUBLIC) -> Path:
    """Write ``data`` to ``path`` atomically with permission bits ``mode``.

    Raises :class:`FileWriteError` with a readable reason when the folder is missing or not
    writable. Returns the absolute path written.
    """
    return write_together([(path, data, mode)])[0]


def write_together(files: list[tuple[str | os.PathLike[str], bytes, int]]) -> list[Path]:
    """Write several files (a certificate and its key) so that either all change or none does.

    Every file is first written in full to a temporary file beside its target; only when all
    of them are on disk are they renamed into place, in order. If a rename still fails, the
    files already replaced get their old content back (or are removed if they are new), so a
    failure never leaves a new key beside an old certificate.
    """
    targets = [_check_target(path) for path, _, _ in files]
    staged: list[Path] = []
    replaced: list[tuple[Path, tuple[bytes, int] | None]] = []  # (target, its old content and mode)
    try:
        for target, (_, data, mode) in zip(targets, files):
            staged.append(_stage(target, data, mode))
        for target, tmp in zip(targets, staged):
            old = _old_content(target) if len(files) > 1 else None
            try:
                os.replace(tmp, target)
            except OSError as err:
                _roll_back(replaced)
                raise FileWriteError(f"cannot write {target}: {_explain(err, target)}") from err
            replaced.append((target, old))
    finally:
        for tmp in staged:
            if tmp.exists():
                _unlink(tmp)
    for folder in dict.fromkeys(target.parent for target in targets):
        _fsync_dir(folder)
    return targets


def _old_content(target: Path) -> tuple[bytes, int] | None:
    try:
        return target.read_bytes(), stat.S_IMODE(target.stat().st_mode)
    except OSError:  # new (or unreadable): rolling back removes what we wrote
        return None


def _roll_back(replaced: list[tuple[Path, tuple[bytes, int] | None]]) -> None:
    for target, old in reversed(replaced):
        try:
            if old is None:
                os.unlink(target)
            else:
                os.replace(_stage(target, *old), target)
        except (OSError, FileWriteError):
            pass


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
    if len(stem.encode()) > _MAX_STEM:
        # A 253-character name (or a long URI) would make a file name longer than the 255
        # bytes file systems allow once "-key.pem" is added: keep the start, add a short hash.
        import hashlib

        digest = hashlib.sha256(stem.encode()).hexdigest()[:8]
        stem = stem.encode()[: _MAX_STEM - 9].decode(errors="ignore") + "~" + digest
    return stem


#: Longest stem kept whole: 255 bytes (NAME_MAX) less "-key.pem" and room to spare.
_MAX_STEM = 200


def default_output_paths(names: list[str], client: bool = False) -> tuple[Path, Path, Path]:
    """``(cert, key, p12)`` paths in the current folder, named as mkcert names them."""
    stem = output_basename(names, client)
    return Path(f"{stem}.pem"), Path(f"{stem}-key.pem"), Path(f"{stem}.p12")
