"""Building leaf certificates: server, client and email, from a new key or a CSR, or self-signed.

The profile (docs/ARCHITECTURE.md): KeyUsage digitalSignature (plus keyEncipherment for RSA keys, which
RSA key exchange needs), ExtendedKeyUsage serverAuth for host names, clientAuth with
``client=True``, emailProtection for email names, a non-critical subjectAltName, SKI and AKI,
a random serial, and at most 825 days, Apple's limit for certificates under user-added roots.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import certs, inventory, keys
from .advice import Advice
from .certs import BACKDATE
from .errors import CAError, CSRError, DevcertError, OptionError, UsageError
from .files import PRIVATE, PUBLIC, ensure_private_dir, output_basename, write_together
from .layout import LEAVES_DIR, PENDING_DIR
from .lock import locked
from .names import Name, parse_names
from .safety import read_regular

if TYPE_CHECKING:
    import ssl

    from .ca import LocalCA

DEFAULT_DAYS = 820
MAX_DAYS = 825
#: WebTransport's serverCertificateHashes accepts only ECDSA certificates valid <= 14 days.
SELF_SIGNED_DEFAULT_DAYS = 14
#: Leaves for browsers: P-521 is valid but Chrome and Safari refuse it in TLS.
CSR_CURVES = ("secp256r1", "secp384r1")


def check_days(days: int | None, *, default: int = DEFAULT_DAYS) -> int:
    if days is None:
        return default
    if isinstance(days, bool) or not isinstance(days, int):
        raise UsageError(f"days must be a whole number of days (an int), not {type(days).__name__} {days!r}")
    if days < 1:
        raise OptionError("days", days, "a certificate must be valid for at least 1 day")
    if days > MAX_DAYS:
        raise OptionError("days", days, f"at most {MAX_DAYS} days, because Apple platforms (Safari, macOS, iOS) "
                          f"reject longer-lived certificates under a user-added root", fix="renew-later")
    return days


class Leaf:
    """An issued certificate and, unless it came from a CSR, its new private key."""

    def __init__(self, cert: x509.Certificate, key: keys.PrivateKey | None, names: list[Name],
                 ca_cert: x509.Certificate | None = None, warnings: list[Advice | str] | None = None):
        self.cert = cert
        self.key = key
        self.names = names
        self.ca_cert = ca_cert
        #: Things the user should know about these names (e.g. what a wildcard does not cover).
        #: Advice where a warning names a devcert command (the CLI words it: ``cli.messages.word``)
        self.warnings: list[Advice | str] = warnings if warnings is not None else []

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(keys.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        if self.key is None:
            raise UsageError("this certificate was issued for a CSR: its private key stays with its owner")
        return keys.private_pem(self.key)

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "x")

    @property
    def sha256(self) -> str:
        return certs.sha256(self.cert)

    def write(self, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str] | None = None) -> None:
        """Write the certificate (0644) and, when given a path, the key (0600), atomically.

        Both files change or neither does: a failure never leaves a new key beside an old
        certificate (:func:`devcert.files.write_together`).
        """
        write_together(self.files(cert_path, key_path))  # type: ignore[arg-type]

    def files(self, cert_path: str | os.PathLike[str],
              key_path: str | os.PathLike[str] | None = None) -> list[tuple[Path, bytes, int]]:
        """``(path, data, mode)`` of the key (0600, first) and the certificate, for write_together."""
        files: list[tuple[Path, bytes, int]] = []
        if key_path is not None:
            if Path(key_path).absolute() == Path(cert_path).absolute():
                # Writing both to one path would silently replace the new key with the certificate.
                raise UsageError(f"the certificate and the key would both be written to {Path(cert_path).absolute()}",
                                 fix="distinct-paths", api_fix=": give cert_path and key_path different paths")
            files.append((Path(key_path), self.key_pem, PRIVATE))
        files.append((Path(cert_path), self.cert_pem, PUBLIC))
        return files

    def pkcs12(self, password: bytes | str, friendly_name: bytes | str = b"devcert") -> bytes:
        """PKCS#12 with the key, the certificate and the CA, encrypted with AES-256 + PBKDF2.

        Modern encryption (not the RC2/3DES of old tools): OpenSSL 3, Java 11+, macOS and
        Windows 10+ read it.
        """
        # PKCS#12 support pulls in cryptography's serialization package (~12 ms, see keys.py),
        # which `devcert create` needs only with --p12-file.
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import pkcs12  # (see above)

        if isinstance(password, str):
            password = password.encode()
        if isinstance(friendly_name, str):
            friendly_name = friendly_name.encode()
        if not password:
            raise UsageError("a PKCS#12 file needs a password")
        encryption = (
            keys.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(100_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password)
        )
        if self.key is None:
            raise UsageError("a certificate issued for a CSR has no key here to put in a PKCS#12 file")
        return pkcs12.serialize_key_and_certificates(
            friendly_name, self.key, self.cert, [self.ca_cert] if self.ca_cert else None, encryption
        )

    def server_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for servers that presents this certificate."""
        import ssl  # ~8 ms, and tempfile ~5 ms: only the Python API's servers need them
        import tempfile

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # load_cert_chain reads only files: use a private temporary folder, gone on return.
        with tempfile.TemporaryDirectory(prefix="devcert-") as tmp:
            cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            self.write(cert_file, key_file)
            ctx.load_cert_chain(cert_file, key_file)
        return ctx

    def __repr__(self) -> str:
        return f"<Leaf {', '.join(n.value for n in self.names)} until {self.not_after:%Y-%m-%d}>"


