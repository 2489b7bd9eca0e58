"""Writing files safely and naming output files.

Every file devcert writes goes through :func:`atomic_write` or :func:`write_together`: a
temporary file in the same folder, created with the final mode, fsynced, then renamed over
the target. A crash or a kill at any point leaves either the old file or the new one, never
half of one, and a private key is never readable by others, not even for an instant, whatever
the umask. Several files that belong together (a key and its certificate) change as one
through a journal (see :func:`write_together`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import FileWriteError

PRIVATE = 0o600
PUBLIC = 0o644
TEMP_SUFFIX = ".tmp"
JOURNAL_PREFIX = ".devcert-"
JOURNAL_SUFFIX = ".journal"


def _explain(err: OSError, path: Path) -> str:
    reasons = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "the folder does not exist",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file is larger than this process may write (the file size limit, `ulimit -f`)",
        errno.EISDIR: "it is a folder",
        errno.ELOOP: "too many symbolic links",
        errno.ENAMETOOLONG: "the file name is too long",
    }
    return reasons.get(err.errno or 0, err.strerror or str(err))


def _write_error(doing: str, err: OSError, path: Path) -> FileWriteError:
    """``FileWriteError("<doing>: <why>")``; a name too long gets the ``shorter-name`` fix (the CLI
    names the options that choose the file names)."""
    fix = "shorter-name" if err.errno == errno.ENAMETOOLONG else None
    return FileWriteError(f"{doing}: {_explain(err, path)}", fix=fix)


def _check_target(path: str | os.PathLike[str]) -> Path:
    """The absolute target, refused when it is a folder, a FIFO, a device or has a NUL byte.

    A symbolic link at the target is fine: the rename replaces the link itself, never the
    file it points to (a link into CAROOT or /etc cannot redirect a key).
    """
    text = os.fspath(path)
    if "\0" in text:
        raise FileWriteError(f"cannot write {text!r}: the path contains a NUL byte")
    if text.endswith(("/", os.sep)):
        raise FileWriteError(f"cannot write {path}: it is a folder; give a file name")
    target = Path(path).absolute()
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    except OSError as err:  # e.g. a name longer than the file system allows
        raise _write_error(f"cannot write {path}", err, target) from err
    if stat.S_ISDIR(st.st_mode):
        raise FileWriteError(f"cannot write {path}: it is a folder; give a file name")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        # Renaming over /dev/null (as root) would replace the device itself.
        raise FileWriteError(f"cannot write {path}: it is a device, not a regular file")
    return target  # a regular file, a link, or a FIFO/socket: the rename replaces the entry itself


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def temp_prefix(target: Path) -> str:
    """The start of every temporary name for ``target``: ``.NAME.`` (long names: start + hash).

    Stable per target, so the stale temporaries of an interrupted write can be found and
    removed, and so the .gitignore line ``.NAME.*.tmp`` covers them.
    """
    name = target.name
    if len(name.encode()) > 64:
        name = name.encode()[:48].decode(errors="ignore") + "~" + hashlib.sha256(target.name.encode()).hexdigest()[:8]
    return f".{name}."


def _stage(target: Path, data: bytes, mode: int) -> Path:
    """A fsynced temporary file with ``data`` and ``mode`` beside ``target``."""
    tmp = target.parent / f"{temp_prefix(target)}{os.urandom(6).hex()}{TEMP_SUFFIX}"
    try:
        # O_EXCL: never follow or reuse a file someone else put there; 0600 until fchmod.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as err:
        raise _write_error(f"cannot write {target}", err, target.parent) from err
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
        raise _write_error(f"cannot write {target}", err, target) from err
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


# -- several files as one change: the journal ------------------------------------------------
#
# A certificate and its key (or the CA's pair, or a pair and the inventory) must change
# together, but a rename changes one file. So:
#
#   1. every new file is written in full to a temporary file beside its target and fsynced;
#   2. a journal listing (temporary, target) pairs is written and renamed into place: this
#      rename is the commit point;
#   3. the temporaries are renamed over their targets, the folders fsynced, the journal removed.
#
# A process killed before step 2 leaves only temporaries, which the next write of the same
# target removes (the old files are untouched). Killed after it, the journal remains, and
# :func:`recover` (run by every devcert command that opens the CA, and by the next write into
# the same folder) renames whatever temporaries are left: the new state, complete.


def write_together(files: list[tuple[str | os.PathLike[str], bytes, int]], *,
                   journal_dir: Path | None = None) -> list[Path]:
    """Write several files (a certificate and its key) so that either all change or none does.

    ``journal_dir`` is where the journal goes (CAROOT/pending for state devcert records, so
    every command finds it); by default the first target's folder. The caller serializes
    writers of the same targets (the CAROOT lock).
    """
    targets = [_check_target(path) for path, _, _ in files]
    folders = list(dict.fromkeys(target.parent for target in targets))
    for folder in folders:
        recover(folder)
        _remove_stale_temps(folder, targets)
    staged: list[Path] = []
    journal: Path | None = None
    try:
        for target, (_, data, mode) in zip(targets, files):
            staged.append(_stage(target, data, mode))
        if len(targets) > 1:
            journal = _commit_journal(journal_dir or targets[0].parent, list(zip(staged, targets)))
        old_states = [_old_state(t) for t in targets] if len(targets) > 1 else [None]
        replaced: list[tuple[Path, Any]] = []
        for target, tmp, old in zip(targets, staged, old_states):
            try:
                os.replace(tmp, target)
            except OSError as err:
                _roll_back(replaced)
                if journal is not None:
                    _unlink(journal)
                raise _write_error(f"cannot write {target}", err, target) from err
            replaced.append((target, old))
    finally:
        for tmp in staged:
            if os.path.lexists(tmp):
                _unlink(tmp)
    for folder in folders:
        _fsync_dir(folder)
    if journal is not None:
        _unlink(journal)
    return targets


def _commit_journal(folder: Path, pairs: list[tuple[Path, Path]]) -> Path:
    if not folder.is_dir():
        ensure_private_dir(folder)
    journal = folder / f"{JOURNAL_PREFIX}{os.urandom(8).hex()}{JOURNAL_SUFFIX}"
    body = json.dumps({"version": 1, "rename": [[str(tmp), str(target)] for tmp, target in pairs]})
    tmp = _stage(journal, body.encode(), PRIVATE)
    try:
        os.replace(tmp, journal)
    except OSError as err:
        _unlink(tmp)
        raise _write_error(f"cannot write {journal}", err, journal) from err
    _fsync_dir(folder)
    return journal


def pending_journals(folder: Path) -> list[Path]:
    """Committed journals in ``folder`` whose renames may not all be done yet."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / n for n in names if n.startswith(JOURNAL_PREFIX) and n.endswith(JOURNAL_SUFFIX))


