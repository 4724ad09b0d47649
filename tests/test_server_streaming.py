"""Submit -> websocket stream -> download: the bytes agree, decode to the requested frames, and match the engine."""

import threading

import numpy as np

from motioncache.request import GenerationRequest
from motioncache.video_io import decode_video
from serving_fixtures import FAST, wait_for_status

pytest_plugins = ["serving_fixtures"]  # one Redis, two workers and one API for every server test module


def collect(client, job_id, from_chunk=0, stop_after=None):
    init, chunks, end = None, [], None
    for item in client.stream(job_id, from_chunk):
        kind = item.event["type"]
        if kind == "init":
            assert init is None and not chunks, "init must come once, before the first fragment"
            init = item.data
        elif kind == "chunk":
            chunks.append((item.event, item.data))
            if stop_after and len(chunks) == stop_after:
                break
        else:
            end = item.event
    return init, chunks, end


def test_streamed_bytes_equal_the_download_and_decode_to_the_requested_frames(client, engine):
    job = client.submit({**FAST, "seed": 3})
    init, chunks, end = collect(client, job["id"])
    assert end["type"] == "end" and end["status"] == "succeeded", end
    assert [e["index"] for e, _ in chunks] == list(range(5))
    assert [(e["frame_start"], e["frame_end"]) for e, _ in chunks] == [(0, 1), (1, 5), (5, 9), (9, 13), (13, 17)]
    streamed = init + b"".join(data for _, data in chunks)
    assert streamed == client.content(job["id"])
    frames = decode_video(streamed)
    assert frames.shape == (17, 32, 32, 3)
    # Same request and seed through the API as through the engine (up to H.264 loss).
    direct = np.concatenate([c.frames for c in engine.generate(GenerationRequest(**{**FAST, "seed": 3}))])
    assert np.abs(frames.astype(np.float32) / 255 - direct).mean() < 0.05
    final = client.get(job["id"])
    assert final["progress"] == {"rows_done": 7, "rows_total": 7, "chunks_done": 5, "chunks_total": 5}
    assert final["figures"]["compute_speedup"] == 1.0 and final["figures"]["token_skip_rate"] == 0.0
    assert end["figures"]["time_to_first_chunk_s"] > 0 and final["resolved"]["num_frames"] == 17


def test_reconnect_with_from_chunk_resumes_without_gaps_or_duplicates(client):
    job = client.submit({**FAST, "seed": 4, "num_frames": 25})
    init, first, _ = collect(client, job["id"], stop_after=2)  # the viewer leaves; the job goes on
    init2, rest, end = collect(client, job["id"], from_chunk=2)
    assert end["status"] == "succeeded"
    assert init2 == init  # every connection gets the init segment before its first fragment
    assert [e["index"] for e, _ in first + rest] == list(range(7))
    assert init + b"".join(d for _, d in first + rest) == client.content(job["id"])
    # resuming past the end still returns the terminal event
    _, none, end = collect(client, job["id"], from_chunk=7)
    assert none == [] and end["status"] == "succeeded"


def test_many_viewers_of_one_job_each_get_every_chunk(client, api):
    job = client.submit({**FAST, "seed": 5})
    results = [None] * 4

    def view(i):
        c = api.client()
        try:
            results[i] = collect(c, job["id"])
        finally:
            c.close()

    threads = [threading.Thread(target=view, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    download = client.content(job["id"])
    for init, chunks, end in results:
        assert end["status"] == "succeeded" and init + b"".join(d for _, d in chunks) == download


def test_content_while_running_is_a_playable_prefix(client):
    from serving_fixtures import SLOW, wait_until

    job = client.submit({**SLOW, "seed": 6})
    wait_until(lambda: client.get(job["id"])["progress"]["chunks_done"] >= 1, 60, "the first chunk")
    partial = client.content(job["id"])
    frames = decode_video(partial)
    assert 1 <= len(frames) < SLOW["num_frames"]
    client.cancel(job["id"])
    assert wait_for_status(client, job["id"], "cancelled")["status"] == "cancelled"


def test_stream_needs_a_key_and_hides_other_keys_jobs(client, api):
    import json

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from serving_fixtures import KEYS

    job = client.submit({**FAST, "seed": 8})
    url = client.stream_url(job["id"])
    for headers, status, code in (({}, 401, 4401), ({"Authorization": f"Bearer {KEYS[1]}"}, 404, 4404)):
        with connect(url, additional_headers=headers) as ws:
            event = json.loads(ws.recv())
            assert event["type"] == "error" and event["status"] == status
            try:
                ws.recv()
            except ConnectionClosed as closed:
                assert closed.rcvd.code == code
    with connect(f"{url}&api_key={KEYS[0]}", max_size=None) as ws:  # browsers: the key as a query parameter
        assert json.loads(ws.recv())["type"] == "init"
    wait_for_status(client, job["id"], "succeeded")


def test_client_cli_streams_to_a_file_and_gets_status(api, client, tmp_path):
    import json
    import subprocess
    import sys

    from serving_fixtures import KEYS, ROOT

    out = tmp_path / "out.mp4"
    base = [sys.executable, "-m", "motioncache.serve_cli", "client", "--server", api.url, "--api-key", KEYS[0]]
    run = subprocess.run(base + ["submit", "--prompt", "a green square", "--num-frames", "17", "--steps", "3",
                                 "--ar-step", "1", "--causal-block-size", "1", "-o", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.strip()
    assert sum(line.startswith("chunk ") for line in run.stderr.splitlines()) == 5 and "succeeded: speedup 1.00x" in run.stderr
    assert out.read_bytes() == client.content(job_id) and decode_video(out.read_bytes()).shape == (17, 32, 32, 3)
    got = subprocess.run(base + ["get", job_id], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(got.stdout)["status"] == "succeeded"
    bad = subprocess.run(base + ["get", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: HTTP 404: no video job nope"

    model = subprocess.run(base + ["model"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(model.stdout)["policies"]["teacache-slow"]["threshold"]["type"] == "float"
    knobs = ["--cache", "teacache-slow", "--cache-knob", "threshold=0.5", "--cache-knob", "rescale=identity",
             "--cache-knob", "force_last_step=off"]
    run = subprocess.run(base + ["submit", "--prompt", "a green square", "--num-frames", "17", "--steps", "3",
                                 "--ar-step", "1", "--causal-block-size", "1", "--no-wait", *knobs],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    job = wait_for_status(client, run.stdout.strip(), "succeeded")
    assert job["request"]["cache"]["knobs"] == {"threshold": "0.5", "rescale": "identity", "force_last_step": "off"}
    assert job["figures"]["token_skip_rate"] > 0  # the knobs reached the engine: rows were reused
    bad = subprocess.run(base + ["submit", "--prompt", "a green square", "--cache", "motioncache-slow",
                                 "--cache-knob", "motion_floor=2"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: HTTP 422: cache.knobs: policy 'motioncache-slow': motion_floor must lie in [0, 1], got 2.0"
