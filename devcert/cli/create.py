"""``devcert create``: a certificate and key for the names given, signed by the local CA.

``devcert create`` is the command people run most, so it starts without typer: typer builds a
pydantic adapter for every option, and with typer's own import that is ~100 ms, more than the
whole certificate costs. :func:`parse_create` understands exactly the options of the typer
command (kept equal by a test) and returns ``None`` for anything else (``--help``, an unknown
option, a value that is not a number), which hands the command line to typer: help, errors and
prompts look the same either way. :func:`register` declares the typer command, for that path.
"""

import os
import sys
from pathlib import Path
from typing import Any

from .. import inventory
from ..ca import LocalCA, caroot, check_output, open_folder
from ..errors import InputFileError, UsageError
from ..files import PRIVATE, PUBLIC, default_output_paths, write_together
from ..issue import Leaf, issue_self_signed
from ..keys import check_key_type
from ..lock import locked
from ..names import parse_names
from ..safety import read_regular
from .messages import word
from .output import echo, print_json, warn
from .shared import load_ca_for_issuing, not_trusted_hint

#: option -> (keyword of :func:`run_create`, converter); converter None means a flag. File options
#: stay strings so a trailing "/" (a folder, refused) is not lost to Path().
OPTIONS: dict[str, tuple[str, Any]] = {
    "--cert-file": ("cert_file", str),
    "--key-file": ("key_file", str),
    "--p12-file": ("p12_file", str),
    "--p12-password": ("p12_password", str),
    "--p12-password-file": ("p12_password_file", str),
    "--client": ("client", None),
    "--key-type": ("key_type", str),
    "--days": ("days", int),
    "--csr": ("csr", str),
    "--self-signed": ("self_signed", None),
    "--json": ("json_output", None),
}


def parse_create(args: list[str]) -> dict[str, Any] | None:
    """Keyword arguments for :func:`run_create`, or None to use typer."""
    values: dict[str, Any] = {"names": []}
    i = 0
    only_names = False
    while i < len(args):
        arg = args[i]
        i += 1
        if only_names or not arg.startswith("-") or arg == "-":
            values["names"].append(arg)
            continue
        if arg == "--":
            only_names = True
            continue
        option, eq, inline = arg.partition("=")
        spec = OPTIONS.get(option)
        if spec is None:
            return None
        keyword, convert = spec
        if convert is None:
            if eq:
                return None
            values[keyword] = True
            continue
        if eq:
            raw = inline
        elif i < len(args):
            raw = args[i]
            i += 1
        else:
            return None
        try:
            values[keyword] = convert(raw)
        except ValueError:
            return None
    return values


def _abs(path: Path | None) -> str | None:
    return str(path.absolute()) if path is not None else None


#: The environment variable that gives the PKCS#12 password without putting it on a command
#: line, where `ps` shows it to every user of the machine.
P12_PASSWORD_ENV = "DEVCERT_P12_PASSWORD"


