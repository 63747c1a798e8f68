"""GET /metrics: Prometheus' scrape, opened by its own bearer token (not a tenant's)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import MetricsDep, SessionDep, SettingsDep
from api.errors import ApiProblem
from partners import outbox_status
from partners.db import utcnow
from partners.metrics import CONTENT_TYPE, OutboxGauges

SCHEME = "metrics"
REALM = 'Bearer realm="partnerloop-metrics"'

scraper = HTTPBearer(
    scheme_name=SCHEME,
    description="The scraper's token, PARTNERLOOP_METRICS_TOKEN (tenants' access tokens do not open /metrics).",
    auto_error=False,
)
router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics of this server (for the operator's scraper)",
    description="Request counts and latencies by route template, the outbox backlog, exchange decisions. "
    "No tenant's data: labels are route templates, statuses and fixed reasons.",
    response_class=Response,
    responses={
        200: {"description": "The text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}},
        401: {
            "description": "No scraper token, or a wrong one",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
        },
        404: {"description": "Metrics are off on this server (PARTNERLOOP_METRICS_TOKEN is unset)"},
    },
)
def scrape(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(scraper)],
    settings: SettingsDep,
    metrics: MetricsDep,
    session: SessionDep,
) -> Response:
    if settings.metrics_token is None:
        raise ApiProblem(
            404, "metrics_disabled", "Not found", "Metrics are off: set PARTNERLOOP_METRICS_TOKEN to turn them on."
        )
    expected = settings.metrics_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, expected):
        raise ApiProblem(
            401,
            "invalid_token",
            "Unauthorized",
            "Send the scraper's token (PARTNERLOOP_METRICS_TOKEN) as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": REALM},
        )
    now = utcnow()
    depth = outbox_status.depth(session, now=now)
    return Response(metrics.exposition([OutboxGauges(depth, now)]), media_type=CONTENT_TYPE)
