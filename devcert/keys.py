"""Key generation and the few key facts the rest of devcert needs."""

from __future__ import annotations

from typing import Literal, Union

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# `cryptography.hazmat.primitives.serialization` also loads SSH and cipher support that devcert
# never uses: ~12 ms, a sixth of `devcert create`. The same objects are importable without it;
# if a future cryptography moves them, the public package is the fallback.
try:
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl
    from cryptography.hazmat.primitives._serialization import Encoding, NoEncryption, PrivateFormat

    load_pem_private_key = _rust_openssl.keys.load_pem_private_key
except (ImportError, AttributeError):  # pragma: no cover - another cryptography layout
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from .errors import UsageError

KeyType = Literal["ecdsa", "rsa"]
PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey]

KEY_TYPES: tuple[str, ...] = ("ecdsa", "rsa")
# A CA outlives its leaves by years, so it gets the stronger RSA size; leaves use 2048, which
# every client accepts and which costs ~50 ms to generate instead of ~1 s.
RSA_CA_BITS = 3072
RSA_LEAF_BITS = 2048


def check_key_type(key_type: str) -> KeyType:
    if key_type not in KEY_TYPES:
        raise UsageError(f"unknown key type {key_type!r}: use 'ecdsa' (the default) or 'rsa'")
    return key_type  # type: ignore[return-value]


def generate(key_type: str, *, for_ca: bool = False) -> PrivateKey:
    """A new private key: ECDSA P-256 (fast, universally supported) or RSA."""
    if check_key_type(key_type) == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(65537, RSA_CA_BITS if for_ca else RSA_LEAF_BITS)


def describe(key: PublicKey | PrivateKey) -> str:
    """``'ECDSA P-256'`` or ``'RSA 3072'``."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {curve.get(key.curve.name, key.curve.name)}"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"RSA {key.key_size}"
    return type(key).__name__


#: The weakest keys devcert signs for or trusts: RSA below 2048 bits is broken in practice and
#: refused by browsers; curves outside these are not accepted by TLS clients.
MIN_RSA_BITS = 2048
STRONG_CURVES: tuple[str, ...] = ("secp256r1", "secp384r1", "secp521r1")


def weakness(key: object, curves: tuple[str, ...] = STRONG_CURVES) -> str | None:
    """What makes ``key`` unfit, or None: ``"rsa-bits"`` (below :data:`MIN_RSA_BITS`),
    ``"curve"`` (an EC curve not in ``curves``) or ``"type"`` (neither ECDSA nor RSA).
    Callers word it (a CA, a CSR); the rule is here once."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa-bits" if key.key_size < MIN_RSA_BITS else None
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "curve" if key.curve.name not in curves else None
    return "type"


def key_type_of(key: PublicKey | PrivateKey) -> str:
    """``'ecdsa'`` or ``'rsa'``: the ``key_type`` option that makes a key like this one."""
    return "rsa" if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)) else "ecdsa"


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm:
    """SHA-384 for P-384 keys, SHA-256 otherwise (what every client verifies)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def private_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, the form every server and tool reads."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return _p256_pkcs8_pem(key)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


# -- PKCS#8 for P-256 keys, without cryptography's serialization package ---------------------
# `private_bytes` imports cryptography's whole serialization package (SSH, ciphers): ~12 ms of
# every `devcert create`. A P-256 PKCS#8 key is one fixed DER structure (RFC 5208 + RFC 5915),
# so it is written here; tests check it is byte-identical to `private_bytes`' output.

def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    if n < 0x100:
        return bytes((tag, 0x81, n)) + body
    return bytes((tag, 0x82, n >> 8, n & 0xFF)) + body


# AlgorithmIdentifier { id-ecPublicKey, namedCurve prime256v1 }
_P256_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d0201")) + _der(0x06, bytes.fromhex("2a8648ce3d030107")))


def _p256_pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    import base64  # ~1 ms, only when a key is written (`devcert create`'s only other imports are loaded)

    secret = key.private_numbers().private_value.to_bytes(32, "big")
    numbers = key.public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    # ECPrivateKey { version 1, privateKey, [1] publicKey } (parameters live in the algorithm)
    ec_private_key = _der(0x30, _der(0x02, b"\x01") + _der(0x04, secret) + _der(0xA1, _der(0x03, b"\x00" + point)))
    # PrivateKeyInfo { version 0, algorithm, privateKey OCTET STRING }
    der = _der(0x30, _der(0x02, b"\x00") + _P256_ALGORITHM + _der(0x04, ec_private_key))
    b64 = base64.b64encode(der).decode("ascii")
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n".encode("ascii")
