"""Liveness, readiness and the Prometheus endpoint (exact paths: no redirect on /metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import liveness
from ..deps import Clients, clients

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up (says nothing about Redis or workers)."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(c: Clients = Depends(clients)) -> JSONResponse:
    """Ready to take work: Redis answers and at least one worker's heartbeat is current."""
    try:
        c.redis.ping()
        workers = liveness.alive_workers(c.redis)
    except Exception as e:  # noqa: BLE001 - any Redis failure means not ready
        return JSONResponse({"status": "unavailable", "redis": f"unreachable: {e}", "workers": 0}, status_code=503)
    body = {"status": "ready" if workers else "no worker alive", "redis": "ok", "workers": len(workers),
            "busy_workers": sum(1 for w in workers if w.get("job"))}
    return JSONResponse(body, status_code=200 if workers else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
