"""Key generation and the few key facts the rest of devcert needs."""

from __future__ import annotations

from typing import Literal, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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


def signature_hash(key: PrivateKey) -> hashes.HashAlgorithm:
    """SHA-384 for P-384 keys, SHA-256 otherwise (what every client verifies)."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def private_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, the form every server and tool reads."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
