"""Signed envelopes: a body's bytes as sent, the signature over them, the signing key's id.

A body is serialised once, by its sender; its digest (SHA-256 of those bytes) is
what the next event on the link chains to and what the receipt names. A receiver
verifies the signature over the bytes before it parses them.
"""

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.identity import Identity, verify

M = TypeVar("M", bound=Message)
MAX_BODY_BYTES = 256 * 1024
"""The largest event body accepted (an attachment included)."""
MAX_MESSAGE_BYTES = 64 * MAX_BODY_BYTES
"""The largest gRPC message either side of a call takes: a batch of envelopes."""
_FIELD_BYTES = 16
"""What a repeated envelope costs in a message beside its own bytes (tag and length), at most."""


class Refused(Exception):
    """An envelope or event the receiver will not take.

    Attributes:
        code: the gRPC status code's name (e.g. 'UNAUTHENTICATED').
        expected_seq: on a gap, the sequence number the receiver waits for.
    """

    def __init__(self, code: str, message: str, expected_seq: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.expected_seq = expected_seq


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def seal(identity: Identity, body: Message) -> pb.Envelope:
    """body serialised once and signed with the node's current key."""
    data = body.SerializeToString(deterministic=True)
    return pb.Envelope(body=data, signature=identity.sign(data), key_id=identity.key_id)


def fitting(envelopes: Sequence[bytes]) -> int:
    """How many of the serialised envelopes, from the first, fit in one message (at least
    one: an envelope of a body within MAX_BODY_BYTES always does)."""
    total = 0
    for count, envelope in enumerate(envelopes):
        total += len(envelope) + _FIELD_BYTES
        if total > MAX_MESSAGE_BYTES:
            return max(count, 1)
    return len(envelopes)


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def instant(stamp: Timestamp) -> datetime:
    """The instant of a timestamp on the wire, in UTC."""
    return stamp.ToDatetime(tzinfo=UTC)


def deadlines_of(deadlines: pb.Deadlines) -> tuple[datetime | None, datetime | None]:
    """(respond by, resolve by) of deadlines on the wire, None where unset."""
    respond_by = instant(deadlines.respond_by) if deadlines.HasField("respond_by") else None
    resolve_by = instant(deadlines.resolve_by) if deadlines.HasField("resolve_by") else None
    return respond_by, resolve_by


def opened(
    envelope: pb.Envelope, key: Callable[[str], tuple[str, bytes] | None], kind: type[M]
) -> tuple[str, M]:
    """The signer's node id and the body, once the signature over the bytes verifies.

    Args:
        key: (node id, public key) of a key id, None for a key this node does not know.

    Raises:
        Refused: oversized (RESOURCE_EXHAUSTED), unknown key or bad signature
            (UNAUTHENTICATED), or bytes that do not parse (INVALID_ARGUMENT).
    """
    if len(envelope.body) > MAX_BODY_BYTES:
        raise Refused(
            "RESOURCE_EXHAUSTED", f"body: {len(envelope.body)} bytes, at most {MAX_BODY_BYTES}"
        )
    found = key(envelope.key_id)
    if found is None:
        raise Refused("UNAUTHENTICATED", f"key_id: no partner key {envelope.key_id!r}")
    signer, public_key = found
    if not verify(public_key, envelope.signature, envelope.body):
        raise Refused("UNAUTHENTICATED", "signature: does not verify over the body's bytes")
    body = kind()
    try:
        body.ParseFromString(envelope.body)
    except DecodeError:
        raise Refused("INVALID_ARGUMENT", "body: not a valid message") from None
    return signer, body
