"""The playground: one static page at `/` that submits a request, plays its chunks while they stream (Media Source
Extensions fed with the websocket's init segment and fragments) and shows every chunk's figures."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "playground.html", media_type="text/html")


@router.get("/playground.js")
def script() -> FileResponse:
    return FileResponse(STATIC / "playground.js", media_type="text/javascript")
