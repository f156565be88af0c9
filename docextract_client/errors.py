"""The one exception the client raises for an error answer: it carries the problem document."""

import httpx
from pydantic import ValidationError

from docextract_client.types import Problem


class DocextractError(Exception):
    """An error answer of the API (status >= 400), with its RFC 9457 problem document."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(f"{problem.status} {problem.title}: {problem.detail} ({problem.type})")

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str:
        return self.problem.detail

    @property
    def request_id(self) -> str | None:
        return self.problem.request_id

    @classmethod
    def from_response(cls, response: httpx.Response) -> "DocextractError":
        """The problem document of `response`; an answer that is not one (a proxy's HTML page) becomes
        an `about:blank` problem with the status and the start of the body."""
        try:
            problem = Problem.model_validate_json(response.content)
        except ValidationError:
            problem = Problem(
                status=response.status_code,
                title=response.reason_phrase,
                detail=response.text[:500],
                request_id=response.headers.get("x-request-id"),
            )
        return cls(problem)


class WaitTimeout(TimeoutError):
    """`wait` gave up before the job or training run ended; `last` is what the server said last."""

    def __init__(self, message: str, last: object) -> None:
        super().__init__(message)
        self.last = last
