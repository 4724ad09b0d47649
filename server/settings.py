"""Settings shared by the API and the workers, read from the environment (prefix MOTIONCACHE_)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOTIONCACHE_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "motioncache"
    # Bearer keys; empty = no authentication. MOTIONCACHE_API_KEYS="key1,key2".
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Submit-time limits (checked on the resolved request when a worker has published its model profile).
    max_frames: int = 257
    max_pixels: int = 544 * 960
    max_steps: int = 100
    max_prompt_length: int = 2000

    # Job lifetime in Redis.
    record_ttl_s: int = 7 * 24 * 3600  # job records and their streams expire this long after the last write
    failure_ttl_s: int = 24 * 3600  # RQ's failed-job registry (its default is a year)
    queued_ttl_s: int = 24 * 3600  # a job still queued after this is dropped by RQ
    # RQ job timeout = base + per_unit * frames*height*width*steps/1e6 (x2 with CFG), capped.
    job_timeout_base_s: int = 120
    job_timeout_per_unit_s: float = 0.5
    job_timeout_max_s: int = 6 * 3600

    # Liveness: a worker refreshes its heartbeat key every ttl/3; a running job whose worker's key expired is failed.
    heartbeat_ttl_s: float = 15.0
    reaper_interval_s: float = 2.0

    # Streaming: a blocked XREAD returns after this long so closed websockets are noticed.
    stream_block_ms: int = 1000
    redis_max_connections: int = 512

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v):
        if isinstance(v, str):
            return [k.strip() for k in v.split(",") if k.strip()]
        return v


@lru_cache
def get_settings() -> Settings:
    return Settings()
