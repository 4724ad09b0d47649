"""The FastAPI application: `uvicorn server.app:create_app --factory` (or `motioncache serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import jobstore, liveness
from .deps import Clients
from .metrics import ApiMetrics
from .routers import health, model, playground, stream, videos
from .settings import Settings, get_settings

log = logging.getLogger("motioncache.server")


async def _reaper(app: FastAPI) -> None:
    """Fail running jobs whose worker's heartbeat expired (workers run the same check; it is idempotent)."""
    c: Clients = app.state.clients
    while True:
        try:
            for job_id in await asyncio.to_thread(liveness.reap, c.redis, c.settings.record_ttl_s):
                record = await asyncio.to_thread(jobstore.get, c.redis, job_id)
                app.state.metrics.ended.labels(jobstore.FAILED, record.policy if record else "none").inc()
                log.warning("job %s failed: its worker died", job_id)
        except Exception:  # noqa: BLE001 - Redis blips must not kill the reaper
            log.exception("reaper pass failed")
        await asyncio.sleep(c.settings.reaper_interval_s)


def _field(loc) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if parts and parts[0] == "body" else parts) or "request"


def _problem(detail: list[dict]) -> JSONResponse:
    message = "; ".join(f"{_field(d['loc'])}: {d['msg']}" for d in detail)
    return JSONResponse({"message": message, "detail": detail}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.clients = Clients.connect(settings)
        app.state.metrics = ApiMetrics(app.state.clients)
        reaper = asyncio.create_task(_reaper(app))
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await app.state.clients.close()

    app = FastAPI(title="MotionCache", version="0.1.0", lifespan=lifespan,
                  description="Streaming autoregressive video generation with motion-aware token caching.")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.app.state.metrics.rejected.inc()
        detail = [{"loc": list(e["loc"]), "msg": e["msg"].removeprefix("Value error, "), "type": e["type"]}
                  for e in exc.errors()]
        return _problem(detail)

    @app.exception_handler(videos.LimitExceeded)
    async def _over_limit(request: Request, exc: videos.LimitExceeded) -> JSONResponse:
        request.app.state.metrics.rejected.inc()
        return _problem([{"loc": ["body", *p.field.split(".")], "msg": p.message, "type": p.rule}
                         for p in exc.problems])

    app.include_router(videos.router)
    app.include_router(model.router)
    app.include_router(stream.router)
    app.include_router(health.router)
    app.include_router(playground.router)
    return app