@functools.lru_cache(maxsize=4)
def _subject(organization: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, certs.whoami()),
    ])


_LEAF_BASIC_CONSTRAINTS = x509.BasicConstraints(ca=False, path_length=None)


@functools.lru_cache(maxsize=2)
def _leaf_key_usage(is_rsa: bool) -> x509.KeyUsage:
    # keyEncipherment only for RSA: RSA key exchange encrypts to the key; ECDSA keys only sign.
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=is_rsa,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )


def _general_name(name: Name) -> x509.GeneralName:
    if name.kind == "dns":
        return x509.DNSName(name.value)
    if name.kind == "ip":
        return x509.IPAddress(name.ip())
    if name.kind == "email":
        return x509.RFC822Name(name.value)
    return x509.UniformResourceIdentifier(name.value)


def _warnings(names: list[Name]) -> list[Advice | str]:
    out = []
    for name in names:
        if name.is_wildcard:
            base = name.value[2:]
            out.append(
                f"{name.value} covers one label only: it matches a.{base} but not a.b.{base}, "
                f"nor {base} itself (add {base} if you need it)"
            )
    return out


def _build(
    names: list[Name],
    public_key: keys.PublicKey,
    *,
    issuer: x509.Name,
    signing_key: keys.PrivateKey,
    issuer_ski: x509.SubjectKeyIdentifier | None,
    client: bool,
    days: int,
    limit: dt.datetime | None = None,
) -> x509.Certificate:
    if not names:
        raise UsageError("a certificate needs at least one name")
    ekus = []
    if any(n.kind in ("dns", "ip", "uri") for n in names):
        ekus.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        ekus.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if any(n.kind == "email" for n in names):
        ekus.append(ExtendedKeyUsageOID.EMAIL_PROTECTION)
    is_rsa = keys.key_type_of(public_key) == "rsa"
    not_before = certs.now() - BACKDATE
    subject = _subject("devcert development certificate")
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer if issuer_ski is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        # Counted from notBefore, so the whole span never exceeds MAX_DAYS; never past the CA's end.
        .not_valid_after(min(not_before + dt.timedelta(days=days), limit) if limit else not_before + dt.timedelta(days=days))
        .add_extension(_LEAF_BASIC_CONSTRAINTS, critical=True)
        .add_extension(_leaf_key_usage(is_rsa), critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(ski, critical=False)
    )
    aki = (
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
        if issuer_ski is not None
        else x509.AuthorityKeyIdentifier(ski.digest, None, None)
    )
    builder = builder.add_extension(aki, critical=False)
    return builder.sign(signing_key, keys.signature_hash(signing_key))


def _signing_key(ca: LocalCA) -> keys.PrivateKey:
    if ca.key is None:
        raise CAError(f"the CA key {ca.key_path} is missing, so this CA cannot sign; restore it or make a new CA",
                      fix="with-replace-ca")
    return ca.key


def _ca_limit(ca: LocalCA, days: int) -> tuple[dt.datetime, list[Advice | str]]:
    """The latest end a leaf of ``ca`` may have, and a warning when ``days`` would pass it.

    A leaf that outlives its CA fails in every client on the day the CA expires, with an error
    that names the CA, not the leaf; cut it to the CA's end and say so instead.
    """
    end = ca.cert.not_valid_after_utc
    now = certs.now()
    if end <= now:
        raise CAError(f"the CA expired on {end:%Y-%m-%d}, so it cannot sign; replace it everywhere", fix="with-rotate-ca")
    if now + dt.timedelta(days=days) <= end:
        return end, []
    return end, [Advice("the CA expires on {end}, so this certificate is valid only until then (not {days} days); "
                        "`{rotate_ca}` makes a new CA", {"end": f"{end:%Y-%m-%d}", "days": str(days)})]


