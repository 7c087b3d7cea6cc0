"""Receipts signed once per call: each proves its own event against the signed root,
and no other."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hdx.exchange.v1 import exchange_pb2 as pb
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.envelope import Refused, digest
from exchange.identity import Identity
from exchange.receipts import Verified, issue, proven
from tests.conftest import START

RECEIVER = Identity("contractor-node", Ed25519PrivateKey.generate(), b"", b"")
KEYS = {RECEIVER.key_id: (RECEIVER.node_id, RECEIVER.public_key)}


def received(count: int, link: str = "link-1") -> list[pb.Received]:
    return [
        pb.Received(link=link, sender="retail-node", seq=n, digest=digest(str(n).encode()))
        for n in range(1, count + 1)
    ]


def check(receipt: pb.Receipt, verified: Verified | None = None) -> pb.Received:
    signer, at, event = proven(receipt, KEYS.get, {} if verified is None else verified)
    assert (signer, at) == (RECEIVER.node_id, START)
    return event


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=300))
def test_every_receipt_of_a_call_proves_its_own_event_with_one_signature(count: int) -> None:
    events = received(count)
    receipts = issue(RECEIVER, events, START)
    verified: Verified = {}
    assert [check(receipt, verified) for receipt in receipts] == events
    assert len(verified) == 1, "the call's signature is verified once"
    assert {receipt.signed.SerializeToString() for receipt in receipts} == {
        receipts[0].signed.SerializeToString()
    }


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=2, max_value=130), st.data())
def test_a_receipt_proves_no_other_event(count: int, data: st.DataObject) -> None:
    receipts = issue(RECEIVER, received(count), START)
    mine = data.draw(st.integers(min_value=0, max_value=count - 1))
    other = data.draw(st.integers(min_value=0, max_value=count - 1).filter(lambda n: n != mine))
    receipt = receipts[mine]
    forgeries = [
        pb.Receipt(
            signed=receipt.signed, event=receipts[other].event, index=mine, path=receipt.path
        ),
        pb.Receipt(signed=receipt.signed, event=receipt.event, index=other, path=receipt.path),
        pb.Receipt(signed=receipt.signed, event=receipt.event, index=mine, path=receipt.path[1:]),
        pb.Receipt(
            signed=receipt.signed,
            event=receipt.event,
            index=mine,
            path=[*receipt.path[:-1], bytes(32)],
        ),
        pb.Receipt(
            signed=receipt.signed, event=receipt.event, index=count + mine, path=receipt.path
        ),
    ]
    for forged in forgeries:
        with pytest.raises(Refused) as refused:
            check(forged)
        assert refused.value.code == "INVALID_ARGUMENT"


def test_a_receipt_under_another_calls_signature_does_not_prove() -> None:
    first, second = issue(RECEIVER, received(5), START), issue(RECEIVER, received(5, "l2"), START)
    swapped = pb.Receipt(signed=second[2].signed, event=first[2].event, index=2, path=first[2].path)
    with pytest.raises(Refused, match="does not lead from the event to the signed root"):
        check(swapped)


def test_a_receipt_signed_with_an_unknown_key_or_altered_is_unauthenticated() -> None:
    [receipt] = issue(RECEIVER, received(1), START)
    with pytest.raises(Refused) as unknown:
        proven(receipt, lambda _key_id: None, {})
    altered = pb.Receipt()
    altered.CopyFrom(receipt)
    altered.signed.body = altered.signed.body[:-1] + bytes([altered.signed.body[-1] ^ 1])
    with pytest.raises(Refused) as bad:
        check(altered)
    assert (unknown.value.code, bad.value.code) == ("UNAUTHENTICATED", "UNAUTHENTICATED")
