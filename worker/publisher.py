"""Encodes each chunk as an fMP4 fragment and publishes it, with its figures and the job's progress, in one
Redis transaction: a reader never sees progress that the stream does not have yet."""

from __future__ import annotations

import time

import numpy as np

from motioncache.engine import Chunk
from motioncache.video_io import FragmentedMp4Writer
from server import chunkstream, jobstore, keys


class ChunkPublisher:
    def __init__(self, r, job_id: str, *, width: int, height: int, fps: int, chunks_total: int, ttl_s: int):
        self.r, self.job_id, self.ttl_s = r, job_id, ttl_s
        self.writer = FragmentedMp4Writer(width, height, fps)
        self.maxlen = chunks_total + 8  # every chunk of this job fits: the stream is the download
        self.frames_done = 0

    def publish(self, chunk: Chunk, figures: dict, progress: dict) -> dict:
        video = (chunk.frames * 255.0).round().clip(0, 255).astype(np.uint8)
        t = time.perf_counter()
        init, fragment = self.writer.encode_chunk(video)
        encode_s = time.perf_counter() - t
        self.frames_done = chunk.frame_end
        event = {"type": "chunk", "index": chunk.index, "frame_start": chunk.frame_start, "frame_end": chunk.frame_end,
                 "window": chunk.window, "bytes": len(fragment), "encode_s": encode_s, "stats": chunk.stats,
                 "figures": figures, "published_at": time.time()}
        pipe = self.r.pipeline()
        if chunk.index == 0 or self.writer.chunks_written == 1:
            pipe.set(keys.init_segment(self.job_id), init, ex=self.ttl_s)
            jobstore.update(pipe, self.job_id, mime=self.writer.mime_type or "video/mp4")
        chunkstream.add_chunk(pipe, self.job_id, chunk.index, event, fragment, maxlen=self.maxlen, ttl_s=self.ttl_s)
        jobstore.update(pipe, self.job_id, chunks_done=chunk.index + 1, figures=figures, **progress)
        pipe.execute()
        return event
