"""Request-scoped dependencies: settings, engine and the request's unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from partners.db import unit_of_work
from partners.metrics import Metrics
from partners.settings import Settings


# Plain attribute reads are `async def`: FastAPI would run a `def` dependency in the threadpool.
async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics instruments."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """The request's transaction: committed before the answer is sent, rolled back on error."""
    with unit_of_work(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
