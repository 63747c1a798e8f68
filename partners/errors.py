"""Domain errors: each has a stable `code`; the API maps them to HTTP in one table."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "domain_error"
    title = "Request refused"

    def __init__(self, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.param = param


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Invalid(DomainError):
    code = "invalid"
    title = "Invalid request"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_request_in_progress"
    title = "Request still in progress"


class Unavailable(DomainError):
    code = "unavailable"
    title = "Not ready"
