// Toolhub console: the playground's streamed chat and the Overview charts. No framework; htmx does the rest.
"use strict";

function setupPlayground(root) {
  const form = root.querySelector("#playground");
  if (!form || form.dataset.ready) return;
  form.dataset.ready = "1";
  const prompt = form.querySelector("#pg-prompt");
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sendChat(form).catch((err) => showStatus(`Failed: ${err.message}`, true));
  });
}

function showStatus(text, bad) {
  const status = document.getElementById("pg-status");
  status.textContent = text;
  status.className = bad ? "bad" : "muted";
}

function addEvent(text, cls) {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  document.getElementById("pg-events").appendChild(li);
}

async function sendChat(form) {
  const data = new FormData(form);
  const servers = data.getAll("server");
  const model = form.querySelector("#pg-model").selectedOptions[0];
  const body = {model: data.get("model"), stream: true, messages: [{role: "user", content: data.get("prompt")}]};
  if (servers.length) body.tools = servers.map((s) => ({type: "mcp", server_label: s, require_approval: "never"}));
  // hub tool calls and their results come as `toolhub_trace` events (hub/loop/trace.py)
  if (servers.length || (model && model.dataset.tools)) body.tool_loop_trace = "reasoning";
  const answer = document.getElementById("pg-answer");
  answer.textContent = "";
  document.getElementById("pg-events").replaceChildren();
  const button = form.querySelector("#pg-send");
  button.disabled = true;
  showStatus("Waiting for the model…");
  const started = performance.now();
  try {
    const response = await fetch("/ui/api/v1/chat/completions", {
      method: "POST", body: JSON.stringify(body), credentials: "same-origin",
      headers: {"content-type": "application/json", "x-csrf-token": form.dataset.csrf},
    });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      showStatus(`Error ${response.status}: ${(err.error && err.error.message) || response.statusText}`, true);
      return;
    }
    await readStream(response, answer);
    showStatus(`Done in ${Math.round(performance.now() - started)} ms`);
  } finally {
    button.disabled = false;
  }
}

async function readStream(response, answer) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      handleLine(buffer.slice(0, cut).replace(/\r$/, ""), answer);
      buffer = buffer.slice(cut + 1);
    }
  }
}

function handleLine(line, answer) {
  if (!line.startsWith("data: ") || line === "data: [DONE]") return;
  const chunk = JSON.parse(line.slice(6));
  if (chunk.error) addEvent(`Error: ${chunk.error.message}`, "bad");
  if (chunk.toolhub_trace) {
    for (const event of chunk.toolhub_trace) showTrace(event);
    return; // the same lines as reasoning_content: shown once, as events
  }
  for (const choice of chunk.choices || []) {
    if (choice.delta && choice.delta.content) answer.textContent += choice.delta.content;
  }
}

// One list item per hub tool call: its arguments as it starts, then its result when it ends.
function showTrace(event) {
  const events = document.getElementById("pg-events");
  if (event.type === "tool_call") {
    const li = document.createElement("li");
    li.className = "tool-running";
    li.dataset.call = event.id;
    const head = document.createElement("div");
    const name = document.createElement("code");
    name.textContent = event.name;
    head.append(name, ` ${event.arguments}`);
    const result = document.createElement("div");
    result.className = "result";
    result.textContent = "running…";
    li.append(head, result);
    events.appendChild(li);
  } else if (event.type === "tool_result") {
    const li = [...events.children].find((el) => el.dataset.call === event.id);
    if (!li) return;
    li.className = event.is_error ? "bad" : "tool-done";
    const verb = event.is_error ? "failed" : "answered";
    li.querySelector(".result").textContent = `${verb} in ${Math.round(event.duration_ms)} ms: ${event.summary}`;
  }
}

function setupCharts(root) {
  const box = root.querySelector("#charts");
  if (!box || box.dataset.ready || typeof uPlot === "undefined") return;
  box.dataset.ready = "1";
  fetch(box.dataset.src, {credentials: "same-origin"}).then((r) => {
    // A session that ended is sent to the login page (a redirect fetch() followed): go there, as htmx does.
    if (r.redirected) return location.assign(r.url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json().then((data) => {
      for (const el of box.querySelectorAll(".chart")) drawChart(el, data);
    });
  }).catch((err) => {
    const note = document.createElement("p");
    note.className = "bad";
    note.textContent = `The charts could not be loaded: ${err.message}`;
    box.prepend(note);
  });
}

const COLORS = {requests: "#2563eb", errors: "#dc2626", spend: "#059669", latency_ms: "#7c3aed"};

// Small values (a request costs fractions of a cent) keep three significant digits instead of rounding to 0, and
// are written out (0.0000001), not as 1e-7.
const tick = (u, values) => values.map((v) => (v == null ? "" : v.toLocaleString("en-US", {maximumSignificantDigits: 3})));

function drawChart(el, data) {
  const names = el.dataset.series.split(",");
  const width = Math.max(260, el.clientWidth || 300);
  const opts = {
    width, height: 180, legend: {show: true}, cursor: {drag: {x: false, y: false}},
    series: [{}, ...names.map((n) => ({label: n, stroke: COLORS[n], width: 2, points: {show: true, size: 4}}))],
    axes: [{}, {size: 76, values: tick}],
  };
  new uPlot(opts, [data.t, ...names.map((n) => data[n])], el);
}

function setup(root) {
  setupPlayground(root);
  setupCharts(root);
}

if (window.htmx) htmx.onLoad(setup);
else document.addEventListener("DOMContentLoaded", () => setup(document));
