"""The playground page in a real headless Chromium against the real stack (Redis, worker processes, the API):
it submits, plays the streamed fragments through Media Source Extensions, offers exactly the server's bytes as
the download, shows the 4xx message for bad input, labels calibrated presets with what they measured, and cancels."""

import base64
import json
import shutil

import httpx
import pytest
import redis

from motioncache.video_io import decode_video
from server import keys
from serving_fixtures import FAST, KEYS, SLOW, wait_for_status

SLOW_EXTRA = json.dumps({k: v for k, v in SLOW.items() if k not in ("prompt", "num_frames", "num_inference_steps")})

pytest_plugins = ["serving_fixtures"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a sandboxed machine with no network: no background connections, no GPU, root allowed.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: scripts/setup.sh installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, api):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(api.url + "/")
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def fill(page, *, prompt, frames="", steps="", extra="", key=KEYS[0], policy="chunked", seed="0"):
    page.fill("#prompt", prompt)
    page.select_option("#policy", policy)
    page.fill("#num_frames", str(frames))
    page.fill("#num_inference_steps", str(steps))
    page.fill("#seed", str(seed))
    page.fill("#extra", extra)
    page.fill("#api_key", key)


def knob_names(page) -> list[str]:
    return page.eval_on_selector_all("#knobs [data-knob]", "es => es.map(e => e.dataset.knob)")


def describe_model(page, key=KEYS[0]):
    page.fill("#api_key", key)
    page.dispatch_event("#api_key", "change")
    page.wait_for_function("() => document.getElementById('model').textContent !== ''")


def status_text(page, contains: str, timeout_s: float = 60) -> str:
    page.wait_for_function("s => document.getElementById('status').textContent.includes(s)", arg=contains,
                           timeout=timeout_s * 1000)
    return page.text_content("#status")


