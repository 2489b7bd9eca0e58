"""The name parser: what a user may type as a certificate name, and what is refused and why.

Example-based tests pin the messages users see; property-based tests (hypothesis) check the
parser's contract on arbitrary input: it returns a canonical Name or raises InvalidNameError,
never anything else.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devcert.errors import InvalidNameError, UsageError
from devcert.names import Name, parse_dns_name, parse_name, parse_names
from tests.helpers import BAD_NAMES

# -- accepted names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("localhost", "dns", "localhost"),
        ("App.Test", "dns", "app.test"),
        ("*.app.test", "dns", "*.app.test"),
        ("bücher.test", "dns", "xn--bcher-kva.test"),
        ("BÜCHER.test", "dns", "xn--bcher-kva.test"),
        ("xn--bcher-kva.test", "dns", "xn--bcher-kva.test"),
        ("*.bücher.test", "dns", "*.xn--bcher-kva.test"),
        ("127.0.0.1", "ip", "127.0.0.1"),
        ("::1", "ip", "::1"),
        ("[::1]", "ip", "::1"),
        ("0:0:0:0:0:0:0:1", "ip", "::1"),
        ("FE80::1", "ip", "fe80::1"),
        ("alice@app.test", "email", "alice@app.test"),
        ("alice@App.Test", "email", "alice@app.test"),
        ("alice@bücher.test", "email", "alice@xn--bcher-kva.test"),
        ("spiffe://app.test/api", "uri", "spiffe://app.test/api"),
        ("https://app.test:8443/x?y#z", "uri", "https://app.test:8443/x?y#z"),
        ("https://[::1]:443/", "uri", "https://[::1]:443/"),
    ],
)
def test_accepted_names(text: str, kind: str, value: str) -> None:
    name = parse_name(text)
    assert (name.kind, name.value) == (kind, value)


def test_name_helpers() -> None:
    assert parse_name("*.app.test").is_wildcard
    assert not parse_name("app.test").is_wildcard
    assert parse_name("alice@app.test").host == "app.test"
    assert parse_name("https://APP.test:1/x").host == "app.test"
    assert parse_name("::1").ip() == ipaddress.ip_address("::1")
    assert str(parse_name("App.test")) == "app.test"


def test_parse_names_keeps_order_and_drops_duplicates() -> None:
    names = parse_names(["localhost", "127.0.0.1", "LOCALHOST", "::1", "[::1]"])
    assert [n.value for n in names] == ["localhost", "127.0.0.1", "::1"]
    with pytest.raises(InvalidNameError, match="no names given"):
        parse_names([])


# -- refused names: every one gets an InvalidNameError (a UsageError: exit code 2) --------------


@pytest.mark.parametrize(("text", "why"), BAD_NAMES, ids=[repr(t)[:30] for t, _ in BAD_NAMES])
def test_refused_names_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        parse_name(text)
    message = str(info.value)
    assert why in message
    assert "\n" not in message
    assert isinstance(info.value, UsageError)


def test_dns_only_parser_refuses_wildcards_where_not_allowed() -> None:
    with pytest.raises(InvalidNameError, match="wildcard is not allowed"):
        parse_dns_name("*.app.test")
    assert parse_dns_name("*.app.test", allow_wildcard=True) == "*.app.test"


def test_non_string_is_refused_cleanly() -> None:
    with pytest.raises(InvalidNameError):
        parse_name(None)  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------------------

LDH_LABEL = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\Z").filter(lambda s: s[2:4] != "--")
# The last label must not be all digits (that would read as a mistyped IP address).
TLD_LABEL = st.from_regex(r"\A[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?\Z").filter(lambda s: s[2:4] != "--")


@st.composite
def ldh_names(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LDH_LABEL, min_size=0, max_size=5))
    name = ".".join([*labels, draw(TLD_LABEL)])
    if len(name) > 253:
        name = name[-253:].lstrip(".-")
        if not name or name.split(".")[0].endswith("-") or name[0] == "-":
            name = draw(TLD_LABEL)
    return name


@given(ldh_names())
@example("localhost")
@example("a" * 63 + ".test")
@example(".".join(["a" * 63] * 3 + ["b" * 61]))  # 253 octets, the longest allowed
def test_valid_ldh_names_round_trip(text: str) -> None:
    name = parse_name(text)
    assert name.kind == "dns"
    assert name.value == text.lower()
    # Parsing the canonical value again gives the same value (idempotent).
    assert parse_name(name.value) == name


@given(ldh_names())
def test_wildcard_over_multi_label_names(text: str) -> None:
    if "." not in text:
        text = "app." + text
    assert parse_name("*." + text).value == "*." + text.lower()


def _check_dns_value(value: str) -> None:
    assert value.isascii()
    assert value == value.lower()
    assert len(value) <= 253
    labels = value.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        assert len(labels) >= 2
    for label in labels:
        assert 1 <= len(label) <= 63
        assert not label.startswith("-") and not label.endswith("-")


ANY_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from(list("ab-.*:@/[]%_ü1 xn")), max_size=80),
    st.from_regex(r"\A[a-z]{1,8}://[^ ]{0,40}\Z"),
    st.from_regex(r"\A[a-z.]{0,20}@[a-zA-Z0-9.\-ü]{0,30}\Z"),
)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_TEXT)
@example("https://[::1")
@example("a" * 300)
@example("\udcff.test")
@example("xn--.test")
@example("\u00df.test")
@example("*.\u00fc")
def test_any_text_parses_or_raises_invalid_name(text: str) -> None:
    try:
        name = parse_name(text)
    except InvalidNameError as err:
        assert str(err)
        return
    assert isinstance(name, Name)
    assert name.kind in ("dns", "ip", "email", "uri")
    if name.kind == "dns":
        _check_dns_value(name.value)
    elif name.kind == "email":
        local, _, domain = name.value.rpartition("@")
        assert local and local.isascii()
        _check_dns_value(domain)
    elif name.kind == "ip":
        assert str(ipaddress.ip_address(name.value)) == name.value
    # Whatever was accepted is stable: parsing the canonical value gives the same Name.
    assert parse_name(name.value) == name


@given(st.ip_addresses())
def test_ip_addresses_round_trip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    name = parse_name(str(ip))
    assert name.kind == "ip"
    assert name.ip() == ip
    assert name.value == str(ip)
    if ip.version == 6:
        assert parse_name(f"[{ip}]") == name
        assert parse_name(ip.exploded) == name


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1", True), ("::1", True), ("[::1]", True), ("fe80::1%eth0", True),
    ("localhost", False), ("app.test", False), ("[app.test]", False), ("", False),
])
def test_is_ip_literal(text: str, expected: bool) -> None:
    from devcert.names import is_ip_literal

    assert is_ip_literal(text) is expected
