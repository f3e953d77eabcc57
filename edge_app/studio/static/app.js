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
  $("prediction-panel").hidden = s.mode !== "infer" || view === "review";
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

// -- the Review view: collected frames, most uncertain first --------------------------------
let view = "camera";      // or "review" (a page-side view; the server's mode stays as it is)
let review = null;        // the last /api/review answer
let picked = null;        // "model/file" of the frame shown
let dragged = {};         // point task: name -> [x, y] as placed on the frame shown
let dragging = null;      // the point being dragged: the poll must not redraw it away

// Dragging follows the pointer over the whole page (a fast move leaves the small dot behind).
function dragMove(ev) {
  if (!dragging) return;
  const r = $("review-frame").getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
  const y = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
  dragged[dragging] = [x, y];
  const dot = document.querySelector("[data-testid='review-point-" + dragging + "']");
  if (dot) { dot.style.left = (100 * x) + "%"; dot.style.top = (100 * y) + "%"; }
}

function showView(name) {
  view = name;
  $("review-view").hidden = name !== "review";
  $("review-panel").hidden = name !== "review";
  $("camera-view").hidden = name === "review";
  $("mode-review").classList.toggle("on", name === "review");
  if (name === "review") refreshReview();
  if (state) render(state);
}

function itemKey(i) { return i.model + "/" + i.file; }

function pickedItem() {
  if (!review || !review.items.length) return null;
  return review.items.find((i) => itemKey(i) === picked) || review.items[0];
}

async function refreshReview() {
  try {
    review = await call("/api/review");
    renderReview();
  } catch (e) { /* shown in the message line */ }
}

function guessText(p) {
  if (!p) return "";
  if (p.type === "class") return "model: " + p.label + " " + Math.round(100 * p.confidence) + "%";
  if (p.type === "points") return "model: " + Object.keys(p.points).length + " points (drag to correct)";
  if (p.type === "none") return "model: no " + ((p.subject && p.subject.kind) || "subject");
  return "";
}

function renderReview() {
  if (!review || !state) return;
  const c = review.counts || {};
  $("review-counts").textContent = (c.to_review || 0) + " to review, " + (c.skipped || 0) + " skipped, " +
    (c.confirmed || 0) + " confirmed (" + (c.held_back || 0) + " held back to judge a retrain)";
  $("review-retrain").disabled = !review.can_train;
  $("review-train").textContent = review.can_train ? trainText(state.train)
    : "training needs torch (not installed here): copy the dataset folder to a desktop or a Jetson installed with --train";
  $("review-compare").textContent = compareText(review.compare || {});
  $("review-compare").dataset.state = (review.compare || {}).state || "idle";
  const item = pickedItem();
  picked = item ? itemKey(item) : null;
  if (changed("review-list", review.items.map((i) => [itemKey(i), i.skipped]).concat([picked]))) {
    $("review-list").replaceChildren(...review.items.slice(0, 48).map((i) => {
      const fig = document.createElement("figure");
      fig.dataset.testid = "review-item";
      fig.className = (itemKey(i) === picked ? "on " : "") + (i.skipped ? "skipped" : "");
      const img = document.createElement("img");
      img.src = withToken("/api/review/image/" + i.model + "/" + i.file);
      img.alt = i.reason;
      const cap = document.createElement("figcaption");
      cap.textContent = i.reason + " " + (i.prediction && i.prediction.label ? i.prediction.label : "");
      fig.append(img, cap);
      fig.onclick = () => { picked = itemKey(i); dragged = {}; renderReview(); };
      return fig;
    }));
  }
  if (!item) {
    $("review-image").removeAttribute("src");
    $("review-guess").textContent = review.available === false
      ? "no collected frames: start the studio with --collected DIR" : "nothing left to review";
    $("review-answers").replaceChildren();
    $("review-points").replaceChildren();
    return;
  }
  const src = withToken("/api/review/image/" + item.model + "/" + item.file);
  if ($("review-image").dataset.key !== picked) {
    $("review-image").src = src;
    $("review-image").dataset.key = picked;
    dragged = {};
  }
  $("review-guess").textContent = guessText(item.prediction) + "  (" + item.reason +
    (item.skipped ? ", skipped" : "") + ")";
  renderAnswers(item);
}

