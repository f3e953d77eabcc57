// edge-app studio: plain JavaScript, no build step, nothing fetched from the internet.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
// This page load's CSRF value (the server puts it in the page): sent with every change, so
// that a request the browser makes by itself with the cookie is told apart from ours.
const csrf = (document.querySelector("meta[name=studio-csrf]") || {}).content || "";
const $ = (id) => document.getElementById(id);
let state = null;
let shown = {};   // what each part of the page last rendered, to redraw only on change
let failure = null;   // the last refused request, shown for a few seconds

function withToken(url) {
  return token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
}

async function call(path, body, method) {
  method = method || (body === undefined ? "GET" : "POST");
  const headers = Object.assign({"X-CSRF": csrf}, token ? {"X-Token": token} : {});
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method: method, headers: headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    failure = {text: data.error || ("error " + res.status), at: Date.now()};
    $("message").textContent = failure.text;
    throw new Error(data.error || res.status);
  }
  return data;
}

function changed(key, value) {
  const text = JSON.stringify(value);
  if (shown[key] === text) return false;
  shown[key] = text;
  return true;
}

function renderLabels(s) {
  const box = $("labels");
  if (changed("labels", [s.task.labels, s.selected, s.counts, s.placed, s.mode])) {
    box.replaceChildren(...s.task.labels.map((name) => {
      const b = document.createElement("button");
      b.dataset.testid = "label-" + name;
      b.className = name === s.selected ? "on" : "";
      const count = document.createElement("span");
      count.className = "count";
      count.dataset.testid = "count-" + name;
      count.textContent = s.counts[name] || 0;
      const placed = s.task.points && s.placed[name] ? " \u2713" : "";
      b.append(name + placed, count);
      b.onclick = () => call("/api/select", {label: name}).then(refresh).catch(() => {});
      return b;
    }));
  }
  $("labels-title").textContent = s.task.points ? "Points (click on the image)" : "Classes";
  $("class-actions").hidden = s.task.points;
  $("point-actions").hidden = !s.task.points;
  $("hint").textContent = s.mode === "infer" ? "live inference with " + (s.model || "")
    : s.task.points ? "select a point, then click where it is; all points placed = saved"
    : "select a class and show it to the camera, then Capture (or hold Burst)";
}

function renderRecent(s) {
  if (!changed("recent", s.recent)) return;
  $("recent").replaceChildren(...s.recent.map((r) => {
    const fig = document.createElement("figure");
    fig.dataset.testid = "sample";
    const img = document.createElement("img");
    img.src = withToken("/api/samples/" + r.folder + "/" + r.name);
    img.alt = r.label;
    const cap = document.createElement("figcaption");
    cap.textContent = r.label;
    const del = document.createElement("button");
    del.textContent = "\u00d7";
    del.title = "delete this capture (kept in .deleted/)";
    del.dataset.testid = "delete";
    // A refusal (e.g. while training runs) shows its reason in the message line.
    del.onclick = () => call("/api/samples/" + r.folder + "/" + r.name, undefined, "DELETE")
      .then(refresh).catch(() => {});
    fig.append(img, del, cap);
    return fig;
  }));
}

function renderTraining(t) {
  const status = $("train-status");
  const bar = $("train-progress");
  if (t.state === "idle") { status.textContent = "not trained yet"; bar.value = 0; }
  else if (t.state === "running") {
    const st = t.stage || {};
    status.textContent = "training (" + t.seconds + " s)" + (st.stage ? ": " + st.stage + " " + st.done + "/" + st.total : "");
    bar.value = st.total ? st.done / st.total : 0;
  } else if (t.state === "done") {
    const m = (t.result && t.result.metrics) || {};
    const v = m.accuracy !== undefined ? (100 * m.accuracy).toFixed(1) + "% accuracy"
      : m.rmse !== undefined ? "RMSE " + m.rmse.toFixed(4) : "";
    status.textContent = "done in " + t.seconds + " s" + (t.result && t.result.input ? " (" + t.result.input + ")" : "") + (v ? ": " + v : "");
    bar.value = 1;
  } else { status.textContent = "failed: " + (t.error || ""); }
  status.dataset.state = t.state;
  if (changed("curve", t.curve || [])) drawCurve(t.curve || []);
}

