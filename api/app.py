"""create_app(): middleware, routers, error handlers and docs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api import docs_ui, errors, openapi
from api.auth.bearer import VerifiedTokens
from api.auth.keys import KeyRing
from api.control_chars import ControlCharacterMiddleware
from api.middleware import BodySizeLimitMiddleware, RequestIdMiddleware, SecurityHeadersMiddleware
from api.ratelimit import PublicRateLimitMiddleware, RateLimiter
from api.request_metrics import RequestMetricsMiddleware
from api.routes import ROUTERS
from partners.clients import DOCS_CLIENT_ID
from partners.db import make_engine
from partners.db_async import open_pool
from partners.metrics import Metrics
from partners.migrate import upgrade_engine
from partners.serving_cache import ServingCache
from partners.settings import Settings, load_settings

UPLOAD_PREFIX = "/v1/uploads"

DESCRIPTION = """
Partnerloop lets complementary online retailers promote each other to their own
customers, with the customers' consent. Errors are `application/problem+json`
(RFC 9457); lists are paged with `limit` and `cursor`; POSTs accept `Idempotency-Key`.
"""


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The Partnerloop API. Without arguments it reads settings from the environment."""
    settings = settings or load_settings()
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_engine and engine.dialect.name == "sqlite" and settings.migrate_on_start:
            # The embedded default keeps itself migrated; PostgreSQL is upgraded by `partnerloop db upgrade`.
            await run_in_threadpool(upgrade_engine, engine)
        if engine.dialect.name == "postgresql":
            # The exchange's hot path runs on psycopg's async driver (partners.exchange_async).
            app.state.exchange_pool = await open_pool(engine, max_size=settings.exchange_pool_size)
            app.state.serving_cache = ServingCache()
        try:
            yield
        finally:
            pool = getattr(app.state, "exchange_pool", None)
            if pool is not None:
                app.state.exchange_pool = None
                await pool.close()
            if owns_engine:
                engine.dispose()

    app = FastAPI(
        title="Partnerloop",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # api/docs_ui.py serves /docs with Swagger UI's files from us, not a CDN
        swagger_ui_init_oauth={
            "clientId": DOCS_CLIENT_ID,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": "",
        },
    )
    if not settings.is_production:
        # authlib refuses plain http unless told; development serves http on loopback.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    app.state.settings = settings
    app.state.engine = engine
    app.state.keyring = KeyRing(settings)
    app.state.verified_tokens = VerifiedTokens()
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    app.state.metrics = Metrics()
    errors.install(app)
    openapi.install(app)
    docs_ui.install(app)
    for router in ROUTERS:
        app.include_router(router)

    def body_limit(path: str) -> int:
        return settings.max_upload_bytes if path.startswith(UPLOAD_PREFIX) else settings.max_body_bytes

    # Innermost of the body readers: what it buffers is capped by the size limit around it.
    app.add_middleware(ControlCharacterMiddleware, streamed_prefixes=(UPLOAD_PREFIX,))
    app.add_middleware(PublicRateLimitMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, limit_for=body_limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed", "Location"],
        )
    app.add_middleware(RequestIdMiddleware)
    # Outside the request ids, so that the 500s they answer for unhandled errors are counted too.
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
    # Outermost, so that every answer carries them: 413s and 500s from the middleware above too.
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    return app
