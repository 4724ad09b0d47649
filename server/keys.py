"""Redis key names: the contract between the API, the workers and the reaper. All start with `mc:`."""

RUNNING = "mc:running"  # set of job ids whose status is running (what the reaper scans)
WORKERS = "mc:workers"  # set of worker names that ever registered (pruned when their heartbeat is gone)
MODEL_PROFILE = "mc:model-profile"  # JSON the workers publish so the API can resolve requests without the model


def job(job_id: str) -> str:
    return f"mc:job:{job_id}"


def init_segment(job_id: str) -> str:
    return f"mc:job:{job_id}:init"


def cancel(job_id: str) -> str:
    return f"mc:job:{job_id}:cancel"


def stream(job_id: str) -> str:
    return f"mc:job:{job_id}:stream"


def owner_index(owner: str) -> str:
    return f"mc:jobs:{owner}"


def heartbeat(worker: str) -> str:
    return f"mc:worker:{worker}"
