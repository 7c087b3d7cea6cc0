"""Field rules: what a caller may send as a title, description, comment, code, request id,
key prefix or ticket key; every refusal is an InvalidArgument naming the field."""

import string
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain import validation
from node.domain.errors import InvalidArgument

LINE_BREAKS = [
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x85",
    "\u2028",
    "\u2029",
]
CONTROLS = ["\x00", "\x07", "\x08", "\x1b", "\x7f", "\x9b"]


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


def refused(field: str, call: Callable[[], object]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as error:
        call()
    assert error.value.field == field
    return error.value


# --- free text ---------------------------------------------------------------------------------


@settings(max_examples=300)
@given(value=st.text(max_size=validation.TITLE_MAX + 20))
def test_a_title_is_one_clean_line_or_refused(value: str) -> None:
    try:
        title = validation.title(value)
    except InvalidArgument as error:
        assert error.field == "title"
        return
    assert title == value.strip()
    assert 1 <= len(title) <= validation.TITLE_MAX
    assert len(title.splitlines()) == 1, "a title is one line"
    assert not any(is_control(ch) for ch in title)


@given(value=st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Zl", "Zp"])))
def test_a_title_of_printable_text_is_kept_stripped(value: str) -> None:
    stripped = value.strip()
    if stripped and len(stripped) <= validation.TITLE_MAX:
        assert validation.title(value) == stripped
    else:
        refused("title", lambda: validation.title(value))


@pytest.mark.parametrize("blank", ["", " ", "\t", "\n", " \r\n ", "\u3000"])
def test_an_empty_title_is_refused(blank: str) -> None:
    error = refused("title", lambda: validation.title(blank))
    assert "empty" in error.rule


def test_a_title_may_be_as_long_as_the_limit_and_no_longer() -> None:
    longest = "x" * validation.TITLE_MAX
    assert validation.title(longest) == longest
    assert validation.title(f"  {longest}  ") == longest, "surrounding blanks do not count"
    error = refused("title", lambda: validation.title(longest + "x"))
    assert str(validation.TITLE_MAX) in error.rule


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[hex(ord(b[-1])) for b in LINE_BREAKS])
def test_a_title_with_a_line_break_inside_is_refused(brk: str) -> None:
    refused("title", lambda: validation.title(f"POS{brk}does not work"))


@pytest.mark.parametrize("ch", CONTROLS, ids=[hex(ord(c)) for c in CONTROLS])
def test_control_characters_are_refused_in_every_text(ch: str) -> None:
    refused("title", lambda: validation.title(f"POS {ch}down"))
    refused("description", lambda: validation.description(f"POS {ch}down"))
    refused("body", lambda: validation.comment_body(f"POS {ch}down"))
    refused("reason", lambda: validation.reason(f"POS {ch}down", required=False))


def test_a_title_keeps_non_latin_text_and_inner_spaces() -> None:
    assert validation.title(" レジ №3 が動かない  ☕ ") == "レジ №3 が動かない  ☕"


def test_a_description_may_be_empty_and_span_lines() -> None:
    assert validation.description("") == ""
    assert validation.description("   ") == ""
    text = "Till 3:\n\t- no card payments\r\n\t- printer jams"
    assert validation.description(f"\n{text}\n") == text


def test_a_description_has_a_limit() -> None:
    longest = "y" * validation.TEXT_MAX
    assert validation.description(longest) == longest
    refused("description", lambda: validation.description(longest + "y"))


@pytest.mark.parametrize("blank", ["", "  ", "\n\n"])
def test_a_comment_must_say_something(blank: str) -> None:
    refused("body", lambda: validation.comment_body(blank))


def test_a_comment_may_span_lines_up_to_a_limit() -> None:
    assert validation.comment_body(" part ordered\nETA Friday ") == "part ordered\nETA Friday"
    refused("body", lambda: validation.comment_body("z" * (validation.TEXT_MAX + 1)))


def test_a_reason_is_required_only_when_asked() -> None:
    assert validation.reason("  ", required=False) == ""
    refused("reason", lambda: validation.reason("  ", required=True))
    assert validation.reason(" still broken ", required=True) == "still broken"
    refused("reason", lambda: validation.reason("r" * (validation.REASON_MAX + 1), required=False))


@settings(max_examples=200)
@given(value=st.text(max_size=60), multiline=st.booleans(), required=st.booleans())
def test_free_text_is_returned_clean_or_refused_naming_its_field(
    value: str, multiline: bool, required: bool
) -> None:
    try:
        result = validation.text("note", value, max_len=40, required=required, multiline=multiline)
    except InvalidArgument as error:
        assert error.field == "note"
        return
    assert result == value.strip()
    assert len(result) <= 40
    assert result or not required
    allowed = "\n\t\r" if multiline else ""
    assert not any(is_control(ch) and ch not in allowed for ch in result)
    if not multiline:
        assert len(result.splitlines()) <= 1


# --- codes, request ids, key prefixes, ticket keys ----------------------------------------------

CODE_CHARS = set(string.ascii_lowercase + string.digits + "._-")
codes = st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,63}", fullmatch=True)