def issue_leaf(ca: LocalCA, names: list[Name], *, client: bool = False, key_type: str = "ecdsa",
               days: int | None = None) -> Leaf:
    """A new key and a certificate for ``names`` signed by ``ca`` (never valid past the CA's end)."""
    days = check_days(days)
    signing_key = _signing_key(ca)
    ca.check_permitted(names)
    limit, cut = _ca_limit(ca, days)
    key = keys.generate(key_type)
    cert = _build(names, key.public_key(), issuer=ca.cert.subject, signing_key=signing_key,
                  issuer_ski=ca.ski, client=client, days=days, limit=limit)
    return Leaf(cert, key, names, ca.cert, _warnings(names) + cut)


def issue_self_signed(names: list[Name], *, client: bool = False, key_type: str = "ecdsa",
                      days: int | None = None) -> Leaf:
    """A certificate signed by its own key, trusted by nothing but its hash.

    For the cases that need one, such as WebTransport's ``serverCertificateHashes``, which
    wants ECDSA and at most 14 days (the default here).
    """
    days = check_days(days, default=SELF_SIGNED_DEFAULT_DAYS)
    key = keys.generate(key_type)
    cert = _build(names, key.public_key(), issuer=x509.Name([]), signing_key=key, issuer_ski=None,
                  client=client, days=days)
    leaf = Leaf(cert, key, names, None, _warnings(names))
    if key_type != "ecdsa" or days > 14:
        leaf.warnings.append("WebTransport serverCertificateHashes accepts only ECDSA certificates valid 14 days or less")
    return leaf


def load_csr(data: bytes | str) -> x509.CertificateSigningRequest:
    """A CSR from PEM (bytes or str) or DER bytes; to read a file, pass ``Path(...).read_bytes()``."""
    if isinstance(data, str):
        data = data.encode("ascii", errors="replace")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CSRError(f"the CSR must be PEM or DER bytes (or PEM text), not {type(data).__name__}"
                       + (": pass path.read_bytes()" if isinstance(data, os.PathLike) else ""))
    data = bytes(data)
    try:
        if b"-----BEGIN" in data:
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except ValueError:
        raise CSRError("the CSR is not a valid PEM or DER certificate signing request") from None
    try:
        valid = csr.is_signature_valid
    except Exception:
        valid = False
    if not valid:
        raise CSRError("the CSR's signature does not verify: it was altered or not signed by its key")
    return csr


def csr_names(csr: x509.CertificateSigningRequest) -> list[Name]:
    """The names a CSR asks for (its subjectAltName, else its CN), validated as user input."""
    texts: list[str] = []
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError:
        raise CSRError("the CSR's extensions are malformed") from None
    if san is not None:
        for gn in san:
            if isinstance(gn, (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier)):
                texts.append(gn.value)
            elif isinstance(gn, x509.IPAddress):
                texts.append(str(gn.value))
            else:
                raise CSRError(f"the CSR asks for a name of a kind devcert does not issue: {gn}")
    else:
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        texts = [str(cns[0].value)] if cns else []
    if not texts:
        raise CSRError("the CSR asks for no names (no subjectAltName and no common name)")
    return parse_names(texts)


def sign_csr(ca: LocalCA, data: bytes | str, *, client: bool = False, days: int | None = None) -> Leaf:
    days = check_days(days)
    signing_key = _signing_key(ca)
    csr = load_csr(data)
    names = csr_names(csr)
    public_key = csr.public_key()
    problem = keys.weakness(public_key, CSR_CURVES)
    if problem == "rsa-bits":
        raise CSRError(f"the CSR's RSA key has {public_key.key_size} bits; "  # type: ignore[union-attr]
                       f"at least {keys.MIN_RSA_BITS} are needed")
    if problem == "curve":
        raise CSRError(f"the CSR's curve {public_key.curve.name} is not accepted by browsers; "  # type: ignore[union-attr]
                       f"use P-256 or P-384")
    if problem == "type":
        raise CSRError(f"the CSR's key type ({type(public_key).__name__}) is not supported; use ECDSA or RSA")
    ca.check_permitted(names)
    limit, cut = _ca_limit(ca, days)
    cert = _build(names, public_key, issuer=ca.cert.subject, signing_key=signing_key,  # type: ignore[arg-type]
                  issuer_ski=ca.ski, client=client, days=days, limit=limit)
    return Leaf(cert, None, names, ca.cert, _warnings(names) + cut)


# -- keeping a leaf on disk fresh (serve-wss, snippet, sync, renew) ------------------------

