"""Errors a rule raises; each names the gRPC status code it is answered with (`code`)."""


class DomainError(Exception):
    """A request the node refuses; the message says which field or rule and why."""

    code = "FAILED_PRECONDITION"


class InvalidArgument(DomainError):
    """A field breaks a rule of its own (empty, too long, unknown value)."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(DomainError):
    """The thing named does not exist, or the caller may not know that it does."""

    code = "NOT_FOUND"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found")


class PermissionDenied(DomainError):
    """The caller is known but its role does not allow the call."""

    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """No valid token came with the call."""

    code = "UNAUTHENTICATED"


class FailedPrecondition(DomainError):
    """The call is well formed but the ticket's state does not allow it."""


class AlreadyExists(DomainError):
    """The thing to create exists already, with other content."""

    code = "ALREADY_EXISTS"


class Unavailable(DomainError):
    """The node cannot serve now (its database is down or locked); the call may be retried."""

    code = "UNAVAILABLE"
