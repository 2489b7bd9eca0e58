"""pkilint's RFC 5280 linter (the code behind PyPI pkilint's ``lint_pkix_cert``) on every kind
of certificate devcert makes: no finding at WARNING or above.

Known false positives of the linter, filtered exactly (by finding code AND by the value the
finding is about), never by severity or code alone:

* single-label names: pkilint checks dNSName (and the host part of rfc822Name / URI name
  constraint subtrees) with ``validators.domain``, which wants at least two labels, so it
  reports ``localhost`` in a SAN and the constraint subtrees ``localhost``, ``test``,
  ``example``, ``invalid``, ``local``, ``internal`` (and their ``.``-prefixed rfc822Name/URI
  forms) as invalid syntax. RFC 5280 allows them.
* wildcards: the plain RFC 5280 linter knows no wildcard syntax (RFC 6125 defines it), so
  ``*.app.test`` is reported as ``pkix.invalid_domain_name_syntax``; it is filtered only when
  the rest of the name (after ``*.``) is a multi-label name the same validator accepts.
"""

from __future__ import annotations

import validators
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pkilint import loader
from pkilint.pkix import certificate, name, extension
from pkilint.validation import ValidationFindingSeverity

from devcert import LocalCA
from devcert.ca import DEFAULT_DNS
from devcert.issue import issue_self_signed
from devcert.names import parse_names

SINGLE_LABEL = {d for d in DEFAULT_DNS if "." not in d}
SYNTAX_CODES = {"pkix.invalid_domain_name_syntax", "pkix.invalid_email_address_syntax", "pkix.invalid_uri_syntax"}


def _validator():  # type: ignore[no-untyped-def]
    # Exactly the validator pkilint's `lint_pkix_cert lint` command builds.
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


VALIDATOR = _validator()


def _is_known_false_positive(code: str, path: str, value: str) -> bool:
    if code not in SYNTAX_CODES:
        return False
    in_constraints = ".nameConstraints." in path
    if code == "pkix.invalid_domain_name_syntax" and path.endswith(".dNSName"):
        if value in SINGLE_LABEL and (in_constraints or value == "localhost"):
            return True
        if not in_constraints and value.startswith("*.") and value.count(".") >= 2:
            return validators.domain(value[2:]) is True
        return False
    if in_constraints and (path.endswith(".rfc822Name") or path.endswith(".uniformResourceIdentifier")):
        return value.removeprefix(".") in SINGLE_LABEL
    return False


def lint(cert: x509.Certificate) -> list[str]:
    """Findings at WARNING or above, minus the known false positives; as readable strings."""
    der = cert.public_bytes(serialization.Encoding.DER)
    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "devcert")
    problems = []
    for result in VALIDATOR.validate(doc.root):
        for found in result.finding_descriptions:
            if found.finding.severity > ValidationFindingSeverity.WARNING:  # NOTICE, INFO
                continue
            value = str(result.node.pdu)
            if _is_known_false_positive(found.finding.code, result.node.path, value):
                continue
            problems.append(f"{found.finding.severity.name} {found.finding.code} at {result.node.path}: {found.message}")
    return problems


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.ephemeral()


def test_filter_is_not_blind() -> None:
    """The filter lets real problems through: an invalid name and a bad subtree are reported."""
    assert not _is_known_false_positive("pkix.invalid_domain_name_syntax", "x.subjectAltName.0.dNSName", "bad_name.test")
    assert not _is_known_false_positive("pkix.invalid_domain_name_syntax", "x.subjectAltName.0.dNSName", "*.test")
    assert not _is_known_false_positive("pkix.invalid_domain_name_syntax", "x.subjectAltName.0.dNSName", "test")
    assert not _is_known_false_positive("pkix.invalid_uri_syntax", "x.subjectAltName.0.uniformResourceIdentifier", "localhost")
    assert not _is_known_false_positive("pkix.some_other_finding", "x.nameConstraints.permittedSubtrees.0.base.dNSName", "test")
    assert _is_known_false_positive("pkix.invalid_domain_name_syntax", "x.subjectAltName.0.dNSName", "localhost")
    assert _is_known_false_positive("pkix.invalid_domain_name_syntax", "x.subjectAltName.0.dNSName", "*.app.test")


def test_lint_sees_a_real_problem() -> None:
    """Control: a certificate with a real RFC 5280 violation does produce a finding."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    bad = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))  # empty subject without a critical SAN: RFC 5280 violation
        .issuer_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "x")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("bad_name.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert lint(bad)


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
@pytest.mark.parametrize("constraints", [True, False])
def test_ca_lints_clean(key_type: str, constraints: bool) -> None:
    ca = LocalCA.ephemeral(key_type, constraints=constraints)
    assert lint(ca.cert) == []


def test_widened_ca_lints_clean() -> None:
    ca = LocalCA.ephemeral(permit=["corp.example.dev", "100.64.0.0/10", "fd00:1::/32"], profile="strict")
    assert lint(ca.cert) == []
    assert lint(LocalCA.ephemeral(permit=["corp.example.dev"]).cert) == []


LEAVES = {
    "dns": (("localhost", "app.test", "xn--bcher-kva.test"), {}),
    "ip": (("127.0.0.1", "::1", "10.0.0.1"), {}),
    "wildcard": (("*.app.test", "app.test"), {}),
    "email": (("alice@app.test",), {}),
    "uri": (("https://app.test/api",), {}),
    "client": (("client.app.test", "bob@app.test"), {"client": True}),
    "rsa": (("localhost", "127.0.0.1"), {"key_type": "rsa"}),
    "short": (("localhost",), {"days": 1}),
    "longest": (("localhost",), {"days": 825}),
}


@pytest.mark.parametrize("kind", list(LEAVES))
def test_leaf_lints_clean(ca: LocalCA, kind: str) -> None:
    names, options = LEAVES[kind]
    leaf = ca.issue(*names, **options)
    assert lint(leaf.cert) == []


def test_leaf_of_rsa_ca_lints_clean() -> None:
    assert lint(LocalCA.ephemeral("rsa").issue("localhost", "::1").cert) == []


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_self_signed_lints_clean(key_type: str) -> None:
    leaf = issue_self_signed(parse_names(["localhost", "127.0.0.1"]), key_type=key_type)
    assert lint(leaf.cert) == []


def test_csr_signed_leaf_lints_clean(ca: LocalCA) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "api.app.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("api.app.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    leaf = ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM))
    assert lint(leaf.cert) == []
