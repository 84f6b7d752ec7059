"""The test PKI and the token issuer: the certificates the emulator serves, the JWTs the sidecar presents.

`Pki` makes a throw-away CA and a server certificate for localhost, so the
sidecar talks real TLS to the emulator and "wrong CA" cases can be exercised.
`Issuer` mints RS256 JWTs shaped like Kubernetes projected service-account
tokens. The base64url and claim helpers are shared with the emulator, which
verifies what the issuer signs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The audience CoreWeave's OIDC federation expects (interface.md, seed documents).
AUDIENCE = "https://coreweave.com/iam"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(part: str) -> bytes:
    # Strict on purpose: urlsafe_b64decode silently drops characters outside the
    # alphabet, which would let "Bearer eyJ..." decode as if it were a JWT.
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _decode_claims_unverified(token: Optional[str]) -> dict:
    """Best-effort claims of a JWT, for records only (never for decisions)."""
    if not token:
        return {}
    if token.startswith("Bearer "):
        token = token[len("Bearer "):]
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_pem(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


# ---------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------

class Pki:
    """A test CA, a server certificate for localhost/127.0.0.1 signed by it, and an unrelated CA.

    EC P-256 keeps generation fast. The extensions follow what strict verifiers
    (OpenSSL 3 with X509_STRICT, Go, rustls) insist on, so a TLS failure in a test
    means the sidecar is wrong, not the certificates.
    """

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.dir / "ca.pem"
        self.cert_file = self.dir / "server.pem"
        self.key_file = self.dir / "server-key.pem"
        self.other_ca_file = self.dir / "other-ca.pem"

        self.ca_key, self.ca_cert = self._make_ca("cwcreds test CA")
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._make_server_cert(server_key)
        _, self.other_ca_cert = self._make_ca("cwcreds unrelated test CA")

        _write_pem(self.ca_file, self.ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_pem(self.cert_file, self.cert.public_bytes(serialization.Encoding.PEM))
        _write_pem(
            self.key_file,
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            private=True,
        )
        _write_pem(self.other_ca_file, self.other_ca_cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
        # Backdated a day so a slightly skewed CI clock cannot make it "not yet valid".
        now = _utcnow()
        return builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(
            now + dt.timedelta(days=30)
        )

    def _make_ca(self, common_name: str):
        key = ec.generate_private_key(ec.SECP256R1())
        # A random serial in the name keeps two CAs from different runs distinct.
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cwcreds tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} {secrets.token_hex(4)}"),
        ])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        return key, self._validity(builder).sign(key, hashes.SHA256())

    def _make_server_cert(self, key) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(
                x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
        )
        return self._validity(builder).sign(self.ca_key, hashes.SHA256())


# ---------------------------------------------------------------------------
# Token issuer
# ---------------------------------------------------------------------------

class Issuer:
    """An OIDC issuer that mints RS256 tokens shaped like Kubernetes projected SA tokens."""

    def __init__(self, issuer: str = "https://oidc.cwcreds-test.invalid/abc123"):
        self.issuer = issuer
        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._private_key.public_key()
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # A stable key id derived from the key, like kube-apiserver does.
        self.kid = _b64url(hashlib.sha256(der).digest()[:16])

    def mint(
        self,
        sub: str = "system:serviceaccount:default:app",
        aud=AUDIENCE,
        lifetime: float = 3600,
        iat: Optional[float] = None,
        **extra_claims: Any,
    ) -> str:
        """A signed compact JWT. `lifetime` may be negative (an already-expired token).

        `extra_claims` are added or override defaults; a value of None removes
        the claim, e.g. `mint(exp=None)` for a token without expiry.
        """
        issued = int(time.time() if iat is None else iat)
        claims: dict = {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "iat": issued,
            "nbf": issued,
            "exp": int(issued + lifetime),
            "jti": str(uuid.uuid4()),
        }
        # Real tokens carry this nested object; a claim decoder must cope with it.
        parts = sub.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            claims["kubernetes.io"] = {
                "namespace": parts[2],
                "serviceaccount": {"name": parts[3], "uid": str(uuid.uuid4())},
            }
        for name, value in extra_claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def jwks(self) -> dict:
        """The public key as a JWKS document (what the issuer's discovery URL would serve)."""
        numbers = self.public_key.public_numbers()

        def encode_int(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                          "n": encode_int(numbers.n), "e": encode_int(numbers.e)}]}
