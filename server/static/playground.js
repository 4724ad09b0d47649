// The playground page: POST /v1/videos, then WS /v1/videos/{id}/stream. The websocket sends a text event before
// each binary frame ({"type": "init"} before the init segment, {"type": "chunk"} before each fMP4 fragment), so
// every binary frame is appended to a Media Source buffer as it arrives, and init + fragments is the download.
"use strict";

const $ = (id) => document.getElementById(id);
const INTEGER_FIELDS = ["num_frames", "num_inference_steps", "seed"];
let current = null; // {id, key, socket} of the job on screen
let knobRules = {}; // {policy: {knob: {type, default, low, high, choices}}} from GET /v1/model

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function headers(key) {
  const h = { "content-type": "application/json" };
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

// The request body from the form; throws an Error whose message says what to fix.
function requestBody() {
  let body = {};
  const extra = $("extra").value.trim();
  if (extra) {
    try {
      body = JSON.parse(extra);
    } catch (e) {
      throw new Error(`More fields: not JSON (${e.message})`);
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new Error('More fields: must be a JSON object, e.g. {"guidance_scale": 5}');
    }
  }
  body.prompt = $("prompt").value;
  body.cache = { ...(body.cache || {}), policy: $("policy").value };
  const knobs = chosenKnobs();
  if (Object.keys(knobs).length) body.cache.knobs = { ...(body.cache.knobs || {}), ...knobs };
  for (const name of INTEGER_FIELDS) {
    const value = $(name).value.trim();
    if (value !== "") body[name] = Number(value);
  }
  return body;
}

async function errorMessage(response) {
  try {
    const data = await response.json();
    if (data.message) return data.message;
    if (typeof data.detail === "string") return data.detail;
    return JSON.stringify(data.detail ?? data);
  } catch {
    return response.statusText;
  }
}

// Appends the init segment and then each fragment to one SourceBuffer, in order, one append at a time.
class FragmentPlayer {
  constructor(video) {
    this.video = video;
    this.queue = [];
    this.buffer = null;
    this.ended = false;
    this.source = null;
  }

  start(mime, init) {
    if (!("MediaSource" in window) || !MediaSource.isTypeSupported(mime)) {
      return false; // the download still works
    }
    this.source = new MediaSource();
    this.video.src = URL.createObjectURL(this.source);
    this.source.addEventListener("sourceopen", () => {
      this.buffer = this.source.addSourceBuffer(mime);
      this.buffer.addEventListener("updateend", () => this.pump());
      this.pump();
    }, { once: true });
    this.append(init);
    return true;
  }

  append(data) {
    this.queue.push(data);
    this.pump();
  }

  finish() {
    this.ended = true;
    this.pump();
  }

  pump() {
    if (!this.buffer || this.buffer.updating) return;
    if (this.queue.length) {
      this.buffer.appendBuffer(this.queue.shift());
    } else if (this.ended && this.source.readyState === "open") {
      this.source.endOfStream();
    }
  }
}

function percent(x) {
  return x == null ? "" : `${(100 * x).toFixed(1)}%`;
}

function times(x) {
  return x == null ? "" : `${x.toFixed(2)}x`;
}

function seconds(x) {
  return x == null ? "" : `${x.toFixed(2)} s`;
}

function showFigures(figures) {
  const rows = [
    ["compute speedup", times(figures.compute_speedup)],
    ["token-skip rate", percent(figures.token_skip_rate)],
    ["time to first chunk", seconds(figures.time_to_first_chunk_s)],
    ["wall time", seconds(figures.wall_s)],
    ["real-time factor", figures.real_time_factor == null ? "" : figures.real_time_factor.toFixed(2)],
  ];
  $("figures").replaceChildren(...rows.flatMap(([name, value]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    dd.dataset.figure = name;
    return [dt, dd];
  }));
}

function addChunkRow(event) {
  const cells = [event.index, `${event.frame_start}-${event.frame_end - 1}`, times(event.stats.compute_speedup),
                 percent(event.stats.token_skip_rate), event.bytes];
  const row = document.createElement("tr");
  for (const value of cells) {
    const td = document.createElement("td");
    td.textContent = value;
    row.append(td);
  }
  $("chunks").tBodies[0].append(row);
  $("chunks").hidden = false;
}

function offerDownload(parts) {
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob(parts, { type: "video/mp4" }));
  link.hidden = false;
}

