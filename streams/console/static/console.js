// The triage console: the queue on the left, the selected alert on the right, verdicts by key.
// Every piece of alert data is put in the page as text (never as markup): attackers write it.
// Bidirectional controls in it are shown as visible escapes, and every element of the queue and
// the alert is isolated (console.css), so no text reorders itself or what stands next to it.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const state = {
    token: "",
    items: [],          // the queue, as the API orders it
    selected: -1,       // index in items
    detail: null,       // {alert, messages, labels} of the alert shown
    shownId: null,      // the alert shown (may be an earlier one opened from the history)
    busy: false,
    loadSeq: 0,
  };
  const $ = (id) => document.getElementById(id);

  // "\u202egnp.exe" would read "exe.png": embeddings, overrides, isolates and marks are shown
  // as ⟦U+202E⟧ instead of acting.
  const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  const visible = (text) =>
    text.replace(BIDI, (c) => `⟦U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟧`);

  // ---- DOM helpers: text only ---------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "title" || name === "aria-label") node.setAttribute(name, visible(String(value)));
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }
  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    append(node, children);
    return node;
  }
  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(visible(String(child))));
    }
  }

  // ---- formatting ---------------------------------------------------------------------
  const pad = (n) => String(n).padStart(2, "0");
  function utc(ts, withDate = true) {
    const d = new Date(ts);
    if (isNaN(d)) return String(ts ?? "");
    const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
    return withDate ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time}` : time;
  }
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  // "26 Nov 21:29:14": short enough for a fact cell; the year is in the tooltip.
  function short(ts) {
    const d = new Date(ts);
    if (isNaN(d)) return String(ts ?? "—");
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${utc(ts, false)}`;
  }
  function span(start, end) {
    const sameDay = utc(start).slice(0, 10) === utc(end).slice(0, 10);
    return `${short(start)} → ${sameDay ? utc(end, false) : short(end)} UTC`;
  }
  function ago(ts) {
    const seconds = (Date.now() - new Date(ts).getTime()) / 1000;
    if (!isFinite(seconds)) return "";
    if (seconds < 0) return "just now";
    if (seconds < 90) return `${Math.round(seconds)} s ago`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
    if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
    return `${Math.round(seconds / 86400)} d ago`;
  }
  function duration(seconds) {
    if (!isFinite(seconds)) return "";
    if (seconds < 120) return `${Math.round(seconds)} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  function num(value, digits = 2) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return value.toLocaleString("en-US", { maximumFractionDigits: digits });
  }
  function percent(priority) {
    return typeof priority === "number" ? `${Math.round(priority * 100)}%` : "—";
  }
  const entityText = (entity) => (entity ? `${entity.type}:${entity.id}` : "");

  // ---- the API -----------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(path, options = {}) {
    const response = await fetch(path, {
      ...options,
      headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (response.status === 401) {
      askToken("The token was not accepted.");
      throw new ApiError(401, "missing or wrong token");
    }
    if (response.status === 429) {
      askToken("Too many wrong tokens: wait a moment, then try again.");
      throw new ApiError(401, "too many wrong tokens");
    }
    if (!response.ok) throw new ApiError(response.status, (body && body.error) || response.statusText);
    return body;
  }

  // ---- token -------------------------------------------------------------------------
  // Taken once from the fragment (/#token=...), which no request carries, and removed from the
  // address. One in the query string (?token=) reached the server, its proxies and their logs
  // already: it is removed and not used, so the address that leaks it does not work.
  // Returns whether the address had one in its query string.
  function takeToken() {
    const url = new URL(window.location.href);
    const given = new URLSearchParams(url.hash.slice(1)).get("token");
    const inQuery = url.searchParams.has("token");
    if (given) sessionStorage.setItem("abusemon.token", given.trim());
    if (given !== null || inQuery) {
      url.searchParams.delete("token");
      history.replaceState(null, "", url.pathname + url.search);
    }
    state.token = sessionStorage.getItem("abusemon.token") || "";
    return inQuery;
  }
  function askToken(message) {
    sessionStorage.removeItem("abusemon.token");
    state.token = "";
    $("login-error").textContent = message || "";
    $("login-error").hidden = !message;
    $("login").hidden = false;
    $("token").focus();
  }

  // ---- queue -------------------------------------------------------------------------
  function filters() {
    const params = new URLSearchParams();
    const detector = $("f-detector").value;
    const severity = $("f-severity").value;
    const since = $("f-since").value;
    const labeler = $("labeler").value.trim();
    if (detector) params.set("detector", detector);
    if (severity) params.set("severity", severity);
    if (since) params.set("since", new Date(Date.now() - Number(since) * 1000).toISOString());
    if (labeler) params.set("labeler", labeler);
    return params;
  }

  async function loadQueue(keepId) {
    const seq = ++state.loadSeq;
    status("loading…");
    let data;
    try {
      data = await api(`/api/queue?${filters()}`);
    } catch (error) {
      if (error.status !== 401) toast(`Queue: ${error.message}`, true);
      status("");
      return;
    }
    if (seq !== state.loadSeq) return; // a newer load is on its way
    state.items = data.items || [];
    const keep = keepId ? state.items.findIndex((item) => item.alert_id === keepId) : -1;
    renderQueue();
    status(`updated ${utc(new Date().toISOString(), false)} UTC`);
    if (state.items.length) select(keep >= 0 ? keep : 0, true);
    else showNothing();
  }

  function renderQueue() {
    const list = $("queue");
    list.replaceChildren(...state.items.map((item, index) => queueRow(item, index)));
    $("queue-empty").hidden = state.items.length > 0;
    const audits = state.items.filter((item) => item.audit).length;
    $("queue-count").textContent = `${state.items.length} open` + (audits ? ` · ${audits} audit` : "");
  }

  function queueRow(item, index) {
    return h("li", {
      class: `sev-${item.severity}` + (index === state.selected ? " selected" : ""),
      "data-alert-id": item.alert_id,
      "data-detector": item.detector,
      onclick: () => select(index),
    },
      h("div", { class: "prio", title: "priority" }, percent(item.priority), h("small", {}, "prio")),
      h("div", { class: "q-head" },
        h("span", { class: "sev" }, item.severity),
        h("span", { class: "det" }, item.detector),
        item.audit ? h("span", { class: "badge-audit", title: "labelled once already: give your own verdict" }, "audit") : null,
        h("span", { class: "q-entity", title: entityText(item.entity) }, item.entity ? item.entity.id : ""),
      ),
      h("time", { class: "q-time", datetime: item.ts, title: `${utc(item.ts)} UTC` }, ago(item.ts)),
      h("div", { class: "q-summary" }, item.summary),
    );
  }

  function select(index, scroll = true) {
    if (index < 0 || index >= state.items.length) return;
    state.selected = index;
    const rows = $("queue").children;
    for (let i = 0; i < rows.length; i++) rows[i].classList.toggle("selected", i === index);
    if (scroll && rows[index]) rows[index].scrollIntoView({ block: "nearest" });
    showAlert(state.items[index].alert_id, state.items[index]);
  }

  function move(step) {
    if (!state.items.length) return;
    const next = state.selected < 0 ? 0 : Math.min(state.items.length - 1, Math.max(0, state.selected + step));
    if (next !== state.selected) select(next);
  }

  function showNothing() {
    state.selected = -1;
    state.detail = null;
    state.shownId = null;
    $("detail").replaceChildren(h("p", { class: "empty" }, "Nothing selected. The queue is empty for these filters."));
    $("verdict").hidden = true;
  }

  // ---- detail ------------------------------------------------------------------------
  // The verdict buttons act on the alert shown: none while another is on its way, or failed.
  function verdictEnabled(enabled) {
    for (const button of document.querySelectorAll("[data-verdict]")) button.disabled = !enabled;
  }

  async function showAlert(alertId, queueItem) {
    state.shownId = alertId;
    // The alert on screen stays labellable while its own details are fetched again (a queue
    // refresh that keeps it selected); another alert's verdict waits for its details.
    if (!state.detail || state.detail.alert.alert_id !== alertId) {
      state.detail = null;
      verdictEnabled(false);
    }
    let detail;
    try {
      detail = await api(`/api/alerts/${encodeURIComponent(alertId)}`);
    } catch (error) {
      if (state.shownId !== alertId) return;
      state.detail = null;
      verdictEnabled(false);
      $("detail").replaceChildren(h("p", { class: "empty error" }, `This alert could not be loaded: ${error.message}`));
      $("verdict").hidden = true;
      if (error.status !== 401) toast(`Alert: ${error.message}`, true);
      return;
    }
    if (state.shownId !== alertId) return; // another alert was selected meanwhile
    state.detail = detail;
    renderDetail(detail, queueItem);
    $("verdict").hidden = false;
    verdictEnabled(true);
    loadHistory(detail.alert);
  }

  function renderDetail(detail, queueItem) {
    const alert = detail.alert;
    const ev = alert.evidence || {};
    const start = new Date(alert.window && alert.window.start);
    const end = new Date(alert.window && alert.window.end);
    const facts = [
      ["Window", h("span", { title: `${utc(alert.window && alert.window.start)} → ${utc(alert.window && alert.window.end)} UTC` },
        span(alert.window && alert.window.start, alert.window && alert.window.end),
        h("span", { class: "muted" }, ` · ${duration((end - start) / 1000)}`))],
      ["Score vs threshold", scoreFact(alert.score, alert.threshold)],
      ["Priority", percent(alert.priority ?? (queueItem && queueItem.priority))],
      ["Status", h("span", { title: `first raised ${utc(alert.first_ts || alert.ts)} UTC` },
        `${alert.status || "firing"} · ${detail.messages.length} message${detail.messages.length === 1 ? "" : "s"}`)],
    ];
    const node = h("article", { class: `alert-detail sev-${alert.severity}`, "data-alert-id": alert.alert_id },
      h("div", { class: "d-head" },
        h("span", { class: "sev" }, alert.severity),
        h("span", { class: "det" }, alert.detector),
        queueItem && queueItem.audit ? h("span", { class: "badge-audit" }, "audit") : null,
        h("span", { class: "d-entity" }, entityText(alert.entity)),
        h("span", { class: "d-id", title: "alert_id" }, alert.alert_id),
      ),
      h("p", { class: "d-summary" }, alert.summary),
      h("dl", { class: "facts" }, facts.map(([name, value], i) => h("div", { class: i === 0 ? "fact wide" : "fact" }, h("dt", {}, name), h("dd", {}, value)))),
      evidenceView(alert, detail.messages),
      labelsView("Labels on this alert", detail.labels),
      h("section", { id: "history" }, h("h3", {}, "Entity history"), h("p", { class: "muted" }, "loading…")),
      h("details", { class: "raw" }, h("summary", {}, "Raw evidence (JSON)"), h("pre", {}, JSON.stringify(ev, null, 2))),
    );
    $("detail").replaceChildren(node);
    $("detail").scrollTop = 0;
  }

  function scoreFact(score, threshold) {
    const ratio = threshold > 0 ? score / threshold : 0;
    const scale = Math.max(score, threshold * 2) || 1;
    return h("span", {},
      `${num(score, 3)} / ${num(threshold, 3)}`,
      threshold > 0 ? h("span", { class: "muted" }, ` (${num(ratio, 1)}×)`) : null,
      h("div", { class: "scorebar", title: "score, with the threshold marked" },
        h("span", { style: null, "data-w": 0 }),
        h("i", {}),
      ),
    );
  }
  // Bar widths are set through the CSSOM (inline style attributes are blocked by the CSP).
  function sizeScorebars(root) {
    for (const bar of root.querySelectorAll(".scorebar")) {
      const alert = state.detail && state.detail.alert;
      if (!alert) continue;
      const scale = Math.max(alert.score, alert.threshold * 2) || 1;
      bar.querySelector("span").style.width = `${Math.min(100, (alert.score / scale) * 100)}%`;
      bar.querySelector("i").style.left = `${(alert.threshold / scale) * 100}%`;
    }
    for (const bar of root.querySelectorAll(".excess[data-w]")) bar.style.width = `${bar.dataset.w}px`;
  }

  function evidenceView(alert, messages) {
    const ev = alert.evidence || {};
    const section = h("section", { class: "evidence" }, h("h3", {}, "Evidence"));
    const views = {
      volume_spike: volumeEvidence,
      actor_anomaly: actorEvidence,
      content_campaign: campaignEvidence,
      report_brigade: brigadeEvidence,
    };
    const view = views[alert.detector];
    append(section, [view ? view(ev, messages, alert) : h("p", { class: "muted" }, "No view for this detector: see the raw evidence below.")]);
    return section;
  }

  function factList(pairs) {
    return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined).map(([name, value]) =>
      h("div", { class: "fact" }, h("dt", {}, name), h("dd", {}, value))));
  }
  function chips(values, cls = "chip") {
    const list = Array.isArray(values) ? values : [];
    if (!list.length) return h("span", { class: "muted" }, "none");
    return h("div", {}, list.map((value) => h("span", { class: cls }, value)));
  }
  function countTable(counts, keyName, valueName) {
    const rows = Object.entries(counts || {}).sort((a, b) => b[1] - a[1]);
    if (!rows.length) return h("p", { class: "muted" }, "none");
    return h("table", { class: "data counts" },
      h("tr", {}, h("th", {}, keyName), h("th", { class: "num" }, valueName)),
      rows.map(([key, value]) => h("tr", {}, h("td", { class: "mono" }, key), h("td", { class: "num" }, num(value)))));
  }
  function memberList(members, total) {
    const list = Array.isArray(members) ? members.filter((m) => m !== "…") : [];
    const more = typeof total === "number" && total > list.length ? total - list.length : 0;
    return h("div", { class: "members" }, list.map((m) => h("span", { class: "chip mono" }, m)),
      more ? h("span", { class: "muted" }, ` and ${num(more)} more`) : null);
  }

  // volume_spike: observed against expected and the normal band, over the alert's messages
  function volumeEvidence(ev, messages) {
    const points = messages
      .map((m) => ({ ts: new Date(m.ts).getTime(), e: m.evidence || {} }))
      .filter((p) => isFinite(p.ts) && typeof p.e.observed === "number")
      .sort((a, b) => a.ts - b.ts);
    const chart = points.length > 1 ? lineChart(points) : barChart(points.length ? points[0].e : ev);
    return h("div", {},
      h("div", { class: "card" },
        h("div", { class: "legend" },
          h("span", {}, h("i", { class: "l-obs" }), "observed"),
          h("span", {}, h("i", { class: "l-exp" }), "expected"),
          h("span", {}, h("i", { class: "l-band" }), "normal band (upper = alert line)"),
          h("span", {}, `events per ${num(ev.window_seconds)} s window, UTC`),
        ),
        chart,
      ),
      h("div", { class: "spacer" }),
      factList([
        ["Signal", h("span", { class: "mono" }, ev.signal)],
        ["Observed", num(ev.observed)],
        ["Expected", num(ev.expected, 1)],
        ["Normal band", ev.band ? `${num(ev.band.lower, 1)} – ${num(ev.band.upper, 1)}` : "—"],
        ["Ratio", ev.ratio === null || ev.ratio === undefined ? "— (expected < 1)" : `${num(ev.ratio, 1)}×`],
        ["Peak score", num(ev.peak_score, 2)],
        ["Windows flagged", num(ev.windows_flagged)],
        ["Baseline windows", num(ev.baseline_windows)],
      ]),
      h("h3", {}, "Sample events"), chips(ev.sample_event_ids, "chip mono"),
    );
  }

  function lineChart(points) {
    const W = 760, H = 220, L = 44, R = 92, T = 14, B = 28;
    const xs = points.map((p) => p.ts);
    const ys = points.flatMap((p) => [p.e.observed, p.e.expected, p.e.band ? p.e.band.upper : 0]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    const yMax = niceMax(Math.max(1, ...ys.filter((y) => typeof y === "number")));
    const x = (t) => L + ((t - x0) / (x1 - x0 || 1)) * (W - L - R);
    const y = (v) => T + (1 - v / yMax) * (H - T - B);
    const line = (get) => points.map((p, i) => `${i ? "L" : "M"}${x(p.ts).toFixed(1)},${y(get(p)).toFixed(1)}`).join(" ");
    const withBand = points.filter((p) => p.e.band);
    const band = withBand.length > 1
      ? withBand.map((p, i) => `${i ? "L" : "M"}${x(p.ts).toFixed(1)},${y(p.e.band.upper).toFixed(1)}`).join(" ") + " " +
        withBand.slice().reverse().map((p) => `L${x(p.ts).toFixed(1)},${y(p.e.band.lower).toFixed(1)}`).join(" ") + " Z"
      : null;
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);
    const xTicks = points.length <= 6 ? points.map((p) => p.ts) : [x0, x0 + (x1 - x0) / 2, x1];
    return s("svg", { class: "chart volume", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "observed against expected events per window" },
      ticks.map((v) => s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) })),
      ticks.map((v) => s("text", { class: "axis", x: L - 6, y: y(v) + 3.5, "text-anchor": "end" }, num(Math.round(v)))),
      xTicks.map((t) => s("text", { class: "axis", x: x(t), y: H - 8, "text-anchor": "middle" }, utc(t, false).slice(0, 5))),
      band ? s("path", { class: "band", d: band }) : null,
      withBand.length > 1 ? s("path", { class: "band-edge", d: withBand.map((p, i) => `${i ? "L" : "M"}${x(p.ts).toFixed(1)},${y(p.e.band.upper).toFixed(1)}`).join(" ") }) : null,
      s("path", { class: "expected", d: line((p) => p.e.expected ?? 0) }),
      s("path", { class: "observed", d: line((p) => p.e.observed) }),
      points.map((p) => s("circle", { class: "pt", cx: x(p.ts), cy: y(p.e.observed), r: 3.2 },
        s("title", {}, `${utc(p.ts)} UTC: observed ${p.e.observed}, expected ${num(p.e.expected, 1)}`))),
      endLabels(points[points.length - 1].e, x(x1) + 8, y),
    );
  }

  // The latest values at the right end of the lines, nudged apart when they would overlap.
  function endLabels(e, x, y) {
    const labels = [["val obs-label", `observed ${num(e.observed)}`, y(e.observed)],
      ["axis", `expected ${num(e.expected, 1)}`, y(e.expected ?? 0)]];
    if (e.band) labels.push(["axis", `upper ${num(e.band.upper, 1)}`, y(e.band.upper)]);
    labels.sort((a, b) => a[2] - b[2]);
    for (let i = 1; i < labels.length; i++) labels[i][2] = Math.max(labels[i][2], labels[i - 1][2] + 12);
    return labels.map(([cls, text, at]) => s("text", { class: cls, x, y: at + 3.5 }, text));
  }

  function barChart(e) {
    const W = 420, H = 200, L = 44, T = 18, B = 28;
    const upper = e.band ? e.band.upper : 0;
    const yMax = niceMax(Math.max(1, e.observed || 0, e.expected || 0, upper));
    const y = (v) => T + (1 - v / yMax) * (H - T - B);
    const bars = [["observed", e.observed || 0, "bar-observed"], ["expected", e.expected || 0, "bar-expected"]];
    const ticks = [0, 0.5, 1].map((f) => f * yMax);
    return s("svg", { class: "chart volume single", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "observed against expected events" },
      ticks.map((v) => s("line", { class: "grid", x1: L, x2: W - 10, y1: y(v), y2: y(v) })),
      ticks.map((v) => s("text", { class: "axis", x: L - 6, y: y(v) + 3.5, "text-anchor": "end" }, num(Math.round(v)))),
      e.band ? s("rect", { class: "band", x: L, width: W - 10 - L, y: y(e.band.upper), height: Math.max(0, y(e.band.lower) - y(e.band.upper)) }) : null,
      e.band ? s("line", { class: "band-edge", x1: L, x2: W - 10, y1: y(upper), y2: y(upper) }) : null,
      bars.map(([name, value, cls], i) => {
        const bx = L + 50 + i * 150;
        return [
          s("rect", { class: cls, x: bx, width: 80, y: y(value), height: Math.max(1, y(0) - y(value)), rx: 2 }),
          s("text", { class: "val", x: bx + 40, y: y(value) - 5, "text-anchor": "middle" }, num(value, 1)),
          s("text", { class: "axis", x: bx + 40, y: H - 8, "text-anchor": "middle" }, name),
        ];
      }),
    );
  }

  function niceMax(v) {
    const power = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= v) return step * power;
    return 10 * power;
  }

  // actor_anomaly: the features beyond the population's typical range
  function actorEvidence(ev) {
    const top = Array.isArray(ev.top_features) ? ev.top_features : [];
    const maxExcess = Math.max(1, ...top.map((f) => f.excess || 0));
    const reasons = ev.reports_received_reasons || {};
    return h("div", {},
      factList([
        ["Account", h("span", { class: "mono" }, ev.actor)],
        ["Account age", ev.account_age_days === null || ev.account_age_days === undefined ? "unknown" : `${num(ev.account_age_days, 1)} days`],
        ["Main surface", ev.surface || "—"],
        ["Peak score", num(ev.peak_score, 3)],
        ["Windows flagged", num(ev.windows_flagged)],
        ["Model", `${ev.model || "—"} · ${num(ev.population_size)} actors`],
      ]),
      h("h3", {}, "Indicators"), chips(ev.indicators, "chip ind"),
      h("h3", {}, "Features beyond the population"),
      top.length ? h("table", { class: "data features" },
        h("tr", {}, h("th", {}, "feature"), h("th", { class: "num" }, "value"), h("th", { class: "num" }, "population p50"),
          h("th", { class: "num", title: "99th percentile (1st for gap_cv and age_days)" }, "population p99"), h("th", {}, "excess (widths beyond the edge)")),
        top.map((f) => h("tr", {},
          h("td", { class: "mono" }, f.feature),
          h("td", { class: "num" }, h("strong", {}, num(f.value, 3))),
          h("td", { class: "num" }, num(f.population_median, 3)),
          h("td", { class: "num" }, num(f.population_edge, 3)),
          h("td", {}, h("span", { class: "excess", "data-w": Math.round((Math.max(0, f.excess || 0) / maxExcess) * 160) }), num(f.excess, 2)),
        ))) : h("p", { class: "muted" }, "none listed"),
      h("h3", {}, "Link domains in the latest window"), chips(ev.domains, "chip mono"),
      Object.keys(reasons).length ? [h("h3", {}, "Reports received"), countTable(reasons, "reason", "reports")] : null,
      ev.features ? [h("h3", {}, "All features"), h("div", {}, Object.entries(ev.features).map(([k, v]) => h("span", { class: "chip mono" }, `${k} ${num(v, 3)}`)))] : null,
    );
  }

  const KINDS = { link: "shared new domain", synchronised: "same schedule" };

  // A synchronised campaign's schedule: when its accounts acted together, and how often
  function scheduleFacts(schedule) {
    const every = schedule.period_seconds;
    return [
      h("h3", {}, "Shared schedule"),
      factList([
        ["Every", every == null ? "—" : `${num(every / 60, 1)} min`],
        ["Within", `${num(schedule.slot_seconds)} s`],
      ]),
      chips(schedule.times, "chip mono"),
    ];
  }

  // content_campaign: who posted, what, and why it looks coordinated
  function campaignEvidence(ev) {
    const age = ev.account_age || {};
    return h("div", {},
      factList([
        ["Kind", KINDS[ev.campaign_kind] || "near-identical text"],
        ["Members", num(ev.member_count)],
        ["Under 30 days old", `${num(age.younger_than_30_days)} of ${num(age.known)} known`],
        ["Sharing devices", num(ev.accounts_sharing_devices)],
        ["Active", ev.first_seen && ev.last_seen ? span(ev.first_seen, ev.last_seen) : "—"],
      ]),
      h("h3", {}, "Indicators"), chips(ev.indicators, "chip ind"),
      ev.schedule ? scheduleFacts(ev.schedule) : null,
      h("h3", {}, "Sample texts"),
      (ev.sample_texts || []).length ? h("ul", { class: "texts" }, ev.sample_texts.map((t) => h("li", {}, t))) : h("p", { class: "muted" }, "none"),
      h("h3", {}, "Shared domains"), countTable(ev.shared_domains, "domain", "posts"),
      (ev.new_domains || []).length ? [h("h3", {}, "New domains"), chips(ev.new_domains, "chip mono")] : null,
      h("h3", {}, `Member accounts (${num(ev.member_count)})`), memberList(ev.members, ev.member_count),
      (ev.members_flagged_individually || []).length ? [h("h3", {}, "Members also flagged on their own"), chips(ev.members_flagged_individually, "chip mono")] : null,
      h("h3", {}, "Sample events"), chips(ev.sample_event_ids, "chip mono"),
    );
  }

  // report_brigade: who reported, for what, and whether it looks coordinated
  function brigadeEvidence(ev) {
    const age = ev.reporter_age || {};
    return h("div", {},
      factList([
        ["Pattern", h("strong", { class: ev.pattern === "coordinated" ? "verdict-abusive" : "verdict-benign" }, ev.pattern || "—")],
        ["Reporters", num(ev.reporter_count)],
        ["Reports", num(ev.reports)],
        ["Under 30 days old", `${num(age.younger_than_30_days)} of ${num(age.known)} known`],
        ["Span (p10–p90)", ev.span_seconds === undefined ? "—" : duration(ev.span_seconds)],
      ]),
      h("h3", {}, "Indicators"), chips(ev.indicators, "chip ind"),
      h("h3", {}, "Reasons given"), countTable(ev.reasons, "reason", "reports"),
      (ev.same_reporters_also_targeted || []).length ? [h("h3", {}, "The same reporters also hit"), chips(ev.same_reporters_also_targeted, "chip mono")] : null,
      h("h3", {}, `Reporters (${num(ev.reporter_count)})`), memberList(ev.reporters, ev.reporter_count),
      h("h3", {}, "Sample reports"), chips(ev.sample_event_ids, "chip mono"),
    );
  }

  function labelsView(title, labels) {
    return h("section", { class: "labels" }, h("h3", {}, title),
      labels && labels.length ? h("table", { class: "data" },
        h("tr", {}, h("th", {}, "when (UTC)"), h("th", {}, "verdict"), h("th", {}, "subject"), h("th", {}, "policy"), h("th", {}, "labeller"), h("th", {}, "note")),
        labels.map((l) => h("tr", {},
          h("td", {}, utc(l.ts)),
          h("td", {}, h("span", { class: `verdict-${l.verdict}` }, l.verdict)),
          h("td", { class: "mono" }, l.subject_type === "alert" ? "alert" : `${l.subject_type}:${l.subject_id}`),
          h("td", {}, l.policy || ""),
          h("td", {}, l.labeler),
          h("td", {}, l.note || ""),
        ))) : h("p", { class: "muted" }, "none yet"));
  }

  async function loadHistory(alert) {
    if (!alert.entity) return;
    let history;
    try {
      history = await api(`/api/entities/${encodeURIComponent(alert.entity.type)}/${encodeURIComponent(alert.entity.id)}`);
    } catch (error) {
      if (error.status !== 401) toast(`History: ${error.message}`, true);
      return;
    }
    const target = $("history");
    if (!target || state.shownId !== alert.alert_id) return;
    const alerts = history.alerts || [];
    target.replaceChildren(
      h("h3", {}, `Entity history · ${entityText(alert.entity)}`),
      alerts.length ? h("table", { class: "data history" },
        h("tr", {}, h("th", {}, "raised (UTC)"), h("th", {}, "severity"), h("th", {}, "detector"), h("th", {}, "status"), h("th", {}, "summary")),
        alerts.map((a) => h("tr", {
          class: a.alert_id === alert.alert_id ? "current" : "link",
          title: a.alert_id === alert.alert_id ? "this alert" : "open this alert",
          onclick: a.alert_id === alert.alert_id ? null : () => openEarlier(a.alert_id),
        },
          h("td", {}, utc(a.first_ts || a.ts)),
          h("td", {}, h("span", { class: `sev sev-${a.severity}` }, a.severity)),
          h("td", {}, a.detector),
          h("td", {}, a.status || ""),
          h("td", {}, a.summary),
        ))) : h("p", { class: "muted" }, "no other alerts"),
      labelsView("Labels on this entity and its alerts", history.labels),
    );
  }

  function openEarlier(alertId) {
    const index = state.items.findIndex((item) => item.alert_id === alertId);
    if (index >= 0) return select(index);
    state.selected = -1;
    for (const row of $("queue").children) row.classList.remove("selected");
    showAlert(alertId, null);
  }

  // ---- verdicts ----------------------------------------------------------------------
  async function label(verdict) {
    if (state.busy || !state.detail) return;
    const labeler = $("labeler").value.trim();
    if (!labeler) {
      $("labeler").closest("label").classList.add("missing");
      toast("Enter your name as labeller first.", true);
      $("labeler").focus();
      return;
    }
    const alert = state.detail.alert;
    const body = {
      subject_type: "alert",
      subject_id: alert.alert_id,
      verdict,
      labeler,
      policy: $("policy").value || null,
      note: $("note").value.trim() || null,
    };
    state.busy = true;
    $("verdict").classList.add("busy");
    try {
      await api("/api/labels", { method: "POST", body: JSON.stringify(body) });
    } catch (error) {
      if (error.status !== 401) toast(`Not saved: ${error.message}`, true);
      return;
    } finally {
      state.busy = false;
      $("verdict").classList.remove("busy");
    }
    state.loadSeq++; // a queue load begun before this verdict would bring the alert back
    toast(`${verdict} · ${entityText(alert.entity)}`);
    $("note").value = "";
    $("policy").value = "";
    const index = state.items.findIndex((item) => item.alert_id === alert.alert_id);
    if (index < 0) { showAlert(alert.alert_id, null); return; }
    state.items.splice(index, 1);
    renderQueue();
    if (state.items.length) select(Math.min(index, state.items.length - 1));
    else showNothing();
  }

  // ---- chrome ------------------------------------------------------------------------
  let toastTimer = 0;
  function toast(message, bad = false) {
    const node = $("toast");
    node.textContent = message;
    node.classList.toggle("bad", bad);
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, bad ? 4000 : 1800);
  }
  function status(text) { $("status").textContent = text; }

  function typing(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement;
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!$("login").hidden) return;
    if (event.key === "Escape") {
      if (!$("help").hidden) $("help").hidden = true;
      else if (typing(event.target)) event.target.blur();
      return;
    }
    if (typing(event.target)) return;
    const actions = {
      j: () => move(1), ArrowDown: () => move(1),
      k: () => move(-1), ArrowUp: () => move(-1),
      a: () => label("abusive"), b: () => label("benign"), u: () => label("unsure"),
      n: () => $("note").focus(), r: () => loadQueue(state.detail && state.detail.alert.alert_id),
      "?": () => { $("help").hidden = !$("help").hidden; },
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    if (!$("help").hidden && event.key !== "?") $("help").hidden = true;
    action();
  }

  function start() {
    const leaked = takeToken();
    const saved = localStorage.getItem("abusemon.labeler");
    if (saved) $("labeler").value = saved;
    $("labeler").addEventListener("input", () => {
      localStorage.setItem("abusemon.labeler", $("labeler").value.trim());
      $("labeler").closest("label").classList.remove("missing");
    });
    $("labeler").addEventListener("change", () => loadQueue(state.detail && state.detail.alert.alert_id));
    for (const id of ["f-detector", "f-severity", "f-since"]) $(id).addEventListener("change", () => loadQueue());
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("verdict").addEventListener("submit", (event) => event.preventDefault());
    $("refresh").addEventListener("click", () => loadQueue(state.detail && state.detail.alert.alert_id));
    for (const button of document.querySelectorAll("[data-verdict]")) {
      button.addEventListener("click", () => label(button.dataset.verdict));
    }
    $("help-close").addEventListener("click", () => { $("help").hidden = true; });
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      sessionStorage.setItem("abusemon.token", token);
      state.token = token;
      $("token").value = "";
      $("login").hidden = true;
      loadQueue();
    });
    // A token link opened in a tab already on the page changes only the fragment: no reload.
    window.addEventListener("hashchange", () => {
      if (!new URLSearchParams(location.hash.slice(1)).has("token")) return;
      takeToken();
      if (!state.token) return;
      $("login").hidden = true;
      loadQueue();
    });
    document.addEventListener("keydown", onKey);
    new MutationObserver(() => sizeScorebars($("detail"))).observe($("detail"), { childList: true });
    if (state.token) loadQueue();
    else askToken(leaked ? "A token in the address after ?token= is not used (it reaches server logs): enter it here." : "");
  }

  start();
})();
