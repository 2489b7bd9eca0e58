"""RFC 7807 problem documents with RFC 8555's error types (section 6.7).

Every refusal in :mod:`devcert.acme` is an :class:`~devcert.errors.AcmeProblem`; the server
turns it into ``application/problem+json`` here. Clients branch on the type (certbot and lego
retry a ``badNonce`` with the fresh nonce of the error response), so each helper fixes the
type and the status code RFC 8555 gives it, and the detail says what to change.
"""

from __future__ import annotations

from typing import Any

from ..errors import AcmeProblem

PREFIX = "urn:ietf:params:acme:error:"
CONTENT_TYPE = "application/problem+json"


def document(problem: AcmeProblem) -> dict[str, Any]:
    """The JSON body of ``problem``."""
    body: dict[str, Any] = {"type": PREFIX + problem.kind, "detail": problem.detail, "status": problem.status}
    if problem.subproblems:
        body["subproblems"] = [{"type": PREFIX + kind, "detail": detail, "identifier": identifier}
                               for kind, detail, identifier in problem.subproblems]
    if problem.algorithms:
        body["algorithms"] = problem.algorithms
    return body


def malformed(detail: str, status: int = 400) -> AcmeProblem:
    return AcmeProblem("malformed", detail, status)


def unauthorized(detail: str) -> AcmeProblem:
    return AcmeProblem("unauthorized", detail, 403)


def bad_nonce(detail: str) -> AcmeProblem:
    return AcmeProblem("badNonce", detail, 400)


def not_found(what: str) -> AcmeProblem:
    return AcmeProblem("malformed", f"no such {what}", 404)


def account_does_not_exist(detail: str) -> AcmeProblem:
    return AcmeProblem("accountDoesNotExist", detail, 400)


def rejected_identifier(detail: str, identifier: dict[str, str]) -> AcmeProblem:
    return AcmeProblem("rejectedIdentifier", detail, 400, subproblems=[("rejectedIdentifier", detail, identifier)])


def unsupported_identifier(detail: str, identifier: dict[str, str]) -> AcmeProblem:
    return AcmeProblem("unsupportedIdentifier", detail, 400,
                       subproblems=[("unsupportedIdentifier", detail, identifier)])


def bad_csr(detail: str) -> AcmeProblem:
    return AcmeProblem("badCSR", detail, 400)


def order_not_ready(detail: str) -> AcmeProblem:
    return AcmeProblem("orderNotReady", detail, 403)


def server_internal(detail: str) -> AcmeProblem:
    return AcmeProblem("serverInternal", detail, 500)
