"""Receipts: what a receiver signs for the events it applied, once per call.

The receiver builds a Merkle tree over the `Received` of every event it applied from
one call, in order, and signs its root (`ReceiptBody`). Each event's `Receipt`
carries that signed root, the event, its position and the hashes beside the way from
its leaf up: it proves on its own, in either node's log, that the receiver got that
event at that instant. So a batch of events costs the receiver one signature and the
sender one verification, where a receipt signed per event costs one each per event.

The tree: a leaf is SHA-256 of 0x00 and the Received's bytes, a node SHA-256 of 0x01
and its two children's hashes (the prefixes keep a leaf from passing for a node); a
level with an odd count sends its last node up as it is. The signed body names the
leaf count, so a proof's shape is fixed by its position.
"""

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime

from google.protobuf.message import DecodeError
from hdx.exchange.v1 import exchange_pb2 as pb

from exchange.envelope import Refused, instant, opened, seal, timestamp
from exchange.identity import Identity

Verified = dict[tuple[str, bytes, bytes], tuple[str, pb.ReceiptBody]]
"""Signed roots verified already: (key id, body bytes, signature) → (signer, body)."""


def issue(identity: Identity, received: Sequence[pb.Received], at: datetime) -> list[pb.Receipt]:
    """The receipts of events received at `at`, in their order, under one signature."""
    leaves = [event.SerializeToString(deterministic=True) for event in received]
    levels = [[_leaf(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [_node(level[n], level[n + 1]) for n in range(0, len(level) - 1, 2)]
        levels.append(up + level[-1:] if len(level) % 2 else up)
    body = pb.ReceiptBody(
        receiver=identity.node_id, received_at=timestamp(at), root=levels[-1][0], count=len(leaves)
    )
    signed = seal(identity, body)
    receipts = []
    for index, leaf in enumerate(leaves):
        path, position = [], index
        for level in levels[:-1]:
            if position ^ 1 < len(level):
                path.append(level[position ^ 1])
            position //= 2
        receipts.append(pb.Receipt(signed=signed, event=leaf, index=index, path=path))
    return receipts


def proven(
    receipt: pb.Receipt, key: Callable[[str], tuple[str, bytes] | None], verified: Verified
) -> tuple[str, datetime, pb.Received]:
    """The signer of a receipt, the instant it names and the event it is for, once its
    signature verifies (or verified before: in `verified`) and its path leads from the
    event to the signed root.

    Raises:
        Refused: the signature does not verify (see `opened`), or the receipt does not
            prove its event (INVALID_ARGUMENT).
    """
    signed = receipt.signed
    seen = (signed.key_id, signed.body, signed.signature)
    known = verified.get(seen)
    if known is None:
        known = verified[seen] = opened(signed, key, pb.ReceiptBody)
    signer, body = known
    if body.receiver != signer:
        raise Refused("UNAUTHENTICATED", f"receiver: {body.receiver}, signed by {signer}")
    hashed, position, count, path = _leaf(receipt.event), receipt.index, body.count, receipt.path
    if position >= count:
        raise Refused("INVALID_ARGUMENT", f"index: {position}, of {count} events")
    taken = 0
    while count > 1:
        if position ^ 1 < count:
            if taken == len(path):
                raise Refused("INVALID_ARGUMENT", "path: too short")
            beside = path[taken]
            taken += 1
            hashed = _node(beside, hashed) if position & 1 else _node(hashed, beside)
        position, count = position // 2, (count + 1) // 2
    if taken != len(path) or hashed != body.root:
        raise Refused("INVALID_ARGUMENT", "path: does not lead from the event to the signed root")
    try:
        event = pb.Received.FromString(receipt.event)
    except DecodeError:
        raise Refused("INVALID_ARGUMENT", "event: not a valid message") from None
    return signer, instant(body.received_at), event


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()