RENEW_BEFORE_DAYS = 30


class Ensured(NamedTuple):
    """What :func:`ensure_leaf` did: ``action`` is ``"kept"``, ``"created"`` or ``"renewed"``."""

    cert_path: Path
    key_path: Path
    action: str
    reason: str = ""
    leaf: Leaf | None = None


def leaf_problem(ca: LocalCA, cert_path: Path, key_path: Path, names: list[Name], *, client: bool = False,
                 min_days: int = RENEW_BEFORE_DAYS, key_type: str | None = None) -> str | None:
    """Why the certificate at ``cert_path`` must be (re)issued, or None if it is fine.

    Fine means: both files exist, the key matches, it is signed by ``ca``, it carries exactly
    ``names`` (in any order) and clientAuth iff ``client``, and it is valid for ``min_days``
    more days.
    """
    if not cert_path.exists():
        return "missing"
    if not key_path.exists():
        return "key missing"
    try:
        # Only regular files of sane size are read: a FIFO or /dev/zero at an output path must
        # not hang or exhaust devcert (the write that follows refuses them with the reason).
        cert = x509.load_pem_x509_certificate(read_regular(cert_path, "the certificate"))
        key = keys.load_pem_private_key(read_regular(key_path, "the key"), None)
    except (ValueError, TypeError, OSError, DevcertError):
        return "unreadable"
    if key.public_key() != cert.public_key():
        return "key does not match"
    if cert.issuer != ca.cert.subject:
        return "signed by another CA"
    try:
        cert.verify_directly_issued_by(ca.cert)
    except Exception:
        return "signed by another CA"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have = {(type(g).__name__, str(g.value)) for g in san}
    except x509.ExtensionNotFound:
        have = set()
    want = {(type(_general_name(n)).__name__, str(_general_name(n).value)) for n in names}
    if have != want:
        return "names changed"
    try:
        ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    if (ExtendedKeyUsageOID.CLIENT_AUTH in ekus) != client:
        return "client option changed"
    now = certs.now()
    if certs.expired(cert.not_valid_after_utc, now):
        return "expired"
    if cert.not_valid_after_utc - now < dt.timedelta(days=min_days):
        return f"expires in {certs.days_left(cert.not_valid_after_utc, now)} days"
    if key_type is not None and keys.key_type_of(cert.public_key()) != key_type:  # type: ignore[arg-type]
        return f"key type changed to {key_type}"
    return None


def ensure_leaf(ca: LocalCA, names: list[Name], cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str],
                *, client: bool = False, key_type: str = "ecdsa", days: int | None = None,
                min_days: int = RENEW_BEFORE_DAYS, dry_run: bool = False, record: bool = False) -> Ensured:
    """Make sure ``cert_path``/``key_path`` hold a good leaf for ``names``; reissue if not.

    Returns what was done. With ``dry_run`` nothing is written; ``action`` says what would be.
    The check and the write happen under the CAROOT lock, so concurrent callers (8 ``sync``
    runs, serve-wss threads) issue once and never interleave a key with another's certificate.
    ``record`` adds the leaf to the inventory in the same change.
    """
    cert_path, key_path = Path(cert_path).absolute(), Path(key_path).absolute()
    guard = locked(ca.path) if ca.path is not None and not dry_run else contextlib.nullcontext()
    with guard:
        problem = leaf_problem(ca, cert_path, key_path, names, client=client, min_days=min_days, key_type=key_type)
        if problem is None:
            return Ensured(cert_path, key_path, "kept")
        action = "created" if problem == "missing" else "renewed"
        if dry_run:
            return Ensured(cert_path, key_path, action, problem)
        leaf = issue_leaf(ca, names, client=client, key_type=key_type, days=days)
        files = leaf.files(cert_path, key_path)
        if record:
            leaf.warnings += inventory.save(ca, leaf, files, cert_path=cert_path, key_path=key_path, days=days)
        else:
            write_together(files, journal_dir=ca.path / PENDING_DIR if ca.path is not None else None)
        return Ensured(cert_path, key_path, action, problem, leaf)


def managed_leaf_paths(ca: LocalCA, names: list[Name], client: bool = False) -> tuple[Path, Path]:
    """Where devcert keeps leaves it manages itself (serve-wss, snippet): CAROOT/leaves/."""
    if ca.path is None:
        raise UsageError("an in-memory CA has no folder to keep certificates in")
    folder = ensure_private_dir(ca.path / LEAVES_DIR)
    stem = output_basename([n.value for n in names], client)
    return folder / f"{stem}.pem", folder / f"{stem}-key.pem"
