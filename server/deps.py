"""Shared clients (created once per app in the lifespan) and the FastAPI dependencies that hand them out."""

from __future__ import annotations

from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from fastapi import Request
from rq import Queue
from rq.serializers import JSONSerializer

from .settings import Settings


@dataclass
class Clients:
    settings: Settings
    redis: redis.Redis  # sync: used from FastAPI's threadpool by the plain `def` routes
    aredis: aioredis.Redis  # async: blocked XREADs of websocket viewers, one pooled connection each
    queue: Queue

    @classmethod
    def connect(cls, settings: Settings) -> "Clients":
        # Blocking pools: a burst of viewers waits for a connection instead of failing with "too many connections".
        sync_pool = redis.BlockingConnectionPool.from_url(settings.redis_url, max_connections=64, timeout=10)
        async_pool = aioredis.BlockingConnectionPool.from_url(settings.redis_url,
                                                              max_connections=settings.redis_max_connections,
                                                              timeout=10)
        r = redis.Redis(connection_pool=sync_pool)
        return cls(settings, r, aioredis.Redis(connection_pool=async_pool),
                   Queue(settings.queue_name, connection=r, serializer=JSONSerializer))

    async def close(self) -> None:
        await self.aredis.aclose()
        self.redis.close()


def clients(request: Request) -> Clients:
    return request.app.state.clients


def settings(request: Request) -> Settings:
    return request.app.state.clients.settings
