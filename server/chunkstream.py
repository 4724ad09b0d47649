"""The per-job Redis Stream: one entry per finished chunk (fMP4 fragment + JSON figures), then one terminal entry.

Entry ids are chosen so a reader can resume from any chunk without a lookup: chunk k is `k+1-0`, so
"everything from chunk N" is XREAD after id `N-0`. The terminal entry (`end` or `error`) takes an
automatic id, which is always larger. The init segment lives in its own key, written before chunk 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from . import keys

CHUNK, END, ERROR = b"chunk", b"end", b"error"


@dataclass
class Entry:
    kind: str  # chunk | end | error
    event: dict
    data: bytes | None  # the fragment (chunks only)

    @property
    def terminal(self) -> bool:
        return self.kind != "chunk"


def after_chunk_id(from_chunk: int) -> str:
    """The stream id to read after so that the first entry returned is chunk `from_chunk`."""
    return f"{from_chunk}-0"


def add_chunk(pipe, job_id: str, index: int, event: dict, fragment: bytes, *, maxlen: int, ttl_s: int) -> None:
    pipe.xadd(keys.stream(job_id), {b"type": CHUNK, b"event": json.dumps(event).encode(), b"data": fragment},
              id=f"{index + 1}-0", maxlen=maxlen, approximate=False)
    pipe.expire(keys.stream(job_id), ttl_s)


def add_terminal(pipe, job_id: str, kind: bytes, event: dict, *, ttl_s: int) -> None:
    pipe.xadd(keys.stream(job_id), {b"type": kind, b"event": json.dumps(event).encode()})
    pipe.expire(keys.stream(job_id), ttl_s)


def decode(fields: dict) -> Entry:
    return Entry(fields[b"type"].decode(), json.loads(fields[b"event"]), fields.get(b"data"))


def read_all(r, job_id: str) -> tuple[bytes | None, list[Entry]]:
    """Init segment and every entry so far (the download)."""
    pipe = r.pipeline(transaction=False)
    pipe.get(keys.init_segment(job_id))
    pipe.xrange(keys.stream(job_id))
    init, entries = pipe.execute()
    return init, [decode(f) for _, f in entries]


async def read_after(aredis, job_id: str, last_id: str, block_ms: int, count: int = 16) -> list[tuple[str, Entry]]:
    """Entries after `last_id`, waiting up to block_ms for the first one; [] on timeout."""
    reply = await aredis.xread({keys.stream(job_id): last_id}, count=count, block=block_ms)
    if not reply:
        return []
    return [(entry_id.decode(), decode(fields)) for entry_id, fields in reply[0][1]]
