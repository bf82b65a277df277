"""What a use case refuses, said once for every door (API, UI, CLI): each error's message says
what is wrong and what to do. The web maps them to 404, 422 and 409; the UI shows the message."""

from __future__ import annotations


class UseCaseError(Exception):
    """A request refused as it stands; `message` is for the person who made it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(UseCaseError):
    """No such object in the caller's org (another org's ids are not found either)."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"{kind} {object_id!r} not found")
        self.kind = kind
        self.object_id = object_id


class Invalid(UseCaseError):
    """One field's value cannot be used; the message starts with the field's name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class Conflict(UseCaseError):
    """The request collides with an object that exists (an account connected twice, say)."""
