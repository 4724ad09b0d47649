"""Response bodies of the API (requests use motioncache.request.GenerationRequest as is)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .jobstore import JobRecord

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Progress(BaseModel):
    rows_done: int
    rows_total: int | None = Field(None, description="denoising rows of the whole request (known once running)")
    chunks_done: int
    chunks_total: int | None = None


class Figures(BaseModel):
    """The request's figures so far (final once the job ended)."""

    model_config = ConfigDict(extra="allow")

    compute_speedup: float | None = Field(None, description="reference FLOPs / FLOPs actually computed")
    token_skip_rate: float | None = Field(None, description="token-layers reused / (computed + reused)")
    time_to_first_chunk_s: float | None = Field(None, description="submit -> first chunk published")
    wall_s: float | None = Field(None, description="generation wall time (start -> last chunk)")
    real_time_factor: float | None = Field(None, description="video seconds made per wall second")
    timings_s: dict[str, float] | None = None


class Links(BaseModel):
    self: str
    content: str
    stream: str
    cancel: str


class Job(BaseModel):
    id: str
    status: Status
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    queue_position: int | None = Field(None, description="0 = next to run; only while queued")
    cancel_requested: bool = False
    progress: Progress
    figures: Figures
    error: str | None = None
    request: dict = Field(description="the request as submitted (image and prefix_video omitted)")
    resolved: dict | None = Field(None, description="frames, size and fps after model defaults")
    links: Links

    @classmethod
    def of(cls, record: JobRecord, *, queue_position: int | None = None, cancel_requested: bool = False) -> "Job":
        base = f"/v1/videos/{record.id}"
        return cls(
            id=record.id, status=record.status, created_at=record.created_at, started_at=record.started_at,
            finished_at=record.finished_at, queue_position=queue_position, cancel_requested=cancel_requested,
            progress=Progress(rows_done=record.rows_done, rows_total=record.rows_total,
                              chunks_done=record.chunks_done, chunks_total=record.chunks_total),
            figures=Figures(**record.figures), error=record.error, request=record.summary, resolved=record.resolved,
            links=Links(self=base, content=f"{base}/content", stream=f"{base}/stream", cancel=base),
        )


class JobPage(BaseModel):
    items: list[Job]
    total: int
    offset: int
    limit: int
    next_offset: int | None


class ProblemDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    message: str = Field(description="one line per problem: 'field: rule'")
    detail: list[ProblemDetail]


class Limits(BaseModel):
    max_frames: int
    max_pixels: int = Field(description="height x width")
    max_steps: int
    max_prompt_length: int


class ModelInfo(BaseModel):
    model: str = Field(description="the served model directory's name")
    defaults: dict = Field(description="request fields the model sets when a request leaves them out")
    policies: dict[str, dict[str, dict]] = Field(
        description="cache policies and presets, each with its knobs: {knob: {type, default (as the preset resolves "
                    "it on this model), and low / high / choices where the knob has them}}")
    limits: Limits
