"""Rules for the fields a caller sends: each failure names the field and the rule."""

import re

from node.domain.errors import InvalidArgument

TITLE_MAX = 200
TEXT_MAX = 20_000
REASON_MAX = 1_000
REQUEST_ID_MAX = 128
PAGE_SIZE_MAX = 500

_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]+")
_KEY = re.compile(r"([A-Z][A-Z0-9]{0,9})-([1-9][0-9]{0,17})")
_PREFIX = re.compile(r"[A-Z][A-Z0-9]{0,9}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters (Unicode category Cc: C0, DEL, C1) and line separators."""
_CONTROL_BUT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters but tab, line feed and carriage return."""


def _has_control(value: str, allow_newlines: bool) -> bool:
    """True for control characters (C0, DEL, C1), and for line separators in single-line text."""
    return (_CONTROL_BUT_NEWLINES if allow_newlines else _CONTROL).search(value) is not None


def text(field: str, value: str, *, max_len: int, required: bool, multiline: bool) -> str:
    """Checks free text and returns it stripped of surrounding white space.

    Raises:
        InvalidArgument: empty when required, longer than max_len, or with control characters.
    """
    value = value.strip()
    if required and not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidArgument(field, f"must be at most {max_len} characters, got {len(value)}")
    if _has_control(value, allow_newlines=multiline):
        what = "control characters" if multiline else "line breaks or control characters"
        raise InvalidArgument(field, f"must not contain {what}")
    return value


def title(value: str) -> str:
    return text("title", value, max_len=TITLE_MAX, required=True, multiline=False)


def description(value: str) -> str:
    return text("description", value, max_len=TEXT_MAX, required=False, multiline=True)


def comment_body(value: str) -> str:
    return text("body", value, max_len=TEXT_MAX, required=True, multiline=True)


def reason(value: str, *, required: bool) -> str:
    return text("reason", value, max_len=REASON_MAX, required=required, multiline=True)


def code(field: str, value: str) -> str:
    """A catalogue code or login: lower-case letters, digits, '.', '_', '-'; 1 to 64 long."""
    if not _CODE.fullmatch(value):
        raise InvalidArgument(
            field, "must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )
    return value


def request_id(value: str) -> str:
    if len(value) > REQUEST_ID_MAX:
        raise InvalidArgument("request_id", f"must be at most {REQUEST_ID_MAX} characters")
    if value and not _REQUEST_ID.fullmatch(value):
        raise InvalidArgument("request_id", "may hold only A-Z, a-z, 0-9, '.', '_', ':', '-'")
    return value


def key_prefix(value: str) -> str:
    """The node's ticket key prefix: an upper-case letter, then up to 9 letters or digits."""
    if not _PREFIX.fullmatch(value):
        raise InvalidArgument("key_prefix", "must be A-Z then up to 9 of A-Z, 0-9")
    return value


def ticket_number(key: str, prefix: str) -> int:
    """The ticket number in a human key such as RET-1042.

    Raises:
        InvalidArgument: the key is malformed or carries another node's prefix.
    """
    match = _KEY.fullmatch(key)
    if match is None:
        raise InvalidArgument("key", f"must look like {prefix}-123, got {key[:40]!r}")
    if match.group(1) != prefix:
        raise InvalidArgument("key", f"belongs to another node: this node's keys start {prefix}-")
    return int(match.group(2))


def page_size(value: int, default: int = 50) -> int:
    if value < 0 or value > PAGE_SIZE_MAX:
        raise InvalidArgument("page_size", f"must be between 0 and {PAGE_SIZE_MAX}")
    return value or default
