"""Page tokens: an opaque, URL-safe encoding of the last queue position a page showed."""

import base64
import binascii
import json
from datetime import UTC, datetime

from node.domain.errors import InvalidArgument
from node.domain.ticket import Priority, QueuePosition


def encode(position: QueuePosition) -> str:
    """The token that continues a listing after position."""
    raw = json.dumps(
        [
            int(position.stop_trade),
            position.due_at.astimezone(UTC).isoformat(),
            int(position.priority),
            position.created_at.astimezone(UTC).isoformat(),
            position.id,
        ],
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str) -> QueuePosition:
    """The position a token encodes.

    Raises:
        InvalidArgument: the token was not made by `encode`.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        stop_trade, due_at, priority, created_at, ticket_id = json.loads(
            base64.urlsafe_b64decode(padded.encode("ascii"))
        )
        due, at = datetime.fromisoformat(due_at), datetime.fromisoformat(created_at)
        if (
            stop_trade not in (0, 1)
            or type(ticket_id) is not int
            or not 0 <= ticket_id < 1 << 63  # fits a database bigint
            or at.tzinfo is None
            or due.tzinfo is None
        ):
            raise ValueError(token)
        return QueuePosition(bool(stop_trade), due, Priority(priority), at, ticket_id)
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError):
        raise InvalidArgument("page_token", "is not a token this node gave out") from None