// Rows done of the job's denoising schedule, from the job view, every second until the stream ends.
function pollProgress(job) {
  const timer = setInterval(async () => {
    if (current !== job || job.finished) return clearInterval(timer);
    const response = await fetch(`/v1/videos/${job.id}`, { headers: headers(job.key) }).catch(() => null);
    if (!response?.ok || current !== job || job.finished) return; // the stream reports what went wrong
    const view = await response.json();
    const { rows_done: done, rows_total: total } = view.progress || {};
    if (total) {
      $("progress").max = total;
      $("progress").value = done;
      $("progress").hidden = false;
    }
    if (view.status === "running" && !job.chunks) setStatus(`running: denoising row ${done} of ${total}`);
  }, 1000);
}

function watch(job) {
  const url = new URL(`/v1/videos/${job.id}/stream`, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (job.key) url.searchParams.set("api_key", job.key); // browsers cannot set headers on a websocket
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  job.socket = socket;
  const player = new FragmentPlayer($("video"));
  const parts = [];
  let announced = null; // the text event that announced the next binary frame
  let playable = true;

  socket.onmessage = (message) => {
    if (typeof message.data === "string") {
      const event = JSON.parse(message.data);
      if (event.type === "init" || event.type === "chunk") {
        announced = event;
      } else if (event.type === "end") {
        job.finished = true;
        $("progress").value = $("progress").max;
        player.finish();
        if (event.figures) showFigures(event.figures);
        setStatus(`${event.status}: ${$("chunks").tBodies[0].rows.length} chunks`);
        $("cancel").disabled = true;
      } else if (event.type === "error") {
        job.finished = true;
        player.finish();
        setStatus(`failed: ${event.message}`, true);
        $("cancel").disabled = true;
      }
      return;
    }
    parts.push(message.data);
    if (announced.type === "init") {
      playable = player.start(announced.mime, message.data);
      if (!playable) setStatus(`this browser cannot play ${announced.mime}: use the download`, true);
    } else {
      if (playable) player.append(message.data);
      job.chunks = announced.index + 1;
      addChunkRow(announced);
      if (announced.figures) showFigures(announced.figures);
      setStatus(`running: chunk ${announced.index} (frames up to ${announced.frame_end})`);
    }
    offerDownload(parts);
  };
  socket.onclose = () => {
    if (!job.finished && current === job) {
      setStatus(`the stream closed before the job ended; the job goes on: /v1/videos/${job.id}`, true);
    }
  };
}

async function submit(event) {
  event.preventDefault();
  if (current?.socket) current.socket.close();
  current = null;
  $("chunks").tBodies[0].replaceChildren();
  $("chunks").hidden = true;
  $("figures").replaceChildren();
  $("download").hidden = true;
  $("progress").hidden = true;
  let body;
  try {
    body = requestBody();
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  const key = $("api_key").value.trim();
  setStatus("submitting…");
  let response;
  try {
    response = await fetch("/v1/videos", { method: "POST", headers: headers(key), body: JSON.stringify(body) });
  } catch (e) {
    setStatus(`cannot reach the server: ${e.message}`, true);
    return;
  }
  if (!response.ok) {
    setStatus(`${response.status}: ${await errorMessage(response)}`, true);
    return;
  }
  const job = await response.json();
  current = { id: job.id, key };
  $("status").dataset.job = job.id;
  setStatus(`queued (position ${job.queue_position})`);
  $("cancel").disabled = false;
  watch(current);
  pollProgress(current);
}

async function cancel() {
  const job = current;
  if (!job) return;
  $("cancel").disabled = true;
  const response = await fetch(`/v1/videos/${job.id}`, { method: "DELETE", headers: headers(job.key) })
    .catch((e) => ({ ok: false, status: "network error", statusText: e.message, json: () => Promise.reject(e) }));
  if (job.finished || current !== job) return; // the stream's end event came first: its status is the final one
  if (!response.ok) setStatus(`cancel: ${response.status}: ${await errorMessage(response)}`, true);
  else setStatus("cancelling…");
}

// One input per knob of the chosen policy, empty = the default shown (the preset's value on this model). Ranges
// are shown, not enforced: the server checks every value and its 422 says what to fix.
function showKnobs() {
  const rules = knobRules[$("policy").value] || {};
  const inputs = Object.entries(rules).map(([name, rule]) => {
    const label = document.createElement("label");
    let input;
    if (rule.choices || rule.type === "bool") {
      input = document.createElement("select");
      const values = rule.choices || ["true", "false"];
      input.replaceChildren(new Option(`${rule.default} (default)`, ""), ...values.map((v) => new Option(v, v)));
    } else {
      input = document.createElement("input");
      input.type = "number";
      input.step = "any";
      const range = rule.low != null && rule.high != null ? ` [${rule.low}, ${rule.high}]`
        : rule.low != null ? ` >= ${rule.low}` : "";
      input.placeholder = `${rule.default}${range}`;
    }
    input.dataset.knob = name;
    input.dataset.type = rule.type;
    label.append(name, input);
    return label;
  });
  const empty = document.createElement("span");
  empty.className = "hint";
  empty.textContent = "this policy has no knobs";
  $("knobs").replaceChildren(...(inputs.length ? inputs : [empty]));
}

function chosenKnobs() {
  const knobs = {};
  for (const input of $("knobs").querySelectorAll("[data-knob]")) {
    const value = input.value.trim();
    if (value === "") continue;
    const type = input.dataset.type;
    knobs[input.dataset.knob] = type === "bool" ? value === "true" : type === "str" ? value : Number(value);
  }
  return knobs;
}

// The served model's defaults and cache policies (GET /v1/model) fill the form; without them the page keeps its
// built-in policy list and generic placeholders.
async function describeModel() {
  const response = await fetch("/v1/model", { headers: headers($("api_key").value.trim()) }).catch(() => null);
  if (!response?.ok) return;
  const info = await response.json();
  $("model").textContent = `Model: ${info.model}.`;
  for (const name of ["num_frames", "num_inference_steps"]) {
    if (info.defaults[name] != null) $(name).placeholder = `${info.defaults[name]} (model default)`;
  }
  const select = $("policy");
  const chosen = select.value;
  const measured = info.defaults.cache_calibration || {};
  select.replaceChildren(...Object.keys(info.policies).map((name) => new Option(policyLabel(name, measured[name]), name)));
  select.value = preferredPolicy(chosen, Object.keys(info.policies));
  knobRules = info.policies;
  showKnobs();
}

// A calibrated preset says what it bought on this model (motioncache calibrate --write: cache_calibration), and
// at what length and steps: a shorter video or fewer steps gets less.
function policyLabel(name, measured) {
  if (!measured) return name;
  const r = measured.request || {};
  const at = [r.num_frames && `${r.num_frames} frames`, r.num_inference_steps && `${r.num_inference_steps} steps`];
  const where = at.filter(Boolean).join(", ");
  return `${name} (calibrated: ${measured.compute_speedup}x compute, ${measured.psnr} dB${where ? ` at ${where}` : ""})`;
}

function preferredPolicy(preferred, names) {
  for (const name of [preferred, "motioncache-slow"]) if (names.includes(name)) return name;
  return names[0];
}

$("request").addEventListener("submit", submit);
$("api_key").addEventListener("change", describeModel);
$("policy").addEventListener("change", showKnobs);
describeModel();
$("cancel").addEventListener("click", cancel);