function drawCurve(curve) {
  const c = $("curve"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const pts = curve.filter((p) => typeof p.value === "number");
  if (!pts.length) return;
  // Several candidates (auto) each start again at epoch 1: one line each.
  const runs = [];
  pts.forEach((p, i) => { if (i === 0 || p.epoch <= pts[i - 1].epoch) runs.push([]); runs[runs.length - 1].push(p); });
  const maxEpoch = Math.max(...pts.map((p) => p.epoch));
  const acc = pts[0].metric === "accuracy";
  const top = acc ? 1 : Math.max(...pts.map((p) => p.value)) || 1;
  const colors = ["#4caf50", "#29b6f6", "#ffb300", "#ef5350"];
  runs.forEach((run, k) => {
    g.strokeStyle = colors[k % colors.length];
    g.lineWidth = 2;
    g.beginPath();
    run.forEach((p, i) => {
      const x = 8 + (c.width - 16) * (maxEpoch > 1 ? (p.epoch - 1) / (maxEpoch - 1) : 0.5);
      const y = c.height - 8 - (c.height - 16) * (p.value / top);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  });
  $("curve-label").textContent = "validation " + pts[0].metric + " per epoch" +
    (runs.length > 1 ? " (" + runs.length + " candidates, one line each)" : "");
}

function renderPrediction(s) {
  $("prediction-panel").hidden = s.mode !== "infer";
  const p = s.prediction;
  if (!p) { $("prediction").textContent = s.mode === "infer" ? "waiting for frames" : ""; return; }
  let text = "";
  if (p.type === "class") text = p.label + " " + Math.round(100 * p.confidence) + "%";
  else if (p.type === "points") text = Object.entries(p.points).map(([k, v]) => k + " " + v[0].toFixed(2) + "," + v[1].toFixed(2)).join("  ");
  else if (p.type === "none") text = "no " + (p.subject && p.subject.kind || "subject");
  $("prediction").textContent = text;
  const scores = p.type === "class" ? Object.entries(p.scores) : [];
  if (changed("scores", scores)) {
    $("scores").replaceChildren(...scores.map(([k, v]) => {
      const row = document.createElement("div");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = Math.round(150 * v) + "px";
      row.append(bar, k + " " + Math.round(100 * v) + "%");
      return row;
    }));
  }
}

function render(s) {
  $("task").textContent = s.task.name + " (" + s.task.kind + ") on " + s.source;
  $("mode-capture").classList.toggle("on", s.mode === "capture");
  $("mode-infer").classList.toggle("on", s.mode === "infer");
  $("capture-panel").hidden = s.mode !== "capture";
  const recent = failure && Date.now() - failure.at < 6000;
  $("message").textContent = recent ? failure.text : (s.message || "");
  renderLabels(s);
  renderRecent(s);
  renderTraining(s.train);
  renderPrediction(s);
}

async function refresh() {
  try {
    state = await call("/api/state");
    render(state);
  } catch (e) { /* shown in the message line */ }
}

function bind() {
  $("capture").onclick = () => call("/api/capture", {label: state.selected}).then(refresh).catch(() => {});
  let keepAlive = null;
  const burstOn = () => call("/api/burst", {label: state.selected, on: true}).catch(() => stopBurst());
  const stopBurst = () => {
    if (!keepAlive) return;
    clearInterval(keepAlive);
    keepAlive = null;
    $("burst").classList.remove("on");
    call("/api/burst", {label: state.selected, on: false}).then(refresh).catch(() => {});
  };
  $("burst").onpointerdown = () => { burstOn(); keepAlive = setInterval(burstOn, 500); $("burst").classList.add("on"); };
  $("burst").onpointerup = stopBurst;
  $("burst").onpointerleave = stopBurst;
  $("stream").onclick = (ev) => {
    if (!state || !state.task.points || state.mode !== "capture") return;
    const img = ev.target, r = img.getBoundingClientRect();
    const x = (ev.clientX - r.left) / r.width, y = (ev.clientY - r.top) / r.height;
    call("/api/point", {name: state.selected, x: x, y: y}).then(refresh).catch(() => {});
  };
  $("save-points").onclick = () => call("/api/points", {action: "save"}).then(refresh).catch(() => {});
  $("clear-points").onclick = () => call("/api/points", {action: "clear"}).then(refresh).catch(() => {});
  $("train").onclick = () => call("/api/train", {mode: $("train-mode").value || null}).then(refresh).catch(() => {});
  $("train-stop").onclick = () => call("/api/train", {action: "stop"}).then(refresh).catch(() => {});
  $("mode-capture").onclick = () => call("/api/mode", {mode: "capture"}).then(refresh).catch(() => {});
  $("mode-infer").onclick = () => call("/api/mode", {mode: "infer"}).then(refresh).catch(() => {});
}

window.addEventListener("load", () => {
  bind();
  // The MJPEG stream never finishes loading: start it once the page has.
  $("stream").src = withToken("/stream");
  refresh();
  setInterval(refresh, 500);
});
