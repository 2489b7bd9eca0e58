"""Guards against a careless or hostile local user: who may change CAROOT, how strong a CA
must be, and how input files are read.

- :func:`caroot_problem`: CAROOT and the CA's files must belong to the user running devcert
  and be writable by nobody else. Otherwise another local user could put their own
  (unconstrained) CA there, and the next ``devcert install`` would trust it system-wide. Root
  may use any user's CAROOT (``sudo DEVCERT_CAROOT=~alice/... devcert install``): root can
  change every file anyway, and naming the folder is a deliberate choice.
- :func:`ca_weakness`: a CA that is expired, not yet valid, or weaker than RSA-2048 / P-256.
- :func:`read_regular`: inputs are read only when they are regular files under a size limit, so
  a FIFO cannot hang devcert and ``/dev/zero`` cannot exhaust memory.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import stat
from pathlib import Path

from cryptography import x509

from .errors import InputFileError, UnsafeCARootError
from .keys import MIN_RSA_BITS, STRONG_CURVES, weakness
from .layout import CERT_FILE, KEY_FILE

#: Certificates, keys, CSRs and CA bundles are far smaller than this (a full public bundle is ~200 KiB).
MAX_INPUT = 16 * 1024 * 1024
#: Files in CAROOT that decide which CA devcert uses (mkcert's names).
CA_FILES = (CERT_FILE, KEY_FILE)


def _owner_ok(st: os.stat_result) -> bool:
    if os.name != "posix":
        return True
    euid = os.geteuid()
    return euid == 0 or st.st_uid == euid


def _owner_name(uid: int) -> str:
    try:
        import pwd  # POSIX only, and only to name another owner in a refusal

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def caroot_problem(folder: Path) -> UnsafeCARootError | None:
    """Why ``folder`` (CAROOT) must not be used, as an error to raise, or None when it is safe.

    A missing folder or file is not a problem here (it will be created 0700 / 0600).
    """
    if os.name != "posix":
        return None  # Windows ACLs are not expressed in mode bits; the user profile protects CAROOT
    try:
        st = os.stat(folder)
    except OSError:
        return None
    me = _owner_name(os.geteuid())
    if not _owner_ok(st):
        return UnsafeCARootError(folder, f"the folder belongs to {_owner_name(st.st_uid)}, not to {me}",
                                 "use your own CAROOT (unset DEVCERT_CAROOT, or point it at a folder you own)")
    if st.st_mode & 0o022:
        return UnsafeCARootError(folder, f"other users may write to it (mode {stat.S_IMODE(st.st_mode):04o}), so "
                                 f"they could swap the CA", f"run `chmod 700 {folder}` and check its CA is yours")
    for name in CA_FILES:
        path = folder / name
        try:
            fst = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(fst.st_mode):
            return UnsafeCARootError(path, "it is a symbolic link; the CA's files must be real files in CAROOT",
                                     "replace the link with the file it points to")
        if not _owner_ok(fst):
            return UnsafeCARootError(path, f"it belongs to {_owner_name(fst.st_uid)}, not to {me}",
                                     "use your own CAROOT, or make a new CA there")
        if fst.st_mode & 0o022:
            return UnsafeCARootError(path, f"other users may write to it (mode {stat.S_IMODE(fst.st_mode):04o})",
                                     f"run `chmod go-w {path}` and check the CA is yours")
    return None


def ca_weakness(cert: x509.Certificate, now: dt.datetime | None = None) -> str | None:
    """Why ``cert`` is not fit to be the CA (expired, not yet valid, weak key), or None."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if cert.not_valid_after_utc <= now:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    if cert.not_valid_before_utc > now:
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check the clock)"
    key = cert.public_key()
    problem = weakness(key, STRONG_CURVES)
    if problem == "rsa-bits":
        return f"its RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed"  # type: ignore[union-attr]
    if problem == "curve":
        return f"its key uses the curve {key.curve.name}; P-256 or stronger is needed"  # type: ignore[union-attr]
    if problem == "type":
        return f"its key type ({type(key).__name__}) is not ECDSA or RSA"
    return None


def read_regular(path: str | os.PathLike[str], what: str, limit: int = MAX_INPUT) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; else InputFileError.

    Opened non-blocking, then checked on the open descriptor, so a FIFO swapped in after a
    check still cannot block the read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except ValueError:  # an embedded NUL byte
        raise InputFileError(repr(str(path)), what, "the path contains a NUL byte") from None
    except OSError as err:
        raise InputFileError(path, what, _why(err)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
            raise InputFileError(path, what, f"it is {kind}, not a regular file")
        if st.st_size > limit:
            raise InputFileError(path, what, f"it is {st.st_size} bytes, more than the {limit} bytes allowed")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise InputFileError(path, what, f"it is more than the {limit} bytes allowed")
        return b"".join(chunks)
    except OSError as err:
        raise InputFileError(path, what, _why(err)) from None
    finally:
        os.close(fd)


def _why(err: OSError) -> str:
    return {
        errno.ENOENT: "it does not exist",
        errno.EACCES: "permission denied",
        errno.EISDIR: "it is a folder, not a file",
        errno.ENAMETOOLONG: "the file name is too long",
        errno.ELOOP: "too many symbolic links",
    }.get(err.errno or 0, err.strerror or str(err))
