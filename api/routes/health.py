"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from api.deps import EngineDep
from partners.errors import Unavailable
from partners.migrate import is_current

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database is reachable and migrated",
    responses={503: {"description": "Not ready", "content": {"application/problem+json": {}}}},
)
def readyz(engine: EngineDep) -> Health:
    try:
        current = is_current(engine)
    except SQLAlchemyError as exc:
        raise Unavailable("The database does not answer; check PARTNERLOOP_DATABASE_URL.") from exc
    if not current:
        raise Unavailable("The database schema is behind; run `partnerloop db upgrade`.")
    return Health(status="ok")
