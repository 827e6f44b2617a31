"""The two JWT operations credentials need: read claims of an id_token, sign an RS256 assertion.

Claims are read *unverified*: the id_token comes straight from the provider's token endpoint over
TLS (or from our own 0600 file), and we only use it for display and routing hints, never for
access decisions. Signing uses `cryptography` so no JWT library is needed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, or {} when it is not one."""
    parts = token.split(".") if token else []
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def load_rsa_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parse a PEM private key (PKCS#8 or PKCS#1) and insist that it is RSA."""
    key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("service_account.private_key is not an RSA key")
    return key


def sign_rs256(claims: Mapping[str, Any], key: rsa.RSAPrivateKey, *, key_id: str = "") -> str:
    """A compact JWS (RS256, PKCS#1 v1.5 over SHA-256) of `claims`."""
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if key_id:
        header["kid"] = key_id
    signing_input = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":")).encode("utf-8")) for part in (header, dict(claims))
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def verify_rs256(token: str, public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """Verify an RS256 compact JWS and return its claims; raises `InvalidSignature`/`ValueError`."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    if header.get("alg") != "RS256":
        raise ValueError("not an RS256 token")
    public_key.verify(
        b64url_decode(signature_b64),
        f"{header_b64}.{payload_b64}".encode("ascii"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    claims: dict[str, Any] = json.loads(b64url_decode(payload_b64))
    return claims
