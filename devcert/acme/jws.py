"""Checking the JWS that carries every ACME POST (RFC 8555 6.2-6.5), through josepy.

The signature itself is verified by josepy (the JOSE library certbot's ``acme`` package is
built on), never here: this module only parses the flattened JSON serialization, enforces what
ACME adds to JOSE (``nonce``, ``url``, exactly one of ``jwk`` / ``kid``, no unprotected
header, no MAC or ``none`` algorithms) and maps each failure to its problem type.
"""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple

import josepy

from ..errors import AcmeProblem
from .problems import bad_nonce, malformed

#: Signature algorithms accepted. josepy has no EdDSA (JWA "EdDSA", RFC 8037), so neither do
#: we; HMAC algorithms are refused because an account key is a public key, and "none" because
#: it is no signature.
ALGORITHMS: dict[str, josepy.JWASignature] = {
    "RS256": josepy.RS256, "RS384": josepy.RS384, "RS512": josepy.RS512,
    "PS256": josepy.PS256, "PS384": josepy.PS384, "PS512": josepy.PS512,
    "ES256": josepy.ES256, "ES384": josepy.ES384, "ES512": josepy.ES512,
}
#: The curve each ECDSA algorithm signs with (RFC 7518 3.4): ES256 with a P-384 key is invalid.
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
MIN_RSA_BITS = 2048


class Verified(NamedTuple):
    """A JWS whose signature verified: its payload (``b""`` for POST-as-GET), the key that
    signed it, and ``kid`` (the account URL) or None when it carried its ``jwk``."""

    payload: bytes
    key: josepy.JWK
    kid: str | None
    header: dict[str, Any]

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object (``{}`` for an empty payload is not allowed: see RFC 8555 7.1.1)."""
        try:
            value = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError):
            raise malformed("the JWS payload is not JSON") from None
        if not isinstance(value, dict):
            raise malformed("the JWS payload must be a JSON object")
        return value


def thumbprint(key: josepy.JWK) -> str:
    """The RFC 7638 thumbprint (SHA-256), base64url: the key authorization's second half."""
    return josepy.b64encode(key.thumbprint()).decode()


def key_json(key: josepy.JWK) -> str:
    return json.dumps(key.to_json(), sort_keys=True)


def key_from_json(data: Any) -> josepy.JWK:
    """A public JWK from its JSON; refuses private keys, weak RSA keys and unusable curves."""
    if not isinstance(data, dict):
        raise malformed("the jwk must be a JSON object")
    if "d" in data or "p" in data:
        raise AcmeProblem("badPublicKey", "the jwk holds a private key; send only the public part")
    try:
        key = josepy.JWK.from_json(data)
    except (josepy.DeserializationError, ValueError, TypeError, KeyError) as err:
        raise AcmeProblem("badPublicKey", f"the jwk is not a usable public key ({err})") from None
    # josepy wraps the cryptography key (ComparableKey): the JWK's class says its type
    public = key.key
    if isinstance(key, josepy.JWKRSA):
        if public.key_size < MIN_RSA_BITS:
            raise AcmeProblem("badPublicKey", f"the RSA account key has {public.key_size} bits; at least "
                                              f"{MIN_RSA_BITS} are needed")
    elif not isinstance(key, josepy.JWKEC):
        raise AcmeProblem("badPublicKey", "only RSA and ECDSA account keys are supported")
    return key


def parse(body: bytes) -> tuple[josepy.JWS, dict[str, Any]]:
    """The JWS of a request body and its protected header, or a ``malformed`` problem."""
    try:
        outer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise malformed("the request body is not JSON (a flattened JWS is expected)") from None
    if not isinstance(outer, dict) or set(outer) != {"protected", "payload", "signature"}:
        raise malformed("the request body must be a flattened JWS: exactly protected, payload and signature "
                        "(no unprotected header, no multiple signatures)")
    if not all(isinstance(outer[k], str) for k in outer):
        raise malformed("the JWS fields must be base64url strings")
    try:
        header = json.loads(josepy.b64decode(outer["protected"]))
    except (ValueError, UnicodeDecodeError, TypeError):
        raise malformed("the JWS protected header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise malformed("the JWS protected header must be a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise AcmeProblem("badSignatureAlgorithm", f"the JWS algorithm {alg!r} is not supported",
                          algorithms=sorted(ALGORITHMS))
    try:
        parsed = josepy.JWS.from_json(outer)
    except (josepy.DeserializationError, ValueError, TypeError) as err:
        raise malformed(f"the JWS cannot be parsed ({err})") from None
    return parsed, header


def check_signature(parsed: josepy.JWS, header: dict[str, Any], key: josepy.JWK) -> None:
    """Verify with josepy; an algorithm that does not fit the key is a bad signature too."""
    alg = header["alg"]
    fits = (isinstance(key, josepy.JWKRSA) and alg[0] in "RP") or (
        isinstance(key, josepy.JWKEC) and _CURVES.get(alg) == key.key.curve.name)
    try:
        ok = fits and parsed.verify(key)
    except Exception:  # josepy raises for signatures of the wrong length or encoding
        ok = False
    if not ok:
        raise malformed("the JWS signature does not verify with the account key")


def verify(body: bytes, *, url: str, use_nonce: Callable[[str], bool],
           account_key: Callable[[str], josepy.JWK], jwk_only: bool = False, kid_only: bool = True,
           nonce: bool = True) -> Verified:
    """Check a request's JWS completely; return what it carries.

    ``use_nonce`` consumes a nonce (False when unknown, used or expired), ``account_key``
    returns the key of an account URL (raising the account's problem). ``jwk_only`` (newAccount,
    the inner JWS of a key change) requires an embedded key, ``kid_only`` an account URL.
    ``nonce=False`` is for the inner JWS of a key change, which has none (RFC 8555 7.3.5).
    """
    parsed, header = parse(body)
    if nonce:
        value = header.get("nonce")
        if not isinstance(value, str) or not value:
            raise bad_nonce("the JWS protected header has no nonce")
        if not use_nonce(value):
            raise bad_nonce("the nonce is unknown, already used or expired; use the Replay-Nonce of this response")
    elif "nonce" in header:
        raise malformed("the inner JWS of a key change must not carry a nonce")
    if header.get("url") != url:
        raise AcmeProblem("unauthorized", f"the JWS url header {header.get('url')!r} is not this request's URL {url}",
                          403)
    has_jwk, has_kid = "jwk" in header, "kid" in header
    if has_jwk == has_kid:
        raise malformed("the JWS protected header must have exactly one of jwk and kid")
    if jwk_only and not has_jwk:
        raise malformed("this request must be signed with a jwk (the key itself), not a kid")
    if kid_only and not jwk_only and not has_kid:
        raise malformed("this request must be signed with the account's kid (its URL), not a jwk")
    if has_jwk:
        key, kid = key_from_json(header["jwk"]), None
    else:
        kid = header["kid"]
        if not isinstance(kid, str):
            raise malformed("the JWS kid must be the account URL")
        key = account_key(kid)
    check_signature(parsed, header, key)
    return Verified(parsed.payload, key, kid, header)