def recover(folder: Path) -> list[Path]:
    """Finish every committed journal in ``folder``; return the targets it completed.

    Idempotent: a temporary that is gone was renamed already. A journal that cannot be read
    was being written when its process died (it is renamed into place only once complete), so
    it cannot exist; one damaged by hand is set aside rather than guessed at.
    """
    done: list[Path] = []
    for journal in pending_journals(folder):
        try:
            pairs = [(Path(t), Path(g)) for t, g in json.loads(journal.read_bytes())["rename"]]
        except (OSError, ValueError, KeyError, TypeError):
            try:
                os.replace(journal, journal.with_name(journal.name + ".damaged"))
            except OSError:
                pass
            continue
        touched = set()
        for tmp, target in pairs:
            if os.path.lexists(tmp):
                try:
                    os.replace(tmp, target)
                except FileNotFoundError:
                    continue  # another process finished the same journal a moment ago
                except OSError as err:
                    raise _write_error(f"cannot finish an interrupted write of {target}", err, target) from err
                done.append(target)
            touched.add(target.parent)
        for parent in touched:
            _fsync_dir(parent)
        _unlink(journal)
    return done


def _remove_stale_temps(folder: Path, targets: list[Path]) -> None:
    """Remove temporaries that interrupted writes of ``targets`` left behind (keys among them)."""
    prefixes = tuple(temp_prefix(t) for t in targets if t.parent == folder)
    if not prefixes:
        return
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.startswith(prefixes) and name.endswith(TEMP_SUFFIX):
            _unlink(folder / name)


def _old_state(target: Path) -> tuple[str, Any] | None:
    """What ``target`` is now, to put back if a later rename fails: a link, a file, or nothing."""
    try:
        st = os.lstat(target)
    except OSError:
        return None
    try:
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(target))
        if not stat.S_ISREG(st.st_mode):
            return None  # a FIFO or socket holds no content to put back (and reading one would block)
        return ("file", (target.read_bytes(), stat.S_IMODE(st.st_mode)))
    except OSError:
        return None


def _roll_back(replaced: list[tuple[Path, Any]]) -> None:
    for target, old in reversed(replaced):
        try:
            if old is None:
                os.unlink(target)
            elif old[0] == "link":
                os.unlink(target)
                os.symlink(old[1], target)
            else:
                os.replace(_stage(target, *old[1]), target)
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


def _make_dir(path: Path, mode: int) -> Path:
    """Create ``path`` and its missing parents, each with exactly ``mode``, whatever the umask."""
    if os.path.lexists(path) and not path.is_dir():
        raise FileWriteError(f"{path} is a file, not a folder: move it aside")
    missing = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=mode)
            except FileExistsError:  # made by a concurrent run meanwhile
                continue
            if os.name == "posix":
                os.chmod(folder, mode)
    except OSError as err:
        raise _write_error(f"cannot create folder {path}", err, path) from err
    return path


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700, whatever the umask."""
    if path.exists() and not path.is_dir():
        raise FileWriteError(f"{path} is a file, not a folder: move it aside (or set DEVCERT_CAROOT to another folder)")
    _make_dir(path, 0o700)
    try:
        if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) != 0o700:
            os.chmod(path, 0o700)
    except OSError as err:
        raise _write_error(f"cannot create folder {path}", err, path) from err
    return path


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed, 0755 for new folders: never writable by others."""
    return _make_dir(path, 0o755)


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
        digest = hashlib.sha256(stem.encode()).hexdigest()[:8]
        stem = stem.encode()[: _MAX_STEM - 9].decode(errors="ignore") + "~" + digest
    return stem


#: Longest stem kept whole: 255 bytes (NAME_MAX) less "-key.pem" and room to spare.
_MAX_STEM = 200


def default_output_paths(names: list[str], client: bool = False) -> tuple[Path, Path, Path]:
    """``(cert, key, p12)`` paths in the current folder, named as mkcert names them."""
    stem = output_basename(names, client)
    return Path(f"{stem}.pem"), Path(f"{stem}-key.pem"), Path(f"{stem}.p12")
