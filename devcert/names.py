"""Parsing one user-given name into a subjectAltName entry, with every validation rule.

A name is one of: a DNS name (Unicode is converted to IDNA A-labels), a wildcard one label
deep (``*.app.test``), an IPv4 or IPv6 address, an email address (for S/MIME), or a URI with a
host. Anything else is refused with a message that says what is wrong and what to type
instead; nothing here guesses.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal, NamedTuple, Union

from .errors import InvalidNameError

Kind = Literal["dns", "ip", "email", "uri"]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

#: The names a certificate gets when none are given (snippet, serve-wss, the pytest plugin):
#: every way a local client reaches a loopback server.
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")

_LDH_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# RFC 5322 dot-atom for the local part, ASCII only (SmtpUTF8Mailbox is another SAN type).
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")


class Name(NamedTuple):
    """One validated subjectAltName: ``kind`` and its canonical ``value``.

    ``value`` is what goes into the certificate: a lower-case A-label DNS name, a compressed
    IP address, ``local@a-label-domain``, or the URI as given. ``host`` is the DNS name or IP
    that name constraints are checked against.
    """

    kind: Kind
    value: str

    @property
    def is_wildcard(self) -> bool:
        return self.kind == "dns" and self.value.startswith("*.")

    @property
    def host(self) -> str:
        if self.kind == "email":
            return self.value.rsplit("@", 1)[1]
        if self.kind == "uri":
            return _uri_host(self.value)
        return self.value

    def ip(self) -> IPAddress:
        return ipaddress.ip_address(self.value)

    def __str__(self) -> str:
        return self.value


def parse_name(text: str) -> Name:
    """Parse one name as a user typed it; raise :class:`InvalidNameError` if it is not valid."""
    if isinstance(text, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        text = str(text)
    if not isinstance(text, str):
        hint = " (give names as separate arguments: issue(*names))" if isinstance(text, (list, tuple, set)) else ""
        raise InvalidNameError(f"a name must be a str, not {type(text).__name__}{hint}")
    if not text.strip():
        raise InvalidNameError("empty name: give a host name, IP address, email or URI")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise InvalidNameError(f"{text!r} contains spaces: give each name as its own argument")
    if "://" in text:
        return Name("uri", _parse_uri(text))
    if "@" in text:
        return Name("email", _parse_email(text))
    ip = _parse_ip(text)
    if ip is not None:
        return Name("ip", str(ip))
    return Name("dns", parse_dns_name(text, allow_wildcard=True))


def is_ip_literal(text: str) -> bool:
    """Whether ``text`` is an IP address as written in a host: ``127.0.0.1``, ``::1``,
    ``[::1]`` (URI brackets) or ``fe80::1%eth0`` (a zone)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ipaddress.ip_address(text.split("%")[0])
        return True
    except ValueError:
        return False


def parse_names(texts: list[str] | tuple[str, ...]) -> list[Name]:
    """Parse several names, keeping their order and dropping exact duplicates."""
    if not texts:
        raise InvalidNameError("no names given", fix="example-names")
    seen: dict[tuple[str, str], Name] = {}
    for text in texts:
        name = parse_name(text)
        seen.setdefault((name.kind, name.value), name)
    return list(seen.values())


_IPV4_CHARS = frozenset("0123456789.")


def _parse_ip(text: str) -> IPAddress | None:
    if ":" not in text and not (set(text) <= _IPV4_CHARS) and "[" not in text:
        return None  # plainly a host name: skip ipaddress and its exceptions (hot in bulk issuing)
    candidate = text
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    if "%" in candidate and ":" in candidate:
        raise InvalidNameError(
            f"{text!r} has an IPv6 zone (%...): zones are local to one machine and cannot be "
            f"in a certificate; use the address without it"
        )
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass
    if candidate.count(":") > 1 or candidate.startswith("["):
        raise InvalidNameError(f"{text!r} is not a valid IPv6 address")
    if ":" in candidate:
        host, _, port = candidate.rpartition(":")
        if port.isdigit():
            raise InvalidNameError(
                f"{text!r} looks like host:port: certificates name hosts, not ports; use {host!r}"
            )
        raise InvalidNameError(f"{text!r} is not a valid name: ':' is not allowed in a host name")
    return None