def _p12_password(given: str | None, password_file: str | None = None) -> str:
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
        import getpass  # deferred: only this prompt needs it (with termios, ~1.5 ms of every create)

        password = getpass.getpass("Password for the PKCS#12 file: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UsageError("the two passwords differ")
    if not password:
        raise UsageError("the PKCS#12 password cannot be empty")
    return password


def _read_password_file(name: str) -> str:
    """The first line of ``name`` (``-``: standard input), without its line break."""
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
    if value is None:
        return None
    try:
        folder = not value or value.endswith(("/", "\\")) or Path(value).is_dir()
    except OSError as err:  # e.g. ENAMETOOLONG
        raise UsageError(f"{option} {value[:80]}{'...' if len(value) > 80 else ''}: {err.strerror}") from None
    if folder:
        raise UsageError(f"{option} {value!r}: give a file name, not a folder")
    return Path(value)


class _Request:
    """``create``'s options, checked and read before any CA is created or file written."""

    def __init__(self, names: list[str], cert_file: str | None, key_file: str | None, p12_file: str | None,
                 p12_password: str | None, p12_password_file: str | None, client: bool, key_type: str,
                 days: int | None, csr: str | None, self_signed: bool) -> None:
        check_key_type(key_type)
        self.cert_file, self.key_file = _path(cert_file, "--cert-file"), _path(key_file, "--key-file")
        self.p12_file = _path(p12_file, "--p12-file")
        if csr is not None and names:
            raise UsageError("--csr takes its names from the CSR: give either names or --csr")
        if csr is not None and self_signed:
            raise UsageError("--csr and --self-signed cannot be combined")
        if csr is not None and (self.p12_file or self.key_file or key_type != "ecdsa"):
            raise UsageError("with --csr the key is yours, not made here: --key-file, --key-type and --p12-file do not apply")
        if self.p12_file is None and (p12_password is not None or p12_password_file is not None):
            raise UsageError("--p12-password and --p12-password-file need --p12-file")
        self.folder = caroot()
        for given in (self.cert_file, self.key_file, self.p12_file):
            if given is not None:
                check_output(self.folder, given)
        self.client, self.key_type, self.days, self.self_signed = client, key_type, days, self_signed
        # Asked (or refused) before anything is created or written.
        self.password = _p12_password(p12_password, p12_password_file) if self.p12_file is not None else None
        self.csr_data = None
        if csr is not None:
            try:
                self.csr_data = read_regular(csr, "the CSR", limit=1024 * 1024)
            except InputFileError as err:
                raise UsageError(str(err)) from None
        self.names = parse_names(names) if csr is None else []  # bad names fail before any CA is created

    def output_files(self, leaf: Leaf) -> tuple[list[tuple[Path, bytes, int]], dict[str, str | None]]:
        """The files to write for ``leaf`` and, for the report, their absolute paths."""
        written: dict[str, str | None] = {"cert": None, "key": None, "p12": None}
        if self.p12_file is not None:
            assert self.password is not None
            files = [(self.p12_file, leaf.pkcs12(self.password.encode()), PRIVATE)]
            written["p12"] = _abs(self.p12_file)
            if self.cert_file is not None:
                files.append((self.cert_file, leaf.cert_pem, PUBLIC))
                written["cert"] = _abs(self.cert_file)
            return files, written
        default_cert, default_key, _ = default_output_paths([n.value for n in leaf.names], self.client)
        out_cert = self.cert_file or default_cert
        out_key = None if self.csr_data is not None else (self.key_file or default_key)
        for path in (out_cert, out_key):
            if path is not None:
                check_output(self.folder, path)
        written["cert"], written["key"] = _abs(out_cert), _abs(out_key)
        return leaf.files(out_cert, out_key), written

    def issue_and_write(self) -> tuple[Leaf, LocalCA | None, dict[str, str | None], list[str]]:
        """Issue the certificate, write its files (and its inventory entry): ``(leaf, CA or None
        when self-signed, written paths, notes)``."""
        if self.self_signed:
            leaf = issue_self_signed(self.names, client=self.client, key_type=self.key_type, days=self.days)
            files, written = self.output_files(leaf)
            write_together(files)
            return leaf, None, written, []
        # Held from loading the CA until the files and their inventory entry are written: no
        # rotation or `ca init --force` can replace the CA in between, and concurrent creates
        # of the same files take turns.
        open_folder(self.folder, create=True)
        with locked(self.folder):
            ca = load_ca_for_issuing()
            if self.csr_data is not None:
                leaf = ca.sign_csr(self.csr_data, client=self.client, days=self.days)
            else:
                leaf = ca.issue(*(n.value for n in self.names), client=self.client, key_type=self.key_type,
                                days=self.days)
            files, written = self.output_files(leaf)
            notes = inventory.save(ca, leaf, files, cert_path=written["cert"] or written["p12"],
                                   key_path=written["key"], p12_path=written["p12"], days=self.days)
        return leaf, ca, written, notes


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
    """The command itself, called by typer's command below or straight from :func:`parse_create`'s result."""
    request = _Request(names, cert_file, key_file, p12_file, p12_password, p12_password_file, client, key_type,
                       days, csr, self_signed)
    leaf, ca, written, notes = request.issue_and_write()
    warnings = [word(w) for w in leaf.warnings]  # in the CLI's words
    for message in warnings + notes:
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
            "warnings": warnings,
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


def register(app: Any) -> None:
    """Declare the typer command on ``app`` (called by :func:`devcert.cli.application.load_commands`).

    A function, not module-level code, so the fast path never imports typer (measured: 34 ms of
    a 75 ms `devcert create`). This module does not use ``from __future__ import annotations``:
    the annotations below are evaluated here, where ``typer`` is a local name.
    """
    from typing import Annotated, Optional

    import typer

    from .options import JsonOption, examples, whole_number

    @app.command(
        epilog=examples(
            "devcert create localhost 127.0.0.1 ::1   # ./localhost+2.pem and ./localhost+2-key.pem",
            "devcert create '*.app.test' app.test     # ./_wildcard.app.test+1.pem",
            "devcert create --client alice@app.test   # a client / S/MIME certificate",
            "devcert create --csr req.csr             # sign a CSR; the key stays with you",
        )
    )
    def create(
        names: Annotated[Optional[list[str]], typer.Argument(help="Host names, wildcards (*.app.test), IPs, emails or URIs.", show_default=False, metavar="NAMES")] = None,
        cert_file: Annotated[Optional[str], typer.Option("--cert-file", help="Where to write the certificate (default: ./NAME.pem).", metavar="CERT_FILE")] = None,
        key_file: Annotated[Optional[str], typer.Option("--key-file", help="Where to write the key (default: ./NAME-key.pem).", metavar="KEY_FILE")] = None,
        p12_file: Annotated[Optional[str], typer.Option("--p12-file", help="Write a PKCS#12 file (key, cert, CA) instead of PEM files.", metavar="P12_FILE")] = None,
        p12_password: Annotated[Optional[str], typer.Option("--p12-password", help="Password for --p12-file. Visible to other users in `ps`: prefer --p12-password-file or $DEVCERT_P12_PASSWORD (else it is asked for).", metavar="P12_PASSWORD")] = None,
        p12_password_file: Annotated[Optional[str], typer.Option("--p12-password-file", help="Read the --p12-file password from the first line of this file (- for standard input).", metavar="P12_PASSWORD_FILE")] = None,
        client: Annotated[bool, typer.Option("--client", help="Also allow client authentication (mTLS).")] = False,
        key_type: Annotated[str, typer.Option("--key-type", help="ecdsa (P-256, default) or rsa (2048).", metavar="KEY_TYPE")] = "ecdsa",
        days: Annotated[Optional[int], typer.Option("--days", help="Validity in days (default 820, at most 825; 14 with --self-signed).", show_default=False, metavar="DAYS", parser=whole_number)] = None,
        csr: Annotated[Optional[str], typer.Option("--csr", help="Sign this CSR (PEM or DER) instead of making a key.", metavar="CSR")] = None,
        self_signed: Annotated[bool, typer.Option("--self-signed", help="Make a CA-less certificate (e.g. for WebTransport hashes).")] = False,
        json_output: JsonOption = False,
    ) -> None:
        """Create a certificate and key for NAMES, signed by the local CA.

        The CA is created in CAROOT on first use. Files are written to the current folder with
        mkcert's names unless --cert-file / --key-file / --p12-file say otherwise.
        """
        run_create(names=names or [], cert_file=cert_file, key_file=key_file, p12_file=p12_file,
                   p12_password=p12_password, p12_password_file=p12_password_file, client=client, key_type=key_type, days=days, csr=csr,
                   self_signed=self_signed, json_output=json_output)
