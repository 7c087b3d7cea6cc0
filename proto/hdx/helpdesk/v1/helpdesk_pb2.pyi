import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TicketType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TICKET_TYPE_UNSPECIFIED: _ClassVar[TicketType]
    TICKET_TYPE_INCIDENT: _ClassVar[TicketType]
    TICKET_TYPE_SERVICE_REQUEST: _ClassVar[TicketType]
    TICKET_TYPE_ALERT: _ClassVar[TicketType]

class Level(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEVEL_UNSPECIFIED: _ClassVar[Level]
    LEVEL_LOW: _ClassVar[Level]
    LEVEL_MEDIUM: _ClassVar[Level]
    LEVEL_HIGH: _ClassVar[Level]
    LEVEL_CRITICAL: _ClassVar[Level]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_P1: _ClassVar[Priority]
    PRIORITY_P2: _ClassVar[Priority]
    PRIORITY_P3: _ClassVar[Priority]
    PRIORITY_P4: _ClassVar[Priority]

class Visibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIBILITY_UNSPECIFIED: _ClassVar[Visibility]
    VISIBILITY_PUBLIC: _ClassVar[Visibility]
    VISIBILITY_INTERNAL: _ClassVar[Visibility]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_REQUESTER: _ClassVar[Role]
    ROLE_AGENT: _ClassVar[Role]
    ROLE_SUPERVISOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
TICKET_TYPE_UNSPECIFIED: TicketType
TICKET_TYPE_INCIDENT: TicketType
TICKET_TYPE_SERVICE_REQUEST: TicketType
TICKET_TYPE_ALERT: TicketType
LEVEL_UNSPECIFIED: Level
LEVEL_LOW: Level
LEVEL_MEDIUM: Level
LEVEL_HIGH: Level
LEVEL_CRITICAL: Level
PRIORITY_UNSPECIFIED: Priority
PRIORITY_P1: Priority
PRIORITY_P2: Priority
PRIORITY_P3: Priority
PRIORITY_P4: Priority
VISIBILITY_UNSPECIFIED: Visibility
VISIBILITY_PUBLIC: Visibility
VISIBILITY_INTERNAL: Visibility
ROLE_UNSPECIFIED: Role
ROLE_REQUESTER: Role
ROLE_AGENT: Role
ROLE_SUPERVISOR: Role
ROLE_ADMIN: Role
ROLE_SYSTEM: Role

class Ticket(_message.Message):
    __slots__ = ("key", "title", "description", "type", "category", "requester", "store", "impact", "urgency", "priority", "stop_trade", "status", "assignee", "co_assignees", "group", "created_at", "updated_at", "resolved_at", "closed_at", "transitions")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STOP_TRADE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    CO_ASSIGNEES_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    key: str
    title: str
    description: str
    type: TicketType
    category: str
    requester: str
    store: str
    impact: Level
    urgency: Level
    priority: Priority
    stop_trade: bool
    status: str
    assignee: str
    co_assignees: _containers.RepeatedScalarFieldContainer[str]
    group: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    transitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., type: _Optional[_Union[TicketType, str]] = ..., category: _Optional[str] = ..., requester: _Optional[str] = ..., store: _Optional[str] = ..., impact: _Optional[_Union[Level, str]] = ..., urgency: _Optional[_Union[Level, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., stop_trade: _Optional[bool] = ..., status: _Optional[str] = ..., assignee: _Optional[str] = ..., co_assignees: _Optional[_Iterable[str]] = ..., group: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transitions: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateTicketRequest(_message.Message):
    __slots__ = ("request_id", "category", "title", "description", "store", "type", "impact", "urgency", "requester")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    category: str
    title: str
    description: str
    store: str
    type: TicketType
    impact: Level
    urgency: Level
    requester: str
    def __init__(self, request_id: _Optional[str] = ..., category: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., store: _Optional[str] = ..., type: _Optional[_Union[TicketType, str]] = ..., impact: _Optional[_Union[Level, str]] = ..., urgency: _Optional[_Union[Level, str]] = ..., requester: _Optional[str] = ...) -> None: ...

class GetTicketRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class ListTicketsRequest(_message.Message):
    __slots__ = ("statuses", "assignee", "group", "store", "category", "priority", "stop_trade_only", "include_closed", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STOP_TRADE_ONLY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[str]
    assignee: str
    group: str
    store: str
    category: str
    priority: Priority
    stop_trade_only: bool
    include_closed: bool
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[str]] = ..., assignee: _Optional[str] = ..., group: _Optional[str] = ..., store: _Optional[str] = ..., category: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., stop_trade_only: _Optional[bool] = ..., include_closed: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTicketsResponse(_message.Message):
    __slots__ = ("tickets", "next_page_token")
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tickets: _containers.RepeatedCompositeFieldContainer[Ticket]
    next_page_token: str
    def __init__(self, tickets: _Optional[_Iterable[_Union[Ticket, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTicketRequest(_message.Message):
    __slots__ = ("key", "title", "description", "category", "impact", "urgency", "priority", "type")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    title: str
    description: str
    category: str
    impact: Level
    urgency: Level
    priority: Priority
    type: TicketType
    def __init__(self, key: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., category: _Optional[str] = ..., impact: _Optional[_Union[Level, str]] = ..., urgency: _Optional[_Union[Level, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., type: _Optional[_Union[TicketType, str]] = ...) -> None: ...

class TransitionTicketRequest(_message.Message):
    __slots__ = ("key", "transition", "reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: str
    transition: str
    reason: str
    def __init__(self, key: _Optional[str] = ..., transition: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AssignTicketRequest(_message.Message):
    __slots__ = ("key", "assignee", "group", "co_assignees")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CO_ASSIGNEES_FIELD_NUMBER: _ClassVar[int]
    key: str
    assignee: str
    group: str
    co_assignees: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., assignee: _Optional[str] = ..., group: _Optional[str] = ..., co_assignees: _Optional[_Iterable[str]] = ...) -> None: ...

class Comment(_message.Message):
    __slots__ = ("id", "ticket_key", "author", "visibility", "body", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_KEY_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    ticket_key: str
    author: str
    visibility: Visibility
    body: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., ticket_key: _Optional[str] = ..., author: _Optional[str] = ..., visibility: _Optional[_Union[Visibility, str]] = ..., body: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AddCommentRequest(_message.Message):
    __slots__ = ("key", "body", "visibility")
    KEY_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    key: str
    body: str
    visibility: Visibility
    def __init__(self, key: _Optional[str] = ..., body: _Optional[str] = ..., visibility: _Optional[_Union[Visibility, str]] = ...) -> None: ...

class ListCommentsRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class ListCommentsResponse(_message.Message):
    __slots__ = ("comments",)
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    comments: _containers.RepeatedCompositeFieldContainer[Comment]
    def __init__(self, comments: _Optional[_Iterable[_Union[Comment, _Mapping]]] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("id", "ticket_key", "at", "actor", "action", "field", "before", "after")
    ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_KEY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    id: int
    ticket_key: str
    at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    field: str
    before: str
    after: str
    def __init__(self, id: _Optional[int] = ..., ticket_key: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., field: _Optional[str] = ..., before: _Optional[str] = ..., after: _Optional[str] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class WatchTicketsRequest(_message.Message):
    __slots__ = ("after_event_id", "key")
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    after_event_id: int
    key: str
    def __init__(self, after_event_id: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class TicketEvent(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: HistoryEntry
    def __init__(self, entry: _Optional[_Union[HistoryEntry, _Mapping]] = ...) -> None: ...

class Category(_message.Message):
    __slots__ = ("code", "name", "type", "group", "stop_trade", "impact", "urgency")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    STOP_TRADE_FIELD_NUMBER: _ClassVar[int]
    IMPACT_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    type: TicketType
    group: str
    stop_trade: bool
    impact: Level
    urgency: Level
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[TicketType, str]] = ..., group: _Optional[str] = ..., stop_trade: _Optional[bool] = ..., impact: _Optional[_Union[Level, str]] = ..., urgency: _Optional[_Union[Level, str]] = ...) -> None: ...

class ListCategoriesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCategoriesResponse(_message.Message):
    __slots__ = ("categories",)
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedCompositeFieldContainer[Category]
    def __init__(self, categories: _Optional[_Iterable[_Union[Category, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Identity(_message.Message):
    __slots__ = ("login", "name", "role", "store")
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    login: str
    name: str
    role: Role
    store: str
    def __init__(self, login: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., store: _Optional[str] = ...) -> None: ...