def parse_dns_name(text: str, allow_wildcard: bool = False) -> str:
    """Validate a DNS name and return it as lower-case A-labels."""
    if text.endswith("."):
        raise InvalidNameError(
            f"{text!r} ends with a dot: certificates use names without the trailing root dot; "
            f"use {text.rstrip('.')!r}"
        )
    wildcard = False
    rest = text
    if "*" in text:
        if not allow_wildcard:
            raise InvalidNameError(f"{text!r}: a wildcard is not allowed here")
        if text == "*":
            raise InvalidNameError("'*' alone is not a valid wildcard: use '*.app.test'")
        if not text.startswith("*.") or "*" in text[2:]:
            raise InvalidNameError(
                f"{text!r}: a wildcard must be the whole left-most label, as in '*.app.test' "
                f"('a.*.b' and 'w*.app.test' are not accepted by browsers)"
            )
        wildcard = True
        rest = text[2:]
    ascii_name = _to_a_labels(rest, original=text)
    labels = ascii_name.split(".")
    if wildcard and len(labels) < 2:
        raise InvalidNameError(
            f"{text!r} would cover a whole top-level domain, which browsers refuse; "
            f"use a wildcard under a domain such as '*.app.{labels[0]}'"
        )
    if labels[-1].isdigit():
        raise InvalidNameError(f"{text!r} is neither a valid IP address nor a host name")
    result = ("*." if wildcard else "") + ascii_name
    if len(result) > 253:
        raise InvalidNameError(f"{text[:40]!r}... is {len(result)} octets long: a DNS name is at most 253")
    return result


def _to_a_labels(name: str, original: str) -> str:
    if not name:
        raise InvalidNameError(f"{original!r} is not a valid host name")
    if not name.isascii():
        try:
            import idna  # imported only for Unicode names: its tables cost ~15 ms

            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as err:
            raise InvalidNameError(f"{original!r} is not a valid internationalized name: {err}") from None
    name = name.lower()
    for label in name.split("."):
        if not label:
            raise InvalidNameError(f"{original!r} has an empty label ('..' or a leading dot)")
        if len(label) > 63:
            raise InvalidNameError(f"{original!r}: the label {label[:20]!r}... is {len(label)} octets; at most 63")
        if "_" in label:
            raise InvalidNameError(
                f"{original!r}: '_' is not allowed in host names (RFC 5280 preferred name syntax)"
            )
        if not _LDH_LABEL.match(label):
            raise InvalidNameError(
                f"{original!r}: {label!r} is not a valid label (letters, digits and inner hyphens only)"
            )
        if label[2:4] == "--":
            if not label.startswith("xn--"):
                raise InvalidNameError(f"{original!r}: {label!r} has '--' in positions 3-4, reserved for IDNA")
            try:
                import idna  # ~20 ms, only for names with an xn-- label

                idna.decode(label)
            except Exception:
                raise InvalidNameError(f"{original!r}: {label!r} is not a valid IDNA A-label") from None
    return name


def _parse_email(text: str) -> str:
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidNameError(f"{text!r} is not a valid email address")
    if not _LOCAL_PART.match(local) or len(local) > 64:
        raise InvalidNameError(f"{text!r}: {local!r} is not a valid mailbox name (ASCII, no spaces or '@')")
    try:
        domain = parse_dns_name(domain)
    except InvalidNameError as err:
        raise InvalidNameError(f"{text!r} is not a valid email address: {err}") from None
    return f"{local}@{domain}"


def _parse_uri(text: str) -> str:
    scheme, _, rest = text.partition("://")
    if not _SCHEME.match(scheme):
        raise InvalidNameError(f"{text!r}: {scheme!r} is not a valid URI scheme")
    if not _URI_CHARS.match(text):
        raise InvalidNameError(f"{text!r} has characters a URI cannot hold: percent-encode them")
    host = _uri_host(text)
    # After the host only ":port" may follow in the authority ("https://[::1" or
    # "https://[::1]x/" or "https://a.test:99999/" are not URIs a client could use).
    hostport = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if hostport.startswith("[") and "]" not in hostport:
        raise InvalidNameError(f"{text!r}: the IPv6 host has no closing ']'")
    if hostport.startswith("["):
        after = hostport[hostport.find("]") + 1:]
    else:
        _, sep, port = hostport.partition(":")
        after = sep + port
    if after and not (after[0] == ":" and (after[1:] == "" or (after[1:].isdigit() and int(after[1:]) <= 65535))):
        raise InvalidNameError(f"{text!r}: after the host only ':PORT' (0-65535) may follow")
    if not host:
        raise InvalidNameError(f"{text!r} has no host: a URI name needs one, as in 'spiffe://app.test/api'")
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        else:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                parse_dns_name(host)
    except (InvalidNameError, ValueError) as err:
        raise InvalidNameError(f"{text!r} has an invalid host {host!r}: {err}") from None
    return text


def _uri_host(uri: str) -> str:
    rest = uri.partition("://")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        return hostport[: hostport.find("]") + 1] if "]" in hostport else hostport
    return hostport.partition(":")[0].lower()
