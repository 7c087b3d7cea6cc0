"""Page tokens: a token continues a listing exactly where the last page ended, and anything
that is not a token this node gave out is refused as an invalid page_token."""

import base64
import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain import paging
from node.domain.errors import InvalidArgument
from node.domain.ticket import FAR_FUTURE, Priority, QueuePosition

offsets = st.one_of(
    st.just(UTC),
    st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m))),
    st.timedeltas(-timedelta(hours=23), timedelta(hours=23)).map(timezone),
    st.timezones(),
)
instants = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=offsets
)
positions = st.builds(
    QueuePosition,
    stop_trade=st.booleans(),
    due_at=st.one_of(instants, st.just(FAR_FUTURE)),
    priority=st.sampled_from(list(Priority)),
    created_at=instants,
    id=st.integers(min_value=0, max_value=2**63 - 1),
)


def utc(at: datetime) -> datetime:
    """The instant as a naive UTC datetime, comparable across zones and folds."""
    offset = at.utcoffset()
    assert offset is not None
    return at.replace(tzinfo=None) - offset


def as_token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@settings(max_examples=300)
@given(position=positions)
def test_a_token_gives_back_the_position_it_was_made_from(position: QueuePosition) -> None:
    back = paging.decode(paging.encode(position))
    assert back.stop_trade is position.stop_trade
    assert back.priority is position.priority
    assert back.id == position.id
    assert utc(back.created_at) == utc(position.created_at)
    assert utc(back.due_at) == utc(position.due_at)


@given(position=positions)
def test_a_token_is_url_safe(position: QueuePosition) -> None:
    token = paging.encode(position)
    assert token
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")


@given(a=positions, b=positions)
def test_different_positions_give_different_tokens(a: QueuePosition, b: QueuePosition) -> None:
    same = (
        a.stop_trade,
        utc(a.due_at),
        a.priority,
        a.id,
        utc(a.created_at),
        a.created_at.utcoffset(),
    ) == (
        b.stop_trade,
        utc(b.due_at),
        b.priority,
        b.id,
        utc(b.created_at),
        b.created_at.utcoffset(),
    )
    assert (paging.encode(a) == paging.encode(b)) == same


def check_refused_or_position(token: str) -> None:
    try:
        position = paging.decode(token)
    except InvalidArgument as error:
        assert error.field == "page_token"
        return
    assert isinstance(position, QueuePosition)
    assert isinstance(position.stop_trade, bool)
    assert position.priority in set(Priority)
    assert type(position.id) is int
    assert position.created_at.utcoffset() is not None, "positions are aware instants"


@settings(max_examples=300)
@given(token=st.text(max_size=80))
def test_any_string_is_a_position_or_an_invalid_page_token(token: str) -> None:
    check_refused_or_position(token)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
near_tokens = st.one_of(
    json_values.map(json.dumps),
    st.lists(
        st.one_of(
            json_values,
            st.sampled_from([0, 1, 2, 4, 5, True, -1, 1.5, "2026-11-23T09:12:00+00:00"]),
            st.datetimes().map(datetime.isoformat),
            st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
        ),
        min_size=3,
        max_size=5,
    ).map(json.dumps),
)


@settings(max_examples=150)
@given(raw=near_tokens)
def test_a_well_encoded_but_wrong_payload_is_refused(raw: str) -> None:
    check_refused_or_position(as_token(raw.encode()))


@given(raw=st.binary(max_size=60))
def test_arbitrary_bytes_are_refused(raw: bytes) -> None:
    check_refused_or_position(as_token(raw))


@given(position=positions, cut=st.integers(1, 12))
def test_a_truncated_token_is_refused(position: QueuePosition, cut: int) -> None:
    token = paging.encode(position)
    check_refused_or_position(token[: max(0, len(token) - cut)])


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "ëëë",
        "a",
        as_token(b'[1,1,"2026-11-23T09:12:00",5]'),  # naive time
        as_token(b'[2,1,"2026-11-23T09:12:00+00:00",5]'),  # stop_trade not 0/1
        as_token(b'[0,9,"2026-11-23T09:12:00+00:00",5]'),  # no such priority
        as_token(b'[0,1,"2026-11-23T09:12:00+00:00","5"]'),  # id not a number
        as_token(b'[0,1,"2026-11-23T09:12:00+00:00",true]'),  # id not a number
        as_token(b'[0,1,"2026-11-23T09:12:00+00:00"]'),  # too short
        as_token(b'[0,1,"2026-11-23T09:12:00+00:00",5,6]'),  # too long
        as_token(b'{"a":1}'),
        as_token(b"\xff\xfe"),
        as_token(b"[" * 50_000),
        as_token(b"[" * 50_000 + b"]" * 50_000),
    ],
)
def test_tokens_this_node_did_not_give_out_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        paging.decode(token)
    assert refused.value.field == "page_token"


def test_a_position_after_another_in_queue_order_survives_the_trip() -> None:
    """The fields the queue is ordered by come back in the same order."""
    at = datetime(2026, 11, 23, 9, 12, tzinfo=UTC)
    first = QueuePosition(True, at + timedelta(hours=4), Priority.P1, at, 7)
    later = QueuePosition(False, FAR_FUTURE, Priority.P3, at + timedelta(microseconds=1), 8)

    def key(p: QueuePosition) -> tuple[bool, datetime, int, datetime, int]:
        return (not p.stop_trade, p.due_at, int(p.priority), p.created_at, p.id)

    a, b = paging.decode(paging.encode(first)), paging.decode(paging.encode(later))
    assert key(a) < key(b)
    assert (a, b) == (first, later)