function trainText(t) {
  if (!t || t.state === "idle") return "";
  if (t.state === "running") return "retraining (" + t.seconds + " s)";
  if (t.state === "failed") return "retrain failed: " + (t.error || "");
  return "retrained in " + t.seconds + " s";
}

function compareText(c) {
  const pct = (s) => s ? (s.metric === "accuracy" ? Math.round(100 * s.value) + "%" : "error " + s.value) : "n/a";
  if (c.state === "training") return "";
  if (c.state === "comparing") return "comparing the new model with the current one on the held-back frames...";
  if (c.state === "failed") return "comparison failed: " + (c.error || "");
  if (c.state !== "done") return "";
  const scores = c.new_score ? "new " + pct(c.new_score) + " vs current " + pct(c.current_score) + " on " + c.n + " held-back frames: " : "";
  return scores + (c.switched ? "switched to the new model (" + c.why + ")" : "kept the current model: " + c.why) +
    (c.rolled_back ? "; rolled back to " + c.rolled_back : "");
}

function renderAnswers(item) {
  const labels = state.task.labels;
  const guess = item.prediction || {};
  if (!state.task.points) {
    if (changed("review-answers", [picked, labels])) {
      $("review-answers").replaceChildren(...labels.map((name, k) => {
        const b = document.createElement("button");
        b.dataset.testid = "review-label-" + name;
        b.className = name === guess.label ? "on" : "";
        const key = document.createElement("kbd");
        key.textContent = k < 9 ? String(k + 1) : "";
        b.append(key, name);
        b.onclick = () => confirmItem(name);
        return b;
      }));
      $("review-keys").textContent = "keys: 1-" + Math.min(9, labels.length) +
        " confirm as that class, Enter confirm the model's guess, S skip, Delete delete, arrows move";
    }
    $("review-points").replaceChildren();
    return;
  }
  $("review-answers").replaceChildren();
  $("review-keys").textContent = "drag the points where they belong, Enter confirm, S skip, Delete delete, arrows move";
  const pts = Object.assign({}, guess.points || {}, dragged);
  if (dragging || !changed("review-points", [picked, pts])) return;
  $("review-points").replaceChildren(...labels.map((name, k) => {
    const p = pts[name] || [0.1 + 0.1 * k, 0.1];
    const dot = document.createElement("div");
    dot.className = "pt";
    dot.dataset.testid = "review-point-" + name;
    dot.style.left = (100 * p[0]) + "%";
    dot.style.top = (100 * p[1]) + "%";
    const tag = document.createElement("span");
    tag.textContent = name;
    dot.append(tag);
    dot.onpointerdown = (ev) => { dragging = name; ev.preventDefault(); };
    return dot;
  }));
}

function reviewPoints(item) {
  const out = {};
  const guess = (item.prediction && item.prediction.points) || {};
  state.task.labels.forEach((name) => {
    const p = dragged[name] || guess[name];
    if (p) out[name] = [Math.min(1, Math.max(0, p[0])), Math.min(1, Math.max(0, p[1]))];
  });
  return out;
}

function nextAfter(item) {
  const i = review.items.indexOf(item);
  const next = review.items[i + 1] || review.items[i - 1];
  picked = next ? itemKey(next) : null;
  dragged = {};
}

function act(action, extra) {
  const item = pickedItem();
  if (!item) return;
  const body = Object.assign({model: item.model, file: item.file}, extra || {});
  nextAfter(item);
  call("/api/review/" + action, body).then((r) => {
    $("review-message").textContent = action === "confirm" ? "confirmed: " + (r.to === "dataset" ? "added to the dataset" : "held back to judge the next model") : action === "skip" ? "skipped" : "deleted (kept in .deleted/)";
  }).catch(() => {}).then(refreshReview);
}

