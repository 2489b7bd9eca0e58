"""``devcert create``: what it does once its command line is parsed (by typer or cli.fast)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..ca import LocalCA
from . import echo, print_json, warn


def _abs(path: Path | None) -> str | None:
    return str(path.absolute()) if path is not None else None


def load_ca_for_issuing() -> LocalCA:
    """The CA in CAROOT, created on first need with a line that says so."""
    from ..ca import caroot

    global _install_advised
    ca = LocalCA.load_or_create()
    if ca.created:
        echo(f"Created a new local CA in {caroot()} ({ca.common_name}).", err=True)
        echo("Run `devcert install` to make browsers and tools trust it.", err=True)
        _install_advised = True
    return ca


#: Set once the "Run `devcert install`" line was printed, so a command says it once.
_install_advised = False


def not_trusted_hint(ca: LocalCA) -> None:
    """One line when the CA is not trusted by any store here, as mkcert does; else nothing."""
    if _install_advised:
        return
    try:
        from ..trust import trusted_anywhere
    except ImportError:
        return
    try:
        trusted = trusted_anywhere(ca)
    except Exception:  # a hint must never break issuing
        return
    if not trusted:
        echo("Note: the local CA is not trusted on this machine yet; run `devcert install` once.", err=True)


#: The environment variable that gives the PKCS#12 password without putting it on a command
#: line, where `ps` shows it to every user of the machine.
P12_PASSWORD_ENV = "DEVCERT_P12_PASSWORD"


def _p12_password(given: str | None, password_file: str | None = None) -> str:
    from ..errors import UsageError

    if given is not None and password_file is not None:
        raise UsageError("give the PKCS#12 password one way: --p12-password or --p12-password-file")
    if given is not None:
        password = given
    elif password_file is not None:
        password = _read_password_file(password_file)
    elif os.environ.get(P12_PASSWORD_ENV):
        password = os.environ[P12_PASSWORD_ENV]
    else:
        if not sys.stdin.isatty():
            raise UsageError(f"--p12-file needs a password: set {P12_PASSWORD_ENV}, give --p12-password-file FILE "
                             f"(- for standard input), or run in a terminal to be asked")
        import getpass

        password = getpass.getpass("Password for the PKCS#12 file: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UsageError("the two passwords differ")
    if not password:
        raise UsageError("the PKCS#12 password cannot be empty")
    return password


def _read_password_file(name: str) -> str:
    """The first line of ``name`` (``-``: standard input), without its line break."""
    from ..errors import InputFileError, UsageError
    from ..safety import read_regular

    if name == "-":
        data = sys.stdin.buffer.read(64 * 1024)
    else:
        try:
            data = read_regular(name, "the password file", limit=64 * 1024)
        except InputFileError as err:
            raise UsageError(f"--p12-password-file: {err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("--p12-password-file: the password is not UTF-8 text") from None
    return text.splitlines()[0] if text.splitlines() else ""


def _path(value: str | None, option: str) -> Path | None:
    from ..errors import UsageError

    if value is None:
        return None
    try:
        folder = not value or value.endswith(("/", "\\")) or Path(value).is_dir()
    except OSError as err:  # e.g. ENAMETOOLONG
        raise UsageError(f"{option} {value[:80]}{'...' if len(value) > 80 else ''}: {err.strerror}") from None
    if folder:
        raise UsageError(f"{option} {value!r}: give a file name, not a folder")
    return Path(value)


def run_create(
    names: list[str],
    cert_file: str | None = None,
    key_file: str | None = None,
    p12_file: str | None = None,
    p12_password: str | None = None,
    p12_password_file: str | None = None,
    client: bool = False,
    key_type: str = "ecdsa",
    days: int | None = None,
    csr: str | None = None,
    self_signed: bool = False,
    json_output: bool = False,
) -> None:
    from .. import inventory
    from ..ca import caroot, check_output, open_folder
    from ..errors import InputFileError, UsageError
    from ..files import PRIVATE, PUBLIC, default_output_paths, write_together
    from ..keys import check_key_type
    from ..lock import locked
    from ..names import parse_names
    from ..safety import read_regular

    check_key_type(key_type)
    cert_file, key_file = _path(cert_file, "--cert-file"), _path(key_file, "--key-file")
    p12_file = _path(p12_file, "--p12-file")
    if csr is not None and names:
        raise UsageError("--csr takes its names from the CSR: give either names or --csr")
    if csr is not None and self_signed:
        raise UsageError("--csr and --self-signed cannot be combined")
    if csr is not None and (p12_file or key_file or key_type != "ecdsa"):
        raise UsageError("with --csr the key is yours, not made here: --key-file, --key-type and --p12-file do not apply")
    if p12_file is None and (p12_password is not None or p12_password_file is not None):
        raise UsageError("--p12-password and --p12-password-file need --p12-file")
    folder = caroot()
    for given in (cert_file, key_file, p12_file):
        if given is not None:
            check_output(folder, given)
    # Asked (or refused) before anything is created or written.
    password = _p12_password(p12_password, p12_password_file) if p12_file is not None else None
    csr_data = None
    if csr is not None:
        try:
            csr_data = read_regular(csr, "the CSR", limit=1024 * 1024)
        except InputFileError as err:
            raise UsageError(str(err)) from None
    parsed = parse_names(names) if csr is None else []  # bad names fail before any CA is created

    def output_files(leaf: Any) -> tuple[list[tuple[Path, bytes, int]], dict[str, str | None]]:
        default_cert, default_key, _ = default_output_paths([n.value for n in leaf.names], client)
        written: dict[str, str | None] = {"cert": None, "key": None, "p12": None}
        if p12_file is not None:
            assert password is not None
            files = [(p12_file, leaf.pkcs12(password.encode()), PRIVATE)]
            written["p12"] = _abs(p12_file)
            if cert_file is not None:
                files.append((cert_file, leaf.cert_pem, PUBLIC))
                written["cert"] = _abs(cert_file)
            return files, written
        out_cert = cert_file or default_cert
        out_key = None if csr is not None else (key_file or default_key)
        for path in (out_cert, out_key):
            if path is not None:
                check_output(folder, path)
        written["cert"], written["key"] = _abs(out_cert), _abs(out_key)
        return leaf.files(out_cert, out_key), written

    ca = None
    if self_signed:
        from ..issue import issue_self_signed

        leaf = issue_self_signed(parsed, client=client, key_type=key_type, days=days)
        files, written = output_files(leaf)
        write_together(files)
        notes: list[str] = []
    else:
        # Held from loading the CA until the files and their inventory entry are written: no
        # rotation or `ca init --force` can replace the CA in between, and concurrent creates
        # of the same files take turns.
        open_folder(folder, create=True)
        with locked(folder):
            ca = load_ca_for_issuing()
            if csr_data is not None:
                leaf = ca.sign_csr(csr_data, client=client, days=days)
            else:
                leaf = ca.issue(*(n.value for n in parsed), client=client, key_type=key_type, days=days)
            files, written = output_files(leaf)
            notes = inventory.save(ca, leaf, files, cert_path=written["cert"] or written["p12"],
                                   key_path=written["key"], p12_path=written["p12"], days=days)
    for message in leaf.warnings + notes:
        warn(message)

    if json_output:
        print_json({
            **written,
            "ca": _abs(ca.cert_path) if ca is not None and ca.cert_path else None,
            "names": [n.value for n in leaf.names],
            "not_after": leaf.not_after.isoformat(),
            "serial": leaf.serial,
            "sha256": leaf.sha256,
            "self_signed": self_signed,
            "warnings": leaf.warnings,
        })
        return
    kind = "client certificate" if client else "certificate"
    echo(f"Created a {kind} for: {', '.join(n.value for n in leaf.names)}")
    if written["cert"]:
        echo(f"  certificate: {written['cert']}")
    if written["key"]:
        echo(f"  key:         {written['key']}")
    if written["p12"]:
        echo(f"  PKCS#12:     {written['p12']}")
    echo(f"  expires:     {leaf.not_after:%Y-%m-%d}")
    if self_signed:
        echo(f"  SHA-256:     {leaf.sha256}")
    elif ca is not None:
        not_trusted_hint(ca)
