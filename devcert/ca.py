"""The local certificate authority: where it lives, how it is made, loaded and constrained.

The CA is two files in CAROOT, named as mkcert names them so habits and tools carry over:
``rootCA.pem`` (the certificate, safe to share) and ``rootCA-key.pem`` (the key, 0600). By
default the CA carries a critical NameConstraints extension that permits only development
names and private addresses, so a leaked key cannot be used against real sites.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import certs, keys
from .certs import BACKDATE
from .errors import (CAError, CAMissingError, FileWriteError, InputFileError, NameNotPermittedError, OptionConflictError,
                     OptionError, UsageError)
from .files import PRIVATE, PUBLIC, ensure_private_dir, pending_journals, recover, write_together
from .issue import Leaf, issue_leaf
from .issue import sign_csr as sign_csr_with
# The CAROOT layout is ca's public vocabulary too (`from devcert.ca import caroot, CERT_FILE`).
from .layout import CERT_FILE, KEY_FILE, NEXT_DIR, OLD_DIR, PENDING_DIR, ROTATION_FILE, caroot
from .lock import is_held, locked
from .names import Name, is_ip_literal, parse_dns_name, parse_names
from .safety import caroot_problem, read_regular

if TYPE_CHECKING:
    import ssl

__all__ = ["BACKDATE", "CERT_FILE", "KEY_FILE", "NEXT_DIR", "OLD_DIR", "PENDING_DIR", "ROTATION_FILE", "CA_DAYS",
           "Constraints", "LocalCA", "PROFILES", "DEFAULT_PROFILE", "backup", "caroot", "check_output", "check_profile",
           "open_folder"]

CA_DAYS = 3650

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

#: Names reserved for development and private use (RFC 2606, RFC 6761, RFC 6762, RFC 8375,
#: and ICANN's reservation of .internal). A dNSName subtree "test" covers test and *.test;
#: pkilint rejects the leading-dot form in dNSName constraints, so none is used there.
DEFAULT_DNS: tuple[str, ...] = ("localhost", "test", "example", "invalid", "local", "internal", "home.arpa")
#: Loopback, RFC 1918, link-local, and IPv6 unique-local / link-local ranges.
DEFAULT_IPS: tuple[str, ...] = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "169.254.0.0/16", "fc00::/7", "fe80::/10",
)


#: The constraint profiles (``ca init --profile``). Which clients evaluate which constraint
#: types was measured with real handshakes (tests/test_stacks.py):
#:
#: - ``dns`` (default): permitted dNSName subtrees only. Every TLS stack that enforces name
#:   constraints evaluates DNS ones (OpenSSL, GnuTLS, Go, NSS, BoringSSL in Bun and Envoy,
#:   rustls/webpki in Deno; Java's PKIX ignores a trust anchor's constraints altogether), and
#:   leaves with IP, email or URI names pass everywhere, because a constraint type the CA does
#:   not use constrains nothing. A leaked key still cannot sign for a public DNS name; it could
#:   sign for any IP address, email address or URI.
#: - ``strict``: DNS, IP (private ranges), email and URI subtrees. Also protects public IPs,
#:   emails and URIs, but BoringSSL refuses every leaf with an IP address under IP constraints
#:   (UNSUPPORTED_CONSTRAINT_TYPE) and webpki every leaf with an email or URI name under
#:   email/URI constraints (NameConstraintViolation).
PROFILES: dict[str, str] = {
    "dns": "DNS names constrained; IP addresses, emails and URIs are not (every TLS stack accepts its leaves)",
    "strict": "DNS names, IP ranges, emails and URIs constrained (Bun/BoringSSL refuses IP leaves, "
              "Deno/rustls refuses email and URI leaves)",
}
DEFAULT_PROFILE = "dns"


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise UsageError(f"unknown constraint profile {profile!r}: use 'dns' (the default) or 'strict'")
    return profile


class Constraints(NamedTuple):
    """The CA's permitted name subtrees: DNS names (each with its subdomains) and, in the
    ``strict`` profile, IP ranges (and email / URI subtrees derived from the DNS names)."""

    dns: tuple[str, ...] = DEFAULT_DNS
    ips: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in DEFAULT_IPS)
    profile: str = DEFAULT_PROFILE

    @classmethod
    def default(cls, permit: Iterable[str] = (), profile: str = DEFAULT_PROFILE) -> Constraints:
        """The default development subtrees of ``profile``, widened by each ``permit`` (a DNS name or CIDR)."""
        base = cls(profile=check_profile(profile))
        return base.widened(permit)

    def widened(self, permit: Iterable[str] | str) -> Constraints:
        dns = list(self.dns)
        ips = list(self.ips)
        for item in [permit] if isinstance(permit, str) else permit:
            item = item.strip()
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                net = None
            if net is not None:
                if self.profile != "strict":
                    raise OptionError("permit", item, f"a CA of the {self.profile!r} profile does not constrain IP "
                                      f"addresses, so every range is allowed already; IP ranges are permitted one "
                                      f"by one only in the 'strict' profile")
                if net not in ips:
                    ips.append(net)
                continue
            try:
                name = parse_dns_name(item.lstrip("."))
            except UsageError as err:
                raise OptionError("permit", item, f"give a DNS name or a CIDR range ({err})") from None
            if name not in dns:
                dns.append(name)
        return Constraints(tuple(dns), tuple(ips), self.profile)

    @property
    def extra(self) -> list[str]:
        """What was added to the defaults (what a new CA must permit again to keep allowing it)."""
        defaults = Constraints(profile=self.profile)
        extra_dns = [d for d in self.dns if d not in defaults.dns]
        if self.profile != "strict":
            return extra_dns
        return extra_dns + [str(n) for n in self.ips if n not in defaults.ips]

    def to_extension(self) -> x509.NameConstraints:
        subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in self.dns]
        if self.profile == "strict":
            subtrees += [x509.IPAddress(n) for n in self.ips]
            # rfc822Name and URI subtrees use a leading dot for "any subdomain" (RFC 5280 4.2.1.10),
            # so each DNS subtree appears twice: the host itself and its subdomains.
            for d in self.dns:
                subtrees += [x509.RFC822Name(d), x509.RFC822Name("." + d)]
            for d in self.dns:
                subtrees += [x509.UniformResourceIdentifier(d), x509.UniformResourceIdentifier("." + d)]
        return x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None)

    @classmethod
    def from_extension(cls, ext: x509.NameConstraints) -> Constraints:
        subtrees = list(ext.permitted_subtrees or ())
        dns = tuple(g.value for g in subtrees if isinstance(g, x509.DNSName))
        ips = tuple(g.value for g in subtrees if isinstance(g, x509.IPAddress))
        others = any(not isinstance(g, x509.DNSName) for g in subtrees)
        return cls(dns, ips, "strict" if others else "dns")  # type: ignore[arg-type]

    @property
    def constrains_ips(self) -> bool:
        return self.profile == "strict"

    def _dns_ok(self, host: str) -> bool:
        host = host[2:] if host.startswith("*.") else host
        return any(host == d or host.endswith("." + d) for d in self.dns)

    def permits(self, name: Name) -> bool:
        """Whether a client enforcing this CA's constraints accepts ``name`` in a leaf."""
        if name.kind == "dns":
            return self._dns_ok(name.host)
        if self.profile != "strict":
            return True  # the CA does not constrain IP, email or URI names: every client accepts them
        if name.kind == "ip":
            return any(name.ip() in net for net in self.ips if net.version == name.ip().version)
        if name.kind == "uri" and is_ip_literal(name.host):
            return False  # URI constraints are DNS subtrees; an IP-literal URI never matches
        return self._dns_ok(name.host)