@given(value=codes)
def test_a_valid_code_is_kept(value: str) -> None:
    assert validation.code("category", value) == value


@settings(max_examples=300)
@given(value=st.text(max_size=70) | codes.map(lambda c: c + "\n") | codes.map(str.upper))
def test_a_code_is_kept_or_refused_naming_its_field(value: str) -> None:
    try:
        result = validation.code("store", value)
    except InvalidArgument as error:
        assert error.field == "store"
        return
    assert result == value
    assert 1 <= len(result) <= 64
    assert set(result) <= CODE_CHARS
    assert result[0] not in "._-"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "POS-down",
        "-pos",
        ".pos",
        "_pos",
        "pos down",
        "pos\n",
        "\u043f\u043e\u0441",
        "p" * 65,
        "pos/1",
    ],
)
def test_malformed_codes_are_refused(bad: str) -> None:
    refused("category", lambda: validation.code("category", bad))


request_ids = st.from_regex(r"[A-Za-z0-9._:\-]{1,128}", fullmatch=True)


@given(value=request_ids | st.just(""))
def test_a_valid_request_id_is_kept(value: str) -> None:
    assert validation.request_id(value) == value


@settings(max_examples=200)
@given(value=st.text(max_size=140) | request_ids.map(lambda r: r + "\n"))
def test_a_request_id_is_kept_or_refused(value: str) -> None:
    try:
        result = validation.request_id(value)
    except InvalidArgument as error:
        assert error.field == "request_id"
        return
    assert result == value
    assert len(result) <= validation.REQUEST_ID_MAX
    assert set(result) <= set(string.ascii_letters + string.digits + "._:-")


def test_a_request_id_has_a_limit() -> None:
    assert validation.request_id("a" * validation.REQUEST_ID_MAX)
    refused("request_id", lambda: validation.request_id("a" * (validation.REQUEST_ID_MAX + 1)))
    refused("request_id", lambda: validation.request_id("pos 1"))


prefixes = st.from_regex(r"[A-Z][A-Z0-9]{0,9}", fullmatch=True)


@given(value=prefixes)
def test_a_valid_key_prefix_is_kept(value: str) -> None:
    assert validation.key_prefix(value) == value


@given(value=st.text(max_size=14) | prefixes.map(str.lower) | prefixes.map(lambda p: p + "\n"))
def test_a_key_prefix_is_kept_or_refused(value: str) -> None:
    try:
        result = validation.key_prefix(value)
    except InvalidArgument as error:
        assert error.field == "key_prefix"
        return
    assert result == value
    assert 1 <= len(result) <= 10
    assert result[0] in string.ascii_uppercase
    assert set(result) <= set(string.ascii_uppercase + string.digits)


@pytest.mark.parametrize("bad", ["", "ret", "1RET", "RET-", "RETAILNODE1", "R E", "RÉT"])
def test_malformed_key_prefixes_are_refused(bad: str) -> None:
    refused("key_prefix", lambda: validation.key_prefix(bad))


@given(prefix=prefixes, number=st.integers(1, 10**18 - 1))
def test_a_ticket_key_gives_back_its_number(prefix: str, number: int) -> None:
    assert validation.ticket_number(f"{prefix}-{number}", prefix) == number


@given(prefix=prefixes, other=prefixes, number=st.integers(1, 10**6))
def test_a_key_of_another_node_is_refused(prefix: str, other: str, number: int) -> None:
    if other != prefix:
        error = refused("key", lambda: validation.ticket_number(f"{other}-{number}", prefix))
        assert prefix in error.rule


@settings(max_examples=300)
@given(
    key=st.text(max_size=30)
    | st.builds(lambda n, s: f"RET-{n}{s}", st.integers(-5, 10**20), st.text(max_size=3)),
)
def test_a_ticket_key_is_read_only_in_its_one_canonical_form(key: str) -> None:
    try:
        number = validation.ticket_number(key, "RET")
    except InvalidArgument as error:
        assert error.field == "key"
        return
    assert number >= 1
    assert key == f"RET-{number}", "one ticket, one key: no zeros, blanks or foreign digits"


@pytest.mark.parametrize(
    "bad",
    ["RET-0", "RET-01", "RET-", "RET-1 ", " RET-1", "ret-1", "RET-\u0661", "RET--1", "RET-1a"],
)
def test_malformed_ticket_keys_are_refused(bad: str) -> None:
    refused("key", lambda: validation.ticket_number(bad, "RET"))


def test_a_page_size_is_bounded_and_zero_means_the_default() -> None:
    assert validation.page_size(0, default=25) == 25
    assert validation.page_size(7) == 7
    assert validation.page_size(validation.PAGE_SIZE_MAX) == validation.PAGE_SIZE_MAX
    refused("page_size", lambda: validation.page_size(-1))
    refused("page_size", lambda: validation.page_size(validation.PAGE_SIZE_MAX + 1))