def test_the_page_and_its_script_are_served(api):
    html = httpx.get(api.url + "/")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert 'id="request"' in html.text and "/playground.js" in html.text
    js = httpx.get(api.url + "/playground.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "/v1/videos" in js.text


def test_the_form_takes_the_served_models_defaults_and_policies(page, client, tiny_dir):
    # Without a key the model description is refused (the test server has API keys): the built-in list stays.
    assert page.locator("#policy option").count() == 6 and page.text_content("#model") == ""
    page.fill("#api_key", KEYS[0])
    page.dispatch_event("#api_key", "change")
    page.wait_for_function("() => document.getElementById('model').textContent !== ''")
    assert page.text_content("#model") == f"Model: {tiny_dir.name}."
    assert page.get_attribute("#num_frames", "placeholder") == "9 (model default)"  # the tiny model's motioncache.json
    options = page.eval_on_selector_all("#policy option", "os => os.map(o => o.value)")
    assert options == list(client.model()["policies"]) and "teacache-fast" in options
    assert page.input_value("#policy") == "motioncache-slow"

    # The chosen policy's knobs, each with the default its preset resolves to on this model and its range.
    rules = client.model()["policies"]
    assert knob_names(page) == list(rules["motioncache-slow"]) and "motion_floor" in knob_names(page)
    page.select_option("#policy", "motioncache-fast")
    assert page.get_attribute("#knobs [data-knob='threshold']", "placeholder") == \
        f"{rules['motioncache-fast']['threshold']['default']} >= 0"
    assert page.get_attribute("#knobs [data-knob='motion_floor']", "placeholder") == "0.6 [0, 1]"
    choices = page.eval_on_selector_all("#knobs [data-knob='motion_source'] option", "os => os.map(o => o.value)")
    assert choices == ["", "hidden", "denoised"]
    page.select_option("#policy", "none")
    assert knob_names(page) == [] and page.text_content("#knobs") == "this policy has no knobs"


def test_calibrated_presets_say_what_they_measured(page, redis_url):
    # As a worker serving a model calibrated with `motioncache calibrate --write` publishes it: motioncache.json's
    # cache_calibration inside the profile's defaults.
    r = redis.Redis.from_url(redis_url)
    published = r.get(keys.MODEL_PROFILE)
    profile = json.loads(published)
    measured = {"target_psnr": 30.0, "psnr": 30.23, "psnr_worst": 19.13, "compute_speedup": 3.13, "prompts": 6,
                "videos": 18, "request": {"num_frames": 177}}
    profile["defaults"]["cache_calibration"] = {"motioncache-slow": measured}
    r.set(keys.MODEL_PROFILE, json.dumps(profile))
    try:
        page.fill("#api_key", KEYS[0])
        page.dispatch_event("#api_key", "change")
        page.wait_for_function("() => document.getElementById('model').textContent !== ''")
        labels = dict(page.eval_on_selector_all("#policy option", "os => os.map(o => [o.value, o.textContent])"))
        assert labels["motioncache-slow"] == "motioncache-slow (calibrated: 3.13x compute, 30.23 dB at 177 frames)"
        assert labels["motioncache-fast"] == "motioncache-fast"  # not calibrated: the name alone
        assert page.input_value("#policy") == "motioncache-slow"  # the value a request sends stays the name
    finally:
        r.set(keys.MODEL_PROFILE, published)


def test_generates_plays_and_downloads_what_the_server_stored(page, client):
    fill(page, prompt=FAST["prompt"], frames=FAST["num_frames"], steps=FAST["num_inference_steps"], seed=4,
         extra='{"ar_step": 1, "causal_block_size": 1}')
    page.click("#generate")
    assert status_text(page, "succeeded").startswith("succeeded: 5 chunks")
    job_id = page.get_attribute("#status", "data-job")
    assert client.get(job_id)["status"] == "succeeded"

    rows = page.locator("#chunks tbody tr")
    assert rows.count() == 5
    assert [rows.nth(i).locator("td").first.text_content() for i in range(5)] == ["0", "1", "2", "3", "4"]
    assert page.locator("#figures dd[data-figure='compute speedup']").text_content().endswith("x")

    # The download link holds init + fragments as received: byte for byte the server's MP4.
    b64 = page.evaluate("""async () => {
        const bytes = new Uint8Array(await (await fetch(document.getElementById('download').href)).arrayBuffer());
        let s = ''; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }""")
    downloaded = base64.b64decode(b64)
    assert downloaded == client.content(job_id)
    assert decode_video(downloaded).shape == (17, 32, 32, 3)

    # Chromium decoded the stream through Media Source Extensions: metadata, and every frame buffered.
    page.wait_for_function("() => { const v = document.getElementById('video'); "
                           "return v.readyState >= 1 && v.buffered.length === 1 && "
                           "document.getElementById('video').src.startsWith('blob:'); }", timeout=20000)
    size = page.evaluate("() => { const v = document.getElementById('video'); return [v.videoWidth, v.videoHeight]; }")
    assert size == [32, 32]
    buffered = page.evaluate("() => { const b = document.getElementById('video').buffered; "
                             "return [b.start(0), b.end(0)]; }")
    fps = 8  # the tiny model's default
    assert buffered[0] == pytest.approx(0, abs=1e-3) and buffered[1] == pytest.approx(17 / fps, abs=1.5 / fps)


def test_bad_input_shows_the_servers_message_and_queues_nothing(page, client):
    before = client.list()["total"]
    fill(page, prompt="a red circle moves left", frames=18)
    page.click("#generate")
    text = status_text(page, "422")
    assert "num_frames" in text and "4k+1" in text
    assert page.get_attribute("#status", "class") == "error"

    fill(page, prompt="a red circle moves left", extra="{not json")
    page.click("#generate")
    assert "More fields: not JSON" in status_text(page, "More fields")

    describe_model(page)
    fill(page, prompt="a red circle moves left", policy="motioncache-slow")
    page.fill("#knobs [data-knob='motion_floor']", "2")
    page.click("#generate")
    assert "motion_floor must lie in [0, 1], got 2.0" in status_text(page, "motion_floor")
    assert client.list()["total"] == before


def test_knobs_set_in_the_form_reach_the_job(page, client):
    describe_model(page)
    fill(page, prompt=FAST["prompt"], frames=FAST["num_frames"], steps=FAST["num_inference_steps"],
         extra='{"ar_step": 1, "causal_block_size": 1}', policy="teacache-slow")
    page.fill("#knobs [data-knob='threshold']", "0.5")
    page.select_option("#knobs [data-knob='rescale']", "identity")
    page.select_option("#knobs [data-knob='force_last_step']", "false")
    page.click("#generate")
    status_text(page, "succeeded")
    job = client.get(page.get_attribute("#status", "data-job"))
    assert job["request"]["cache"] == {"policy": "teacache-slow",
                                       "knobs": {"threshold": 0.5, "rescale": "identity", "force_last_step": False}}
    assert job["figures"]["token_skip_rate"] > 0  # identity distances stay under 0.5 for some rows: reuse happened


def test_a_wrong_api_key_is_refused_with_401(page):
    fill(page, prompt="a red circle moves left", key="not-a-key")
    page.click("#generate")
    assert status_text(page, "401").startswith("401")


def test_cancel_stops_a_running_job(page, client):
    fill(page, prompt=SLOW["prompt"], frames=SLOW["num_frames"], steps=SLOW["num_inference_steps"], extra=SLOW_EXTRA)
    page.click("#generate")
    status_text(page, "running: chunk 0")
    job_id = page.get_attribute("#status", "data-job")
    # the progress bar follows the job view's denoising rows
    page.wait_for_selector("#progress:not([hidden])", timeout=10000)
    # the bar can show before the first progress event moves it off 0 (seen once in a full run)
    page.wait_for_function("() => document.getElementById('progress').value > 0", timeout=10000)
    bar = page.evaluate("() => { const p = document.getElementById('progress'); return [p.value, p.max]; }")
    assert bar[1] == client.get(job_id)["progress"]["rows_total"] and 0 < bar[0] < bar[1]
    page.click("#cancel")
    assert status_text(page, "cancelled").startswith("cancelled: ")
    assert wait_for_status(client, job_id, "cancelled")["status"] == "cancelled"
    assert page.is_disabled("#cancel")


def test_a_late_cancel_reply_does_not_overwrite_the_final_status(page, client):
    """The stream's end event can arrive before the DELETE's reply: the page must keep 'cancelled', not go back to
    'cancelling…' (seen once in a full run)."""
    import time

    def slow_reply(route):
        if route.request.method != "DELETE":
            return route.continue_()
        reply = route.fetch()
        time.sleep(3)  # the browser gets the stream's end event meanwhile
        route.fulfill(response=reply)

    page.route("**/v1/videos/*", slow_reply)
    fill(page, prompt=SLOW["prompt"], frames=SLOW["num_frames"], steps=SLOW["num_inference_steps"], extra=SLOW_EXTRA)
    page.click("#generate")
    status_text(page, "running: chunk 0")
    job_id = page.get_attribute("#status", "data-job")
    page.click("#cancel")
    assert wait_for_status(client, job_id, "cancelled")["status"] == "cancelled"
    status_text(page, "cancelled: ")
    time.sleep(4)  # past the delayed reply
    assert page.text_content("#status").startswith("cancelled: ")