class LocalCA:
    """A certificate authority: its certificate, its key (when present) and its folder.

    Get one with :meth:`load_or_create` (the CA in CAROOT, made on first use), :meth:`load`,
    :meth:`create`, or :meth:`ephemeral` (in memory only, for tests).
    """

    def __init__(self, cert: x509.Certificate, key: keys.PrivateKey | None, path: Path | None = None):
        self.cert = cert
        self.key = key
        self.path = path
        #: True when this call made the CA (create, or load_or_create that found none); lets
        #: a caller say "created a new CA" only when it did, even with concurrent first runs.
        self.created = False
        #: Why the key file next to the certificate is unusable (set by ``load(require_key=False)``).
        self.key_problem: str | None = None
        #: The error behind ``key_problem``, with its fields (the CLI words its fix).
        self.key_error: CAError | None = None

    @functools.cached_property
    def ski(self) -> x509.SubjectKeyIdentifier:
        """The CA's subject key identifier (computed for imported CAs that lack one)."""
        try:
            return self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            return x509.SubjectKeyIdentifier.from_public_key(self.cert.public_key())  # type: ignore[arg-type]

    # -- where ---------------------------------------------------------------------------

    @property
    def cert_path(self) -> Path | None:
        return self.path / CERT_FILE if self.path else None

    @property
    def key_path(self) -> Path | None:
        return self.path / KEY_FILE if self.path else None

    @staticmethod
    def exists(path: str | os.PathLike[str] | None = None) -> bool:
        folder = Path(path) if path else caroot()
        try:
            return folder.joinpath(CERT_FILE).exists()
        except PermissionError:  # Python 3.11 raises here instead of answering False
            raise caroot_problem(folder) or CAError(f"cannot read CAROOT {folder}: permission denied") from None

    # -- getting one ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, require_key: bool = True) -> LocalCA:
        """Load the CA in ``path`` (default CAROOT); raise :class:`CAError` saying why not."""
        folder = Path(path).absolute() if path else caroot()
        open_folder(folder)
        try:
            return cls._load(folder, require_key)
        except CAError:
            try:
                present = (folder / CERT_FILE).exists()
            except OSError:  # a folder we cannot search: the error already says so
                present = False
            if is_held(folder) or not present:
                raise
            # A writer may have replaced the pair between our two reads: read again under its lock.
            with locked(folder):
                recover(folder / PENDING_DIR)
                return cls._load(folder, require_key)

    @classmethod
    def _load(cls, folder: Path, require_key: bool) -> LocalCA:
        cert_file, key_file = folder / CERT_FILE, folder / KEY_FILE
        cert_data = _read(cert_file, "the CA certificate", fix="init-ca")
        try:
            cert = x509.load_pem_x509_certificate(cert_data)
        except ValueError:
            raise CAError(f"{cert_file} is not a valid PEM certificate; move it aside", fix="init-ca-after") from None
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            is_ca = bc.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise CAError(f"{cert_file} is not a CA certificate (BasicConstraints CA is not set)")
        key, key_error = None, None
        if require_key or key_file.exists():
            try:
                key = cls._load_key(key_file, cert_file, cert)
            except CAError as err:
                if require_key:
                    raise
                key_error = err  # the certificate alone still installs, shows and verifies
        ca = cls(cert, key, folder)
        ca.key_error = key_error
        ca.key_problem = str(key_error) if key_error is not None else None
        return ca

    @staticmethod
    def _load_key(key_file: Path, cert_file: Path, cert: x509.Certificate) -> keys.PrivateKey:
        key_data = _read(key_file, "the CA key", hint="the certificate alone can be installed but cannot sign; "
                         "restore the key", fix="or-replace-ca-new")
        try:
            key = keys.load_pem_private_key(key_data, password=None)
        except TypeError:
            raise CAError(f"{key_file} is encrypted; devcert needs an unencrypted CA key") from None
        except (ValueError, Exception):
            raise CAError(f"{key_file} is not a valid PEM private key") from None
        if key.public_key() != cert.public_key():
            raise CAError(f"{key_file} does not belong to {cert_file} (the key and certificate do not match); "
                          f"restore the matching pair", fix="or-replace-ca")
        return key  # type: ignore[return-value]

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        key_type: str = "ecdsa",
        permit: Iterable[str] = (),
        constraints: bool = True,
        force: bool = False,
        profile: str = DEFAULT_PROFILE,
    ) -> LocalCA:
        """Create a new CA in ``path`` (default CAROOT). Refuses to replace one unless ``force``."""
        folder = Path(path).absolute() if path else caroot()
        keys.check_key_type(key_type)  # bad options fail before anything is made on disk
        if constraints:
            Constraints.default(permit, profile)
        else:
            cls._no_permit(permit)
        open_folder(folder, create=True)
        with locked(folder):
            recover(folder / PENDING_DIR)
            if (folder / CERT_FILE).exists() and not force:
                raise CAError(f"a CA already exists in {folder}", fix="force", api_fix="; replace it with force=True")
            if not force:
                _refuse_orphan_key(folder)
            else:
                replaced = _loadable(folder)
                if replaced is not None:
                    backup(replaced, folder)  # never lose a key that stores may still trust
            ca = cls._build(key_type=key_type, permit=permit, constraints=constraints, profile=profile)
            ca.path = folder
            ca._save()
            ca.created = True
        return ca

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str] | None = None, *, key_type: str = "ecdsa") -> LocalCA:
        """The CA in ``path`` (default CAROOT), created with defaults if there is none yet.

        Safe to call from many processes at once: creation holds a lock, so exactly one CA
        is made and every caller gets it.
        """
        folder = Path(path).absolute() if path else caroot()
        if (folder / CERT_FILE).exists():
            return cls.load(folder)
        open_folder(folder, create=True)
        with locked(folder):
            recover(folder / PENDING_DIR)
            if (folder / CERT_FILE).exists():
                return cls.load(folder)
            _refuse_orphan_key(folder)
            ca = cls._build(key_type=key_type)
            ca.path = folder
            ca._save()
            ca.created = True
            return ca

    @classmethod
    def ephemeral(cls, key_type: str = "ecdsa", *, permit: Iterable[str] = (), constraints: bool = True,
                  profile: str = DEFAULT_PROFILE) -> LocalCA:
        """A CA that lives only in memory: for tests, never written to CAROOT."""
        return cls._build(key_type=key_type, permit=permit, constraints=constraints, profile=profile)

    @staticmethod
    def _no_permit(permit: Iterable[str] | str) -> None:
        if permit and list(permit):
            raise OptionConflictError("permit", "constraints=False", "widens name constraints")

    @classmethod
    def _build(cls, *, key_type: str = "ecdsa", permit: Iterable[str] = (), constraints: bool = True,
               profile: str = DEFAULT_PROFILE) -> LocalCA:
        key = keys.generate(key_type, for_ca=True)
        who = certs.whoami()
        short_id = os.urandom(4).hex()
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devcert development CA"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, who),
            x509.NameAttribute(NameOID.COMMON_NAME, f"devcert {who} {short_id}"[:64]),
        ])
        now = certs.now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
        )
        if constraints:
            builder = builder.add_extension(Constraints.default(permit, profile).to_extension(), critical=True)
        else:
            cls._no_permit(permit)
        cert = builder.sign(key, keys.signature_hash(key))
        return cls(cert, key)

    def _save(self, *also: tuple[Path, bytes, int]) -> None:
        """Write the pair (and ``also``, e.g. a rotation record) as one change; caller holds the lock."""
        assert self.path is not None and self.key is not None
        write_together(self.files(self.path) + list(also), journal_dir=self.path / PENDING_DIR)

    def files(self, folder: Path) -> list[tuple[Path, bytes, int]]:
        """The CA's files as ``write_together`` takes them: key first (load_or_create's lock-free
        fast path reads a certificate as a sign that its key is there; the journal makes both
        appear together anyway)."""
        assert self.key is not None
        return [(folder / KEY_FILE, keys.private_pem(self.key), PRIVATE), (folder / CERT_FILE, self.cert_pem, PUBLIC)]

    # -- facts ---------------------------------------------------------------------------

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(keys.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER, lower-case hex (trust store entries use it)."""
        return certs.sha256(self.cert)

    @property
    def short_id(self) -> str:
        return self.fingerprint[:12]

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def common_name(self) -> str:
        attrs = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else self.subject

    @property
    def not_before(self) -> dt.datetime:
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def key_type(self) -> str:
        return keys.describe(self.cert.public_key())  # type: ignore[arg-type]

    @functools.cached_property
    def constraints(self) -> Constraints | None:
        """The permitted subtrees, or None for an unconstrained CA (parsed once per CA)."""
        try:
            ext = self.cert.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            return None
        return Constraints.from_extension(ext)

    def info(self) -> dict[str, Any]:
        """What ``devcert ca info --json`` prints."""
        constraints = self.constraints
        return {
            "path": str(self.path) if self.path else None,
            "cert": str(self.cert_path) if self.cert_path else None,
            "key": str(self.key_path) if self.key_path and self.key_path.exists() else None,
            "key_problem": self.key_problem,
            "subject": self.subject,
            "sha256": self.fingerprint,
            "serial": format(self.cert.serial_number, "x"),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "key_type": self.key_type,
            "constraints": None if constraints is None else {
                "profile": constraints.profile,
                "about": PROFILES[constraints.profile],
                "dns": list(constraints.dns),
                "ip": [str(n) for n in constraints.ips] if constraints.constrains_ips else None,
            },
        }

    # -- using it ------------------------------------------------------------------------

    def check_output(self, path: str | os.PathLike[str]) -> None:
        """Refuse to write a certificate or key at ``path`` inside this CA's folder (see :func:`check_output`)."""
        if self.path is not None:
            check_output(self.path, path)

    def check_permitted(self, names: Iterable[Name]) -> None:
        """Raise :class:`NameNotPermittedError` for the first name outside the constraints."""
        constraints = self.constraints
        if constraints is None:
            return
        for name in names:
            if not constraints.permits(name):
                if name.kind == "uri" and is_ip_literal(name.host):
                    # URI subtrees hold host names only: no widening can cover an IP-literal URI.
                    raise NameNotPermittedError(
                        f"{name.value!r} has an IP address as its host, which a name-constrained CA "
                        f"cannot permit in a URI; use a host name, or replace the CA with an "
                        f"unconstrained one", name=name.value, widen=None, profile=constraints.profile,
                        in_memory=self.path is None, fix="unconstrained-ca",
                        api_fix=" (LocalCA.ephemeral(constraints=False))" if self.path is None else
                        " (LocalCA.create(force=True, constraints=False))",
                    )
                if name.kind == "ip":
                    widen = str(ipaddress.ip_network(name.value))
                elif name.kind == "uri" and not constraints._dns_ok(name.host):
                    widen = name.host
                else:
                    host = name.host[2:] if name.host.startswith("*.") else name.host
                    widen = host
                strict = constraints.profile == "strict"
                wanted = (*constraints.extra, widen)
                permits = ", ".join(repr(p) for p in wanted)
                profile = ", profile=" + repr(constraints.profile) if strict else ""
                facts = dict(name=name.value, widen=widen, permits=wanted, profile=constraints.profile)
                if self.path is None:  # an in-memory CA (tests): the fix is in the caller's code
                    raise NameNotPermittedError(
                        f"{name.value!r} is outside this in-memory CA's name constraints (development "
                        f"names and private addresses); make it with LocalCA.ephemeral(permit=[{permits}]"
                        f"{profile}) or LocalCA.ephemeral(constraints=False)", in_memory=True, **facts)
                raise NameNotPermittedError(
                    f"{name.value!r} is outside this CA's name constraints, which permit only "
                    f"development names and private addresses; to allow it, replace the CA with one "
                    f"that permits it", fix="widen-ca", **facts,
                    api_fix=f": LocalCA.create(force=True, permit=[{permits}]{profile}), then install it again")

    def issue(
        self,
        *names: str,
        client: bool = False,
        key_type: str = "ecdsa",
        days: int | None = None,
    ) -> Leaf:
        """Issue a leaf certificate and a new key for ``names`` (DNS, IP, email or URI)."""
        return issue_leaf(self, parse_names(list(names)), client=client, key_type=key_type, days=days)

    def sign_csr(self, csr: bytes | str, *, client: bool = False, days: int | None = None) -> Leaf:
        """Sign a CSR (PEM bytes or text, or DER bytes); the key stays with its owner. Names are validated as usual."""
        return sign_csr_with(self, csr, client=client, days=days)

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for clients that trusts this CA and nothing else."""
        import ssl  # ~8 ms that `devcert create` never needs: only callers of the Python API do

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=self.cert_pem.decode("ascii"))
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        return ctx

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "in memory"
        return f"<LocalCA {self.common_name!r} sha256={self.short_id} {where}>"




def _refuse_orphan_key(folder: Path) -> None:
    """A CA key without its certificate is someone's key: never overwrite it by making a CA."""
    if (folder / KEY_FILE).exists():
        raise CAError(f"{folder / KEY_FILE} exists but {CERT_FILE} does not; restore the certificate, or move "
                      f"the key aside", then=" to make a new CA", fix="orphan-key")


def _read(path: Path, what: str, *, fix: str, hint: str = "") -> bytes:
    try:
        os.lstat(path)
    except FileNotFoundError:
        raise CAMissingError(path, what, f"{what} is missing: {path} does not exist{'; ' + hint if hint else ''}",
                             fix=fix) from None
    except OSError:
        pass  # read_regular names the reason (a part of the path is not a folder, ...)
    try:
        return read_regular(path, what)
    except InputFileError as err:
        raise CAError(str(err)) from None


def check_output(folder: Path, path: str | os.PathLike[str]) -> None:
    """Refuse to write a certificate or key at ``path`` when it is inside CAROOT ``folder``.

    CAROOT holds the CA's key, the inventory and devcert's journals; a leaf written over
    ``rootCA.pem`` would replace the CA. The folder holding ``path`` is resolved (symlinks
    followed), the last component is not: a link there is replaced, not followed.
    """
    root = os.path.realpath(folder)
    target = Path(path).absolute()
    try:
        full = os.path.join(os.path.realpath(target.parent), target.name)
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError):
        return  # the write itself reports a bad path
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        # A FIFO or socket where a certificate or key should go is someone's mistake or trap.
        raise FileWriteError(f"cannot write {path}: it is not a regular file (a FIFO, socket or device); "
                             f"remove it or choose another path")
    if full == root or full.startswith(root.rstrip(os.sep) + os.sep):
        raise UsageError(f"refusing to write {path}: it is inside CAROOT {folder}, which holds the CA's key "
                         f"and devcert's records; write certificates somewhere else")


