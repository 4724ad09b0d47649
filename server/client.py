"""A small Python client for the MotionCache API (used by `motioncache client` and the benchmark)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
from websockets.sync.client import connect


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass
class StreamItem:
    event: dict  # the text event (type init | chunk | end | error)
    data: bytes | None = None  # the binary frame that followed it (init segment or fragment)


class Client:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout)

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            try:
                body = response.json()
                message = body.get("message") or body.get("detail") or response.text
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, message if isinstance(message, str) else json.dumps(message))
        return response

    def model(self) -> dict:
        """The served model's defaults, cache policies with their knobs, and the server's limits."""
        return self._check(self.http.get("/v1/model")).json()

    def submit(self, request: dict) -> dict:
        return self._check(self.http.post("/v1/videos", json=request)).json()

    def get(self, job_id: str) -> dict:
        return self._check(self.http.get(f"/v1/videos/{job_id}")).json()

    def list(self, offset: int = 0, limit: int = 20) -> dict:
        return self._check(self.http.get("/v1/videos", params={"offset": offset, "limit": limit})).json()

    def cancel(self, job_id: str) -> dict:
        return self._check(self.http.delete(f"/v1/videos/{job_id}")).json()

    def content(self, job_id: str) -> bytes:
        return self._check(self.http.get(f"/v1/videos/{job_id}/content")).content

    def stream_url(self, job_id: str, from_chunk: int = 0) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/v1/videos/{job_id}/stream",
                           f"from_chunk={from_chunk}", ""))

    def stream(self, job_id: str, from_chunk: int = 0, open_timeout: float = 10.0) -> Iterator[StreamItem]:
        """Events in order; `init` and `chunk` events carry the binary frame that followed them. Ends after the
        `end` or `error` event."""
        # Video frames exceed the websockets client's 1 MiB default; deflate only burns CPU on video.
        with connect(self.stream_url(job_id, from_chunk), additional_headers=self.headers, max_size=None,
                     compression=None, open_timeout=open_timeout) as ws:
            for message in ws:
                event = json.loads(message)
                if event["type"] in ("init", "chunk"):
                    data = ws.recv()
                    yield StreamItem(event, data)
                else:
                    yield StreamItem(event)
                    if event["type"] in ("end", "error"):
                        return

    def close(self) -> None:
        self.http.close()
