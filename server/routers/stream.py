"""WS /v1/videos/{id}/stream: live chunks of a job, resumable with ?from_chunk=N.

Protocol (server -> client): before the first binary frame of a connection, a text event
{"type": "init", "mime", "bytes"} and the fMP4 init segment as a binary frame; then per chunk a text
event {"type": "chunk", "index", "frame_start", "frame_end", ...figures} and its fragment as a binary
frame; finally {"type": "end", "status", "figures"} or {"type": "error", "message"} and a normal close.
Each viewer reads the job's Redis Stream itself, so viewers come and go without touching the job.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from .. import chunkstream, keys
from ..auth import Unauthorized, owner_for

router = APIRouter(tags=["videos"])


async def _refuse(ws: WebSocket, code: int, status: int, message: str) -> None:
    await ws.send_json({"type": "error", "status": status, "message": message})
    await ws.close(code=code, reason=message[:120])


async def _until_disconnect(ws: WebSocket) -> None:
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass  # clients have nothing to say; anything they send is ignored


async def _pump(ws: WebSocket, aredis, job_id: str, from_chunk: int, block_ms: int) -> None:
    last_id, expected, init_sent = chunkstream.after_chunk_id(from_chunk), from_chunk, False
    while True:
        entries = await chunkstream.read_after(aredis, job_id, last_id, block_ms)
        if not entries:
            if not await aredis.exists(keys.job(job_id)):
                await _refuse(ws, 1011, 410, f"job {job_id} expired")
                return
            continue
        for entry_id, entry in entries:
            last_id = entry_id
            if entry.terminal:
                await ws.send_json(entry.event)
                await ws.close(code=1000)
                return
            if entry.event["index"] != expected:  # trimmed or expired: say so rather than leave a silent gap
                await _refuse(ws, 1011, 410, f"chunk {expected} is no longer stored")
                return
            if not init_sent:
                init, mime = await asyncio.gather(aredis.get(keys.init_segment(job_id)),
                                                  aredis.hget(keys.job(job_id), "mime"))
                await ws.send_json({"type": "init", "mime": (mime or b"video/mp4").decode(), "bytes": len(init)})
                await ws.send_bytes(init)
                init_sent = True
            await ws.send_json(entry.event)
            await ws.send_bytes(entry.data)
            expected += 1


@router.websocket("/v1/videos/{job_id}/stream")
async def stream(ws: WebSocket, job_id: str, from_chunk: int = Query(0, ge=0)) -> None:
    c, metrics = ws.app.state.clients, ws.app.state.metrics
    await ws.accept()
    try:
        # Browsers cannot set headers on a websocket: ?api_key= is accepted as well.
        header = ws.headers.get("authorization") or (f"Bearer {ws.query_params['api_key']}"
                                                     if "api_key" in ws.query_params else None)
        who = owner_for(header, c.settings.api_keys)
    except Unauthorized as e:
        await _refuse(ws, 4401, 401, str(e))
        return
    owner_of_job = await c.aredis.hget(keys.job(job_id), "owner")
    if owner_of_job is None or owner_of_job.decode() != who:
        await _refuse(ws, 4404, 404, f"no video job {job_id}")
        return
    metrics.viewers.inc()
    pump = asyncio.create_task(_pump(ws, c.aredis, job_id, from_chunk, c.settings.stream_block_ms))
    gone = asyncio.create_task(_until_disconnect(ws))
    try:
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, gone):
            task.cancel()
        for task in (pump, gone):
            try:
                await task
            except (asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                pass  # the client left mid-send, or we closed while the other task waited
        metrics.viewers.dec()
