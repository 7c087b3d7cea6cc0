"""A node's identity on the exchange: its id, its Ed25519 signing keys, its TLS certificate.

Kept in the data directory, readable by the node's user only:

    keys/<key id>.pem   every signing key the node has had (PKCS#8); the newest signs
    keys/current        the id of the key that signs now
    tls/node.crt        a self-signed certificate partners pin (ECDSA P-256)
    tls/node.key

A key id is the first 16 hex digits of the SHA-256 of the raw public key. Old
keys stay on disk so events they signed keep verifying after `hdx keys rotate`
(exchange/keys.py: `new_key`, then the announcement, then `make_current`).
"""

import functools
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

TLS_NAME = "hdx-node"
"""The name in every node certificate; clients pin the certificate itself, so the name
only has to match what they expect."""
CERT_YEARS = 10
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def key_id(public_key: bytes) -> str:
    """The id of a raw Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def fingerprint(node_id: str, public_key: bytes, cert_pem: bytes) -> str:
    """What two admins read to each other before adding a partner: a digest of the node's
    id, its signing key and its certificate, as groups of four hex digits."""
    cert = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(b"\0".join([node_id.encode(), public_key, cert])).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def verify(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether signature is public_key's Ed25519 signature of data."""
    try:
        _public_key(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _public_key(public_key: bytes) -> Ed25519PublicKey:
    """The key of raw bytes, loaded once: loading costs a tenth of a verification."""
    return Ed25519PublicKey.from_public_bytes(public_key)


@dataclass(frozen=True)
class Identity:
    """The node's id, the key it signs with now, and its TLS certificate and key (PEM)."""

    node_id: str
    signing_key: Ed25519PrivateKey
    cert_pem: bytes
    tls_key_pem: bytes

    @functools.cached_property
    def public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes(*_RAW)

    @functools.cached_property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.node_id, self.public_key, self.cert_pem)

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data)


def create(data_dir: Path, node_id: str, now: datetime) -> Identity:
    """Makes a new node's first signing key and its TLS certificate."""
    make_current(data_dir, _write_key(data_dir, Ed25519PrivateKey.generate()))
    tls_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(tls_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * CERT_YEARS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(tls_key, hashes.SHA256())
    )
    tls = data_dir / "tls"
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private(tls / "node.key").write_bytes(
        tls_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tls / "node.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return load(data_dir, node_id)


def new_key(data_dir: Path) -> bytes:
    """Writes a new signing key beside the others without making it current (`hdx keys
    rotate` announces it to the partners first, signed by the current key).

    Returns:
        The new key's raw public key.
    """
    key = Ed25519PrivateKey.generate()
    _write_key(data_dir, key)
    return key.public_key().public_bytes(*_RAW)


def make_current(data_dir: Path, kid: str) -> None:
    """Makes the key kid the one that signs from now on (an atomic rename)."""
    current = data_dir / "keys" / "current.new"
    current.write_text(kid + "\n", encoding="ascii")
    os.replace(current, data_dir / "keys" / "current")


def load(data_dir: Path, node_id: str) -> Identity:
    """The identity `create` made (and `make_current` moved on to a newer key).

    Raises:
        FileNotFoundError: the data directory has no keys (made before the exchange).
    """
    return Identity(
        node_id=node_id,
        signing_key=_key(data_dir, current_key_id(data_dir)),
        cert_pem=(data_dir / "tls" / "node.crt").read_bytes(),
        tls_key_pem=(data_dir / "tls" / "node.key").read_bytes(),
    )


def own_keys(data_dir: Path) -> dict[str, bytes]:
    """Every signing key the node has had: key id → raw public key."""
    found = {}
    for path in sorted((data_dir / "keys").glob("*.pem")):
        public = _key(data_dir, path.stem).public_key().public_bytes(*_RAW)
        found[key_id(public)] = public
    return found


def current_key_id(data_dir: Path) -> str:
    """The id of the key that signs now.

    Raises:
        FileNotFoundError: the data directory has no keys.
    """
    return (data_dir / "keys" / "current").read_text(encoding="ascii").strip()


def _key(data_dir: Path, kid: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key((data_dir / "keys" / f"{kid}.pem").read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey), f"keys/{kid}.pem is not an Ed25519 key"
    return key


def _write_key(data_dir: Path, key: Ed25519PrivateKey) -> str:
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    kid = key_id(key.public_key().public_bytes(*_RAW))
    _private(keys / f"{kid}.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return kid


def _private(path: Path) -> Path:
    """path, created empty and readable by this user only."""
    path.touch(mode=0o600, exist_ok=False)
    return path