def open_folder(folder: Path, *, create: bool = False) -> None:
    """Refuse an unsafe CAROOT, make it (0700) when ``create``, and finish interrupted writes.

    Every way of getting the CA from disk passes here, so no command uses a CA that another
    user could have swapped, and none sees half of a pair that a killed run was writing.
    """
    problem = caroot_problem(folder)
    if problem is not None:
        raise problem
    if create:
        ensure_private_dir(folder)
    if pending_journals(folder / PENDING_DIR):
        with locked(folder):
            recover(folder / PENDING_DIR)


def _loadable(folder: Path) -> LocalCA | None:
    """The CA in ``folder`` if its files can be read (key optional), else None."""
    try:
        return LocalCA._load(folder, require_key=False) if (folder / CERT_FILE).exists() else None
    except CAError:
        return None


def backup(ca: LocalCA, folder: Path | None = None) -> Path:
    """Copy ``ca``'s files to ``CAROOT/old/<fingerprint>/`` (0700 folder, 0600 key); return it.

    Idempotent: backing up the same CA again rewrites the same two files.
    """
    root = folder or ca.path or caroot()
    target = ensure_private_dir(root / OLD_DIR / ca.fingerprint)
    files = [(target / CERT_FILE, ca.cert_pem, PUBLIC)]
    if ca.key is not None:
        files.insert(0, (target / KEY_FILE, keys.private_pem(ca.key), PRIVATE))
    write_together(files)
    return target