function confirmItem(label) {
  const item = pickedItem();
  if (!item) return;
  if (state.task.points) act("confirm", {points: reviewPoints(item)});
  else if (label || (item.prediction && item.prediction.label)) act("confirm", {label: label || item.prediction.label});
}

function move(step) {
  if (!review || !review.items.length) return;
  const i = review.items.indexOf(pickedItem());
  const next = review.items[Math.min(review.items.length - 1, Math.max(0, i + step))];
  picked = itemKey(next);
  dragged = {};
  renderReview();
}

function onKey(ev) {
  if (view !== "review" || ev.target.tagName === "SELECT" || ev.target.tagName === "INPUT") return;
  const k = ev.key;
  if (/^[1-9]$/.test(k) && state && !state.task.points && state.task.labels[+k - 1]) confirmItem(state.task.labels[+k - 1]);
  else if (k === "Enter") confirmItem(null);
  else if (k === "s" || k === "S") act("skip");
  else if (k === "Delete" || k === "Backspace") act("delete");
  else if (k === "ArrowRight" || k === "ArrowDown") move(1);
  else if (k === "ArrowLeft" || k === "ArrowUp") move(-1);
  else return;
  ev.preventDefault();
}

function render(s) {
  const check = s.camera_check || {};
  // only the settled answer: a line that comes and goes while checking would move the page
  const turned = check.state === "turned" ? " | " + check.line : "";
  $("task").textContent = s.task.name + " (" + s.task.kind + ") on " + s.source + turned;
  $("mode-review").hidden = !s.review;
  $("mode-capture").hidden = !s.camera;
  $("mode-infer").hidden = !s.camera;
  if (!s.camera && view !== "review") showView("review");
  // The MJPEG stream never finishes loading: started once the page has (and only from a camera).
  if (s.camera && !$("stream").getAttribute("src")) $("stream").src = withToken("/stream");
  $("mode-capture").classList.toggle("on", s.mode === "capture" && view !== "review");
  $("mode-infer").classList.toggle("on", s.mode === "infer" && view !== "review");
  $("capture-panel").hidden = s.mode !== "capture" || view === "review" || !s.camera;
  // shots wait for the camera check (a shot before its correction would be stored turned)
  const checking = check.state === "checking";
  for (const id of ["capture", "burst"]) {
    const b = $(id);
    if (b.dataset.title === undefined) b.dataset.title = b.title;
    b.disabled = checking;
    b.title = checking ? "checking which way up the camera is: show a face or an open hand" : b.dataset.title;
  }
  $("train-panel").hidden = view === "review";
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
  $("mode-capture").onclick = () => { showView("camera"); call("/api/mode", {mode: "capture"}).then(refresh).catch(() => {}); };
  $("mode-infer").onclick = () => { showView("camera"); call("/api/mode", {mode: "infer"}).then(refresh).catch(() => {}); };
  $("mode-review").onclick = () => showView("review");
  $("review-confirm").onclick = () => confirmItem(null);
  $("review-skip").onclick = () => act("skip");
  $("review-delete").onclick = () => act("delete");
  $("review-retrain").onclick = () => call("/api/review/retrain", {mode: $("review-mode").value || null}).then(refreshReview).catch(() => {});
  $("review-switch").onclick = () => call("/api/review/switch", {}).then(refreshReview).catch(() => {});
  $("review-rollback").onclick = () => call("/api/review/rollback", {}).then(refreshReview).catch(() => {});
  document.addEventListener("keydown", onKey);
  document.addEventListener("pointermove", dragMove);
  document.addEventListener("pointerup", () => { dragging = null; });
}

window.addEventListener("load", () => {
  bind();
  refresh();
  setInterval(refresh, 500);
  setInterval(() => { if (view === "review") refreshReview(); }, 1000);
});
