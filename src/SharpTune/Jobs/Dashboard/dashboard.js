// SharpTune job dashboard: plain JS over the job API, no external assets. The key comes from #key=… in the address
// (never sent to the server as part of the URL) or the form, is kept in sessionStorage and sent as a bearer header.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("key")) {
    sessionStorage.setItem("sharptune-key", hash.get("key"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const key = () => sessionStorage.getItem("sharptune-key") || "";
  let timer = null;

  async function api(path, init) {
    const headers = Object.assign({}, (init && init.headers) || {});
    if (key()) headers["Authorization"] = "Bearer " + key();
    const response = await fetch(path, Object.assign({}, init, { headers }));
    if (response.status === 401) { askKey(); throw new Error("API key required"); }
    if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
    return response;
  }
  const json = async (path, init) => (await api(path, init)).json();

  function askKey() {
    $("key-form").hidden = false;
    show("Enter the API key of this server.");
  }
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("sharptune-key", $("key-input").value);
    location.reload();
  });
  function show(text) { $("message").textContent = text; $("message").hidden = !text; }
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const progressText = (p) => p.total_steps ? `step ${p.step}/${p.total_steps}` : (p.step ? `step ${p.step}` : "");
  const fraction = (p) => p.total_steps ? Math.min(1, p.step / p.total_steps) : 0;
  const finalStates = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

  async function health() {
    try {
      const h = await (await fetch("/health")).json();
      $("health").textContent = `queued ${h.jobs.inQueue} · running ${h.jobs.inProgress} · workers ${h.workers.running}/${h.workers.max}`;
    } catch (e) { $("health").textContent = ""; }
  }

  async function listView() {
    $("list-view").hidden = false;
    const body = $("jobs").querySelector("tbody");
    const data = await json("/jobs");
    body.replaceChildren(...data.jobs.map((j) => {
      const row = el("tr", { "data-job": j.id, "data-state": j.status });
      const link = el("a", { href: "/?job=" + encodeURIComponent(j.id) }, j.id.slice(0, 8));
      const cell = el("td"); cell.append(link); row.append(cell);
      row.append(el("td", {}, j.user_id), el("td", {}, j.run_id), el("td", { class: "state-" + j.status }, j.status));
      const bar = el("span", { class: "bar" }); const fill = el("span"); fill.style.width = (100 * fraction(j.progress)) + "%"; bar.append(fill);
      const prog = el("td"); prog.append(bar, " " + progressText(j.progress)); row.append(prog);
      row.append(el("td", {}, new Date(j.created_at).toLocaleString()));
      return row;
    }));
    if (data.jobs.some((j) => !finalStates.includes(j.status))) timer = setTimeout(() => refresh(listView), 2000);
  }

  // One point per row: an SVG polyline plus a circle per point (class "pt"); data-points says how many were drawn.
  function chart(svg, points, format) {
    const W = 420, H = 220, L = 52, R = 10, T = 10, B = 24;
    svg.replaceChildren();
    svg.setAttribute("data-points", String(points.length));
    const ns = "http://www.w3.org/2000/svg";
    const add = (tag, attrs, text) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      svg.append(n); return n;
    };
    add("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B });
    add("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B });
    if (points.length === 0) { add("text", { x: L + 10, y: H / 2 }, "no data yet"); return; }
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (y1 === y0) { const d = Math.abs(y0) * 0.05 || 1; y0 -= d; y1 += d; }
    const px = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const py = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
    add("polyline", { class: "line", points: points.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ") });
    for (const p of points) add("circle", { class: "pt", cx: px(p[0]).toFixed(1), cy: py(p[1]).toFixed(1), r: 2.5, "data-step": p[0] });
    add("text", { x: 2, y: T + 8 }, format(y1));
    add("text", { x: 2, y: H - B }, format(y0));
    add("text", { x: L, y: H - 6 }, "step " + x0);
    add("text", { x: W - R - 40, y: H - 6 }, "step " + x1);
  }
  const num = (v) => Math.abs(v) < 1e-2 ? v.toExponential(1) : v.toFixed(3);

  async function jobView(id) {
    $("job-view").hidden = false;
    const job = await json("/status/" + encodeURIComponent(id));
    $("job-title").textContent = `${job.run_id} (${job.user_id})`;
    $("state").textContent = job.status;
    $("state").className = "state-" + job.status;
    $("state").setAttribute("data-state", job.status);
    $("progress-text").textContent = progressText(job.progress);
    $("error").hidden = !job.error; $("error").textContent = job.error || "";
    $("cancel").hidden = finalStates.includes(job.status);
    const metrics = (await json(`/jobs/${encodeURIComponent(id)}/metrics`)).metrics;
    const steps = metrics.filter((m) => typeof m.loss === "number");
    chart($("loss-chart"), steps.map((m) => [m.step, m.loss]), num);
    chart($("lr-chart"), steps.filter((m) => typeof m.learning_rate === "number").map((m) => [m.step, m.learning_rate]), num);
    chart($("eval-chart"), metrics.filter((m) => typeof m.eval_loss === "number").map((m) => [m.step, m.eval_loss]), num);
    const log = await json(`/jobs/${encodeURIComponent(id)}/log?tail=200`);
    $("log").textContent = log.lines.join("\n");
    $("log").scrollTop = $("log").scrollHeight;
    const artifacts = (await json(`/jobs/${encodeURIComponent(id)}/artifacts`)).artifacts;
    $("artifacts").replaceChildren(...artifacts.map((a) => {
      const item = el("li");
      const link = el("a", { href: "#", "data-path": a.path }, a.path);
      link.addEventListener("click", (e) => { e.preventDefault(); download(id, a.path); });
      item.append(link, ` (${a.size.toLocaleString()} bytes)`);
      return item;
    }));
    document.body.setAttribute("data-loaded", job.status);
    if (!finalStates.includes(job.status)) timer = setTimeout(() => refresh(() => jobView(id)), 2000);
  }

  async function download(id, path) {
    const response = await api(`/jobs/${encodeURIComponent(id)}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`);
    const url = URL.createObjectURL(await response.blob());
    const a = el("a", { href: url, download: path.split("/").pop() });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  $("cancel").addEventListener("click", async () => {
    const id = params.get("job");
    if (!confirm("Cancel this job? A running job saves a checkpoint, then stops.")) return;
    try { await api("/cancel/" + encodeURIComponent(id), { method: "POST" }); refresh(() => jobView(id)); }
    catch (e) { show(e.message); }
  });

  async function refresh(view) {
    clearTimeout(timer);
    health();
    try { show(""); await view(); } catch (e) { show(e.message); }
  }
  refresh(params.get("job") ? () => jobView(params.get("job")) : listView);
})();
