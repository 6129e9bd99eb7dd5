/* Doorstep dispatcher page: day input, planning job, map, timeline, figures,
 * unassigned visits, re-plan and what moved. Uses DS from common.js. */
"use strict";

(() => {
  const { el, svg, clear, $, $$, api, get, hhmm, minutesOf, clockMinutes, clockText, fmtMin, slotText } = DS;

  const S = {
    me: null,
    date: null,
    day: null, // GET /web/api/days/<date>
    draft: null, // the problem about to be planned
    colours: null,
    index: null, // visits, stops, unassigned by id
    replan: { cancelled: new Set(), absent: new Set(), added: [] },
    selected: null, // {type: "visit"|"crew", id}
    hidden: new Set(),
    picking: false,
    picked: null,
    busy: false,
  };

  const map = new DS.StreetMap($("#map"), { attribution: $("#attribution") });
  const tip = DS.tooltip($("#mapwrap"));
  const timelineTip = DS.tooltip(document.body);

  // ------------------------------------------------------------------ login
  async function start() {
    if (!DS.token()) return showLogin();
    try {
      S.me = await get("/web/api/me");
    } catch (err) {
      if (err.status === 401) { DS.setToken(""); return showLogin("That token is unknown or revoked."); }
      return showLogin(err.message);
    }
    if (S.me.role === "agent") {
      showLogin("This is an agent token: open the agent page instead.");
      $("#login-error").appendChild(el("a", { href: "agent", text: " Agent page →" }));
      return;
    }
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = false;
    $("#views").hidden = false; // Plan | Reports (reports.js)
    $("#who").textContent = S.me.role + (S.me.label ? ` · ${S.me.label}` : "");
    const params = new URLSearchParams(location.search);
    const date = params.get("date") || sessionStorage.getItem("doorstep.date") || DS.todayISO();
    setDate(date);
    loadNetwork();
    loadDay(date, null, { quiet404: true });
  }

  function showLogin(message) {
    $("#app").hidden = true;
    $("#views").hidden = true;
    $("#reports-view").hidden = true;
    $("#login").hidden = false;
    $("#logout").hidden = !DS.token();
    $("#login-error").textContent = message || "";
    $("#token-input").focus();
  }

  $("#login-form").addEventListener("submit", (evt) => {
    evt.preventDefault();
    DS.setToken($("#token-input").value);
    $("#token-input").value = "";
    start();
  });
  $("#logout").addEventListener("click", () => { DS.setToken(""); location.reload(); });

  // ------------------------------------------------------------------- date
  function setDate(date) {
    S.date = date;
    $("#day-date").value = date;
    sessionStorage.setItem("doorstep.date", date);
    S.colours = DS.crewColours(date);
    $("#agent-link").href = `agent?date=${encodeURIComponent(date)}`;
    const url = new URL(location.href);
    url.searchParams.set("date", date);
    history.replaceState(null, "", url);
  }

  $("#load-day").addEventListener("click", () => {
    if (!$("#day-date").value) return;
    setDate($("#day-date").value);
    loadDay(S.date, null);
  });
  $("#version-select").addEventListener("change", (evt) => {
    const v = evt.target.value;
    if (v) loadDay(S.date, Number(v));
  });

  // ---------------------------------------------------------------- network
  async function loadNetwork() {
    $("#map-status").textContent = "Loading the street map…";
    try {
      const network = await get("/web/api/network.geojson");
      map.drawNetwork(network);
      map.redrawMarkers = drawMarkers;
      $("#map-status").textContent = "";
      drawRoutes();
      drawMarkers();
    } catch (err) {
      $("#map-status").textContent = `Street map unavailable: ${err.message}`;
    }
  }

  $("#zoom-in").addEventListener("click", () => map.zoom(1 / 1.5));
  $("#zoom-out").addEventListener("click", () => map.zoom(1.5));
  $("#zoom-reset").addEventListener("click", () => map.reset());

  // ------------------------------------------------------------------ input
  $$(".tab").forEach((tab) => tab.addEventListener("click", () => {
    $$(".tab").forEach((t) => t.classList.toggle("active", t === tab));
    $$(".tab-body").forEach((body) => { body.hidden = body.dataset.tab !== tab.dataset.tab; });
  }));

  $("#json-file").addEventListener("change", async (evt) => {
    const file = evt.target.files[0];
    if (!file) return;
    $("#problem-text").value = await file.text();
    parseDraft();
  });
  let draftTimer = null;
  $("#problem-text").addEventListener("input", () => {
    clearTimeout(draftTimer);
    draftTimer = setTimeout(parseDraft, 250);
  });

  function parseDraft() {
    const text = $("#problem-text").value.trim();
    $("#input-error").textContent = "";
    S.draft = null;
    $("#plan-btn").disabled = true;
    if (!text) { $("#input-summary").textContent = ""; drawMarkers(); return; }
    let data;
    try {
      data = JSON.parse(text);
    } catch (err) {
      $("#input-summary").textContent = "";
      $("#input-error").textContent = `Not valid JSON: ${err.message}`;
      return;
    }
    if (!data || typeof data !== "object" || Array.isArray(data) || !Array.isArray(data.agents)) {
      $("#input-error").textContent = "A problem is a JSON object with visits, agents and date (the POST /v1/plans body).";
      return;
    }
    data.visits = data.visits || [];
    S.draft = data;
    if (data.date) setDate(String(data.date));
    const limit = data.options && data.options.time_limit_s;
    const rules = data.options && data.options.rule_set;
    $("#input-summary").textContent =
      `${data.visits.length} visits, ${data.agents.length} crews on ${data.date || "(no date)"}` +
      (limit ? ` · time limit ${limit} s` : "") + (rules ? ` · rule set ${rules}` : "");
    $("#plan-btn").disabled = false;
    drawMarkers();
  }

  $("#csv-convert").addEventListener("click", async () => {
    $("#input-error").textContent = "";
    const visits = $("#visits-csv").files[0], agents = $("#agents-csv").files[0];
    if (!visits || !agents) { $("#input-error").textContent = "Choose both visits.csv and agents.csv."; return; }
    try {
      const body = { visits_csv: await visits.text(), agents_csv: await agents.text(), date: $("#day-date").value };
      if ($("#rule-set").value) body.rule_set = $("#rule-set").value;
      const { data } = await api("POST", "/web/api/problem-from-csv", { body });
      $("#problem-text").value = JSON.stringify(data, null, 2);
      parseDraft();
    } catch (err) {
      $("#input-error").textContent = err.message;
    }
  });

  $("#demo-load").addEventListener("click", async () => {
    $("#input-error").textContent = "";
    const q = new URLSearchParams({
      seed: $("#demo-seed").value || "0", visits: $("#demo-visits").value || "40",
      crews: $("#demo-crews").value || "5",
    });
    if ($("#day-date").value) q.set("date", $("#day-date").value);
    try {
      const data = await get(`/web/api/demo-day?${q}`);
      $("#problem-text").value = JSON.stringify(data, null, 2);
      parseDraft();
    } catch (err) {
      $("#input-error").textContent = err.message;
    }
  });

  $("#plan-btn").addEventListener("click", async () => {
    if (!S.draft || S.busy) return;
    const body = JSON.parse(JSON.stringify(S.draft));
    const limit = Number($("#time-limit").value);
    if (limit > 0) body.options = Object.assign({}, body.options, { time_limit_s: limit });
    const ruleSet = $("#rule-set").value;
    if (ruleSet) body.options = Object.assign({}, body.options, { rule_set: ruleSet });
    $("#input-error").textContent = "";
    if (DS.planSets && DS.planSets.wanted()) { // several dates or a draft: a plan set (plansets.js)
      await DS.planSets.run(body, { runJob, loadDay, setDate, errorBox: $("#input-error") });
      return;
    }
    await runJob(() => api("POST", "/v1/plans", { body }), $("#input-error"), body.date);
  });

  // ------------------------------------------------------------------- jobs
  async function runJob(submit, errorBox, date, onDone) {
    S.busy = true;
    setBusy(true);
    const box = $("#job");
    box.hidden = false;
    showJob({ status: "submitting", progress: { stage: "", fraction: 0 } });
    try {
      const { data } = await submit();
      let job = data;
      while (!["succeeded", "failed"].includes(job.status)) {
        await new Promise((r) => setTimeout(r, 400));
        job = await get(`/v1/jobs/${encodeURIComponent(job.job_id)}`);
        showJob(job);
      }
      if (job.status === "failed") throw new Error(`The job failed: ${job.error || "no reason given"}`);
      setDate(job.date || date);
      if (onDone) await onDone(job); // a plan set shows its own summary
      else await loadDay(S.date, null);
      $("#input-panel").open = false;
      return job;
    } catch (err) {
      errorBox.textContent = err.message;
      showJob({ status: "failed", progress: { stage: "", fraction: 0 } });
      return null;
    } finally {
      S.busy = false;
      setBusy(false);
    }
  }

  function showJob(job) {
    const progress = job.progress || {};
    $("#job-status").textContent = job.status;
    const fraction = job.status === "succeeded" ? 1 : Math.max(0, Math.min(1, progress.fraction || 0));
    $("#job-stage").textContent = progress.stage ? `· ${progress.stage}${fraction > 0 && fraction < 1 ? ` ${Math.round(fraction * 100)}%` : ""}` : "";
    $("#job-bar").style.width = `${Math.round(fraction * 100)}%`;
    $("#job").dataset.status = job.status;
  }

  function setBusy(busy) {
    $("#plan-btn").disabled = busy || !S.draft;
    $("#replan-btn").disabled = busy || !S.day;
  }

  // --------------------------------------------------------------- load day
  async function loadDay(date, version, options = {}) {
    try {
      const q = version ? `?version=${version}` : "";
      const day = await get(`/web/api/days/${encodeURIComponent(date)}${q}`);
      S.day = day;
      S.index = indexDay(day);
      S.colours.assign(day.plan.routes.map((r) => r.agent_id));
      S.selected = null;
      renderAll();
    } catch (err) {
      if (err.status === 404) {
        S.day = null;
        S.index = null;
        renderAll();
        if (!options.quiet404) $("#input-error").textContent = `No plan for ${date} yet: give the day's input and plan it.`;
        return;
      }
      $("#input-error").textContent = err.message;
    }
  }

  function indexDay(day) {
    const visits = new Map(day.problem.visits.map((v) => [v.id, v]));
    const agents = new Map(day.problem.agents.map((a) => [a.id, a]));
    const stops = new Map();
    day.plan.routes.forEach((route) => route.stops.forEach((stop, i) => {
      stops.set(stop.visit_id, { route, stop, sequence: i + 1 });
    }));
    const unassigned = new Map(day.plan.unassigned.map((u) => [u.visit_id, u]));
    const changed = new Map();
    if (day.changes) day.changes.items.forEach((c) => changed.set(c.visit_id, c));
    const unassignedPoints = new Map();
    day.geojson.features.forEach((f) => {
      if (f.properties.kind === "unassigned" && f.geometry) unassignedPoints.set(f.properties.visit_id, f.geometry.coordinates);
    });
    return { visits, agents, stops, unassigned, changed, unassignedPoints };
  }

  function renderAll() {
    renderVersions();
    renderFigures();
    renderChanges();
    renderUnassigned();
    renderReplan();
    drawRoutes();
    drawMarkers();
    renderLegend();
    renderTimeline();
    renderDetails();
    setBusy(S.busy);
  }

  function colour(agentId) { return S.colours.of(agentId); }

  // --------------------------------------------------------------- versions
  function renderVersions() {
    const select = $("#version-select");
    clear(select);
    if (!S.day) { select.appendChild(el("option", { value: "", text: "–" })); select.disabled = true; return; }
    for (const v of S.day.versions) {
      const label = `v${v.version} · ${v.reason}` + (v.version === S.day.current_version ? " (current)" : "");
      select.appendChild(el("option", { value: v.version, text: label, selected: v.version === S.day.version }));
    }
    select.disabled = false;
  }

  // ---------------------------------------------------------------- figures
  function crewFigures(route) {
    const agent = S.index.agents.get(route.agent_id);
    const date = S.day.date;
    const shift = agent ? clockMinutes(agent.shift.end, date) - clockMinutes(agent.shift.start, date) : 0;
    const breaks = route.breaks.reduce((sum, b) => sum + (minutesOf(b.end, date) - minutesOf(b.start, date)), 0);
    const service = route.stops.reduce((sum, s) => sum + (minutesOf(s.end, date) - minutesOf(s.start, date)), 0);
    const travel = (route.stops.reduce((sum, s) => sum + s.travel_s, 0) + route.end_travel_s) / 60;
    const distance = (route.stops.reduce((sum, s) => sum + s.distance_m, 0) + route.end_distance_m) / 1000;
    const available = Math.max(1, shift - breaks);
    return { visits: route.stops.length, travel, distance, service, utilisation: (service + travel) / available };
  }

  function renderFigures() {
    const body = clear($("#figures-body"));
    if (!S.day) { body.className = "empty"; body.textContent = "No plan loaded."; return; }
    body.className = "";
    const sm = S.day.plan.summary;
    const hard = S.day.plan.unassigned.filter((u) => {
      const v = S.index.visits.get(u.visit_id);
      return v && (v.required || v.appointment);
    }).length;
    const pct = (a, b) => (b ? Math.round((100 * a) / b) : 100);
    const tile = (id, label, value, sub, cls) => el("div", { class: `tile ${cls || ""}`, id },
      el("div", { class: "tile-value", text: value }), el("div", { class: "tile-label", text: label }),
      sub ? el("div", { class: "tile-sub", text: sub }) : null);
    body.appendChild(el("div", { class: "tiles" },
      tile("fig-visits", "visits planned", `${sm.visits_planned} / ${sm.visits_total}`, `${pct(sm.visits_planned, sm.visits_total)}%`),
      tile("fig-priority", "priority planned", `${sm.priority_planned} / ${sm.priority_total}`, `${pct(sm.priority_planned, sm.priority_total)}%`),
      tile("fig-travel", "travel", fmtMin(sm.travel_s / 60), `${(sm.distance_m / 1000).toFixed(1)} km`),
      tile("fig-hard", "hard visits unassigned", String(hard), `${S.day.plan.unassigned.length} unassigned in all`, hard ? "bad" : ""),
      tile("fig-rules", "rule set applied", S.day.plan.rule_set || "not recorded",
           S.day.plan.slot_policy ? `slots ${S.day.plan.slot_policy.replace("_", " ")}` : "", S.day.plan.rule_set === "none" ? "bad" : "")));
    const table = el("table", { class: "crews", id: "crew-table" },
      el("thead", null, el("tr", null, ["Crew", "Visits", "Travel", "km", "Utilisation"].map((h) => el("th", { text: h })))));
    const tbody = el("tbody");
    for (const route of S.day.plan.routes) {
      const f = crewFigures(route);
      const u = Math.round(100 * f.utilisation);
      tbody.appendChild(el("tr", { dataset: { agent: route.agent_id } },
        el("td", null, el("span", { class: "swatch", style: { background: colour(route.agent_id) } }), route.agent_id),
        el("td", { class: "num", text: f.visits }),
        el("td", { class: "num", text: fmtMin(f.travel) }),
        el("td", { class: "num", text: f.distance.toFixed(1) }),
        el("td", { class: "util" }, el("div", { class: "bar" }, el("div", { style: { width: `${Math.min(100, u)}%`, background: colour(route.agent_id) } })),
          el("span", { class: "num", text: `${u}%` }))));
    }
    table.appendChild(tbody);
    body.appendChild(table);
    body.appendChild(el("p", { class: "hint", text: "Utilisation: visit and travel time over the shift less breaks." }));
  }

  // ---------------------------------------------------------------- changes
  const KIND_TEXT = {
    crew: "other crew", order: "new order", slot: "slot changed", added: "new visit",
    planned: "now planned", dropped: "left out", closed: "left the day",
  };

  function placeText(p) { return p ? `${p.agent_id} #${p.sequence}` : "—"; }

  function renderChanges() {
    const panel = $("#changes-panel"), list = clear($("#changes"));
    if (!S.day || !S.day.changes) { panel.hidden = true; return; }
    panel.hidden = false;
    $("#changes-against").textContent = `v${S.day.changes.against} → v${S.day.version} (${S.day.changes.reason})`;
    const items = S.day.changes.items;
    if (!items.length) { list.appendChild(el("li", { class: "empty", text: "Nothing moved." })); return; }
    const moved = items.filter((c) => c.kinds.some((k) => k === "crew" || k === "order")).length;
    list.appendChild(el("li", { class: "summary", text: `${items.length} visits changed, ${moved} moved (other crew or order).` }));
    for (const c of items) {
      list.appendChild(el("li", {
        class: `change ${c.kinds.join(" ")}`, dataset: { visit: c.visit_id },
        onclick: () => select({ type: "visit", id: c.visit_id }),
      },
      el("strong", { text: c.visit_id }), " ",
      c.kinds.map((k) => el("span", { class: `badge k-${k}`, text: KIND_TEXT[k] || k })),
      el("div", { class: "muted", text: `${placeText(c.before)} → ${placeText(c.after)}` +
        (c.kinds.includes("slot") && c.before && c.after ? ` · slot ${slotText(c.before.slot)} → ${slotText(c.after.slot)}` : "") +
        (c.reason ? ` · ${c.reason}` : "") })));
    }
  }

  // ------------------------------------------------------------- unassigned
  function renderUnassigned() {
    const list = clear($("#unassigned")), flags = clear($("#flags"));
    if (!S.day) { $("#unassigned-count").textContent = ""; return; }
    const items = S.day.plan.unassigned;
    $("#unassigned-count").textContent = String(items.length);
    if (!items.length) list.appendChild(el("li", { class: "empty", text: "Every visit is planned." }));
    for (const u of items) {
      const visit = S.index.visits.get(u.visit_id) || {};
      const d = u.details || {};
      let suggestion = null;
      if (u.code === "geocode_imprecise") {
        // the address was located only roughly (a district centre): not routed until a point is confirmed
        suggestion = el("div", { class: "suggestion imprecise" },
          (d.addresses || []).map((a) => `Address ${a.address_index} found only at ${a.precision} level` +
            (a.matched ? ` (${a.matched})` : "") + ". ").join(""),
          "Confirm a point: send the visit again with the address's location (lat, lon).");
      }
      if (d.agent_id) {
        const extra = d.extra_travel_s !== undefined ? Math.round(d.extra_travel_s / 60) : null;
        const travel = extra === null ? "" : ` (${extra >= 0 ? "+" : "−"}${Math.abs(extra)} min travel)`;
        suggestion = el("div", { class: "suggestion" },
          `Fix: crew ${d.agent_id}, stop ${d.position}${travel}`,
          d.displaces && d.displaces.length ? ` in place of ${d.displaces.join(", ")} (priority ${d.displaced_priority})` : "",
          d.displaces && d.displaces.length ? el("button", {
            type: "button", class: "link", text: `Cancel ${d.displaces[0]} in the re-plan`,
            onclick: (evt) => { evt.stopPropagation(); addCancel(d.displaces[0]); },
          }) : null);
      }
      list.appendChild(el("li", {
        class: "unassigned-item" + (visit.required || visit.appointment ? " hard" : ""),
        dataset: { visit: u.visit_id }, onclick: () => select({ type: "visit", id: u.visit_id }),
      },
      el("div", null, el("strong", { text: u.visit_id }), " ", el("span", { class: "badge code", text: u.code }),
        el("span", { class: "muted", text: ` priority ${visit.priority !== undefined ? visit.priority : "?"}` +
          (visit.required ? " · required" : "") + (visit.appointment ? " · appointment" : "") })),
      el("div", { class: "reason", text: u.reason }), suggestion));
    }
    const planFlags = S.day.plan.flags || [];
    if (planFlags.length) {
      flags.appendChild(el("h3", { text: `To confirm (${planFlags.length})` }));
      flags.appendChild(el("ul", { class: "flags" }, planFlags.map((f) => el("li", null,
        el("span", { class: "badge code", text: f.code }), " ", f.visit_id || f.agent_id || "", " ", el("span", { class: "muted", text: f.message })))));
    }
  }

  // -------------------------------------------------------------------- map
  function visible(agentId) { return !S.hidden.has(agentId); }

  function drawRoutes() {
    clear(map.routes);
    clear(map.under);
    if (!S.day || !map.bbox) return;
    for (const f of S.day.geojson.features) {
      if (f.properties.kind !== "route" || !visible(f.properties.agent_id)) continue;
      const d = map.pathData(f.geometry.coordinates);
      const agent = f.properties.agent_id;
      map.under.appendChild(svg("path", { d, class: "route-casing" }));
      const path = svg("path", {
        d, class: "route", stroke: colour(agent), dataset: { agent },
        onmousemove: (evt) => tip.show(evt, [`Crew ${agent}`, `${f.properties.visits} visits · ${f.properties.travel_min} min travel · ${f.properties.distance_km} km`,
          `${hhmm(f.properties.start)}–${hhmm(f.properties.end)} · ${f.properties.travel_mode}`]),
        onmouseleave: () => tip.hide(),
        onclick: () => select({ type: "crew", id: agent }),
      });
      map.routes.appendChild(path);
    }
  }

  function stopTooltip(visitId) {
    const visit = S.index ? S.index.visits.get(visitId) : (S.draft && S.draft.visits.find((v) => v.id === visitId));
    const at = S.index && S.index.stops.get(visitId);
    const un = S.index && S.index.unassigned.get(visitId);
    const lines = [`${visitId}${visit && visit.case_id ? ` · ${visit.case_id}` : ""}`];
    if (at) {
      lines.push(`${at.route.agent_id} stop ${at.sequence} · ${hhmm(at.stop.start)}–${hhmm(at.stop.end)}`);
      if (at.stop.slot) lines.push(`slot ${slotText(at.stop.slot)}`);
      if (at.stop.address_text) lines.push(at.stop.address_text);
    }
    if (un) lines.push(`unassigned: ${un.code}`, un.reason);
    if (visit) lines.push(`priority ${visit.priority !== undefined ? visit.priority : 50}` + (visit.required ? " · required" : "") + (visit.appointment ? " · appointment" : ""));
    const state = S.day && S.day.states[visitId];
    if (state) lines.push(`outcome: ${state.status}${state.result ? ` (${state.result})` : ""}`);
    if (at && at.stop.slot) lines.push(`borrower: ${CONFIRM_TEXT[(S.day.confirmations || {})[visitId] || "none"]}`);
    const change = S.index && S.index.changed.get(visitId);
    if (change) lines.push(`changed: ${change.kinds.map((k) => KIND_TEXT[k] || k).join(", ")} (${placeText(change.before)} → ${placeText(change.after)})`);
    return lines;
  }

  function drawMarkers() {
    tip.hide(); // the marker under the pointer is replaced: it will not see the pointer leave
    const g = clear(map.markers);
    if (!map.bbox) return;
    const u = map.unit();
    const r = 8.5 * u;
    const marker = (visitId, cls, children, extra = {}) => svg("g", Object.assign({
      class: cls, dataset: { visit: visitId }, tabindex: 0,
      onmousemove: (evt) => tip.show(evt, stopTooltip(visitId)),
      onmouseleave: () => tip.hide(),
      onclick: (evt) => { evt.stopPropagation(); select({ type: "visit", id: visitId }); },
      onkeydown: (evt) => { if (evt.key === "Enter" || evt.key === " ") { evt.preventDefault(); select({ type: "visit", id: visitId }); } },
    }, extra), children);

    if (!S.day) {
      // the input about to be planned, as grey points
      if (S.draft) {
        for (const v of S.draft.visits) {
          const a = (v.addresses || []).find((x) => x.location);
          if (!a) continue;
          const [x, y] = map.project(a.location.lon, a.location.lat);
          g.appendChild(marker(v.id, "draft-point", [svg("circle", { cx: x, cy: y, r: r * 0.6 })]));
        }
      }
      return;
    }
    // crews' start places
    for (const route of S.day.plan.routes) {
      if (!visible(route.agent_id)) continue;
      const [x, y] = map.project(route.start_location.lon, route.start_location.lat);
      g.appendChild(svg("rect", {
        class: "depot", x: x - r * 0.8, y: y - r * 0.8, width: r * 1.6, height: r * 1.6,
        fill: colour(route.agent_id), "stroke-width": 1.6 * u, dataset: { agent: route.agent_id },
        onmousemove: (evt) => tip.show(evt, [`Start of ${route.agent_id}`, `leaves ${hhmm(route.start)}, back ${hhmm(route.end)}`]),
        onmouseleave: () => tip.hide(), onclick: () => select({ type: "crew", id: route.agent_id }),
      }));
    }
    // unassigned visits
    for (const [visitId, [lon, lat]] of S.index.unassignedPoints) {
      const [x, y] = map.project(lon, lat);
      const s = r * 1.05;
      const hard = (() => { const v = S.index.visits.get(visitId); return v && (v.required || v.appointment); })();
      g.appendChild(marker(visitId, "unassigned-marker" + (hard ? " hard" : "") + sel(visitId), [
        svg("path", { d: `M${x} ${y - s}L${x + s} ${y}L${x} ${y + s}L${x - s} ${y}Z`, "stroke-width": 1.8 * u }),
        svg("text", { x, y: y + 3.6 * u, "font-size": 10 * u, text: "!" }),
      ]));
    }
    // stops, numbered
    for (const route of S.day.plan.routes) {
      if (!visible(route.agent_id)) continue;
      route.stops.forEach((stop, i) => {
        const [x, y] = map.project(stop.location.lon, stop.location.lat);
        const change = S.index.changed.get(stop.visit_id);
        const moved = change && change.kinds.some((k) => k !== "slot");
        const state = S.day.states[stop.visit_id];
        const children = [];
        if (moved) children.push(svg("circle", { class: "halo", cx: x, cy: y, r: r * 1.75, "stroke-width": 2.5 * u }));
        children.push(svg("circle", { class: "dot", cx: x, cy: y, r, fill: colour(route.agent_id), "stroke-width": 1.6 * u }));
        children.push(svg("text", { x, y: y + 3.6 * u, "font-size": 10 * u, text: String(i + 1) }));
        g.appendChild(marker(stop.visit_id,
          "stop-marker" + (moved ? " moved" : "") + (state ? ` s-${state.status}` : "") + sel(stop.visit_id),
          children, { "data-agent": route.agent_id, "data-sequence": i + 1 }));
      });
    }
    if (S.picked) {
      const [x, y] = map.project(S.picked.lon, S.picked.lat);
      g.appendChild(svg("path", { class: "picked", d: `M${x - r} ${y}H${x + r}M${x} ${y - r}V${y + r}`, "stroke-width": 2.5 * u }));
    }
  }

  function sel(visitId) {
    return S.selected && S.selected.type === "visit" && S.selected.id === visitId ? " selected" : "";
  }

  $("#map").addEventListener("click", (evt) => {
    if (!S.picking) return;
    const [x, y] = map.toUser(evt);
    const [lon, lat] = map.unproject(x, y);
    S.picked = { lat, lon };
    $("#urgent-lat").value = lat.toFixed(6);
    $("#urgent-lon").value = lon.toFixed(6);
    S.picking = false;
    $("#map").classList.remove("picking");
    drawMarkers();
  });

  function renderLegend() {
    const legend = clear($("#legend"));
    if (!S.day) return;
    for (const route of S.day.plan.routes) {
      const id = route.agent_id;
      legend.appendChild(el("label", { class: "legend-item" },
        el("input", { type: "checkbox", checked: visible(id), onchange: (evt) => {
          if (evt.target.checked) S.hidden.delete(id); else S.hidden.add(id);
          drawRoutes(); drawMarkers(); renderTimeline();
        } }),
        el("span", { class: "swatch", style: { background: colour(id) } }),
        `${id} (${route.stops.length})`));
    }
    legend.appendChild(el("div", { class: "legend-keys" },
      el("span", { class: "key key-stop", text: "1" }), "stop ",
      el("span", { class: "key key-depot" }), "start ",
      el("span", { class: "key key-unassigned", text: "!" }), "unassigned ",
      el("span", { class: "key key-moved" }), "moved"));
  }

  // --------------------------------------------------------------- timeline
  /** The borrower's answer to a slot (POST /v1/visits/{id}/contact), as the pages say it. */
  const CONFIRM_TEXT = { none: "not contacted yet", proposed: "slot proposed, no answer yet", confirmed: "confirmed",
    declined: "declined (re-plan to free the stop)", no_answer: "no answer" };

  function renderTimeline() {
    const box = clear($("#timeline"));
    if (!S.day) { box.appendChild(el("div", { class: "empty", text: "No plan loaded." })); return; }
    const date = S.day.date;
    const routes = S.day.plan.routes;
    let lo = Infinity, hi = -Infinity;
    for (const route of routes) {
      const agent = S.index.agents.get(route.agent_id);
      if (agent) {
        lo = Math.min(lo, clockMinutes(agent.shift.start, date));
        hi = Math.max(hi, clockMinutes(agent.shift.end, date));
      }
      lo = Math.min(lo, minutesOf(route.start, date));
      hi = Math.max(hi, minutesOf(route.end, date));
    }
    if (!isFinite(lo)) { lo = 8 * 60; hi = 18 * 60; }
    lo = Math.floor(lo / 60) * 60;
    hi = Math.ceil(hi / 60) * 60;
    const span = Math.max(60, hi - lo);
    const pos = (m) => `${(100 * (m - lo)) / span}%`;
    const width = (a, b) => `${(100 * Math.max(0, b - a)) / span}%`;

    const axis = el("div", { class: "tl-axis" });
    for (let m = lo; m <= hi; m += 60) {
      axis.appendChild(el("div", { class: "tl-hour", style: { left: pos(m) }, text: `${DS.pad2(Math.floor(m / 60) % 24)}:00` }));
    }
    box.appendChild(el("div", { class: "tl-row tl-head" }, el("div", { class: "tl-label" }), el("div", { class: "tl-track" }, axis)));

    const bar = (cls, a, b, lines, extra = {}) => el("div", Object.assign({
      class: cls, style: Object.assign({ left: pos(a), width: width(a, b) }, extra.style || {}),
      onmousemove: (evt) => timelineTip.show(evt, lines), onmouseleave: () => timelineTip.hide(),
    }, extra.attrs || {}), extra.children || []);

    for (const route of routes) {
      if (!visible(route.agent_id)) continue;
      const agent = S.index.agents.get(route.agent_id);
      const c = colour(route.agent_id);
      const track = el("div", { class: "tl-track" });
      for (let m = lo; m <= hi; m += 60) track.appendChild(el("div", { class: "tl-grid", style: { left: pos(m) } }));
      if (agent) {
        const a = clockMinutes(agent.shift.start, date), b = clockMinutes(agent.shift.end, date);
        track.appendChild(bar("tl-shift", a, b, [`Shift of ${route.agent_id}`, `${clockText(agent.shift.start)}–${clockText(agent.shift.end)}`]));
      }
      for (const b of route.breaks) {
        const a = minutesOf(b.start, date), z = minutesOf(b.end, date);
        track.appendChild(bar("tl-break", a, z, ["Break", `${hhmm(b.start)}–${hhmm(b.end)}`]));
      }
      route.stops.forEach((stop, i) => {
        const arrival = minutesOf(stop.arrival, date), start = minutesOf(stop.start, date), end = minutesOf(stop.end, date);
        if (stop.travel_s > 0) {
          track.appendChild(bar("tl-travel", arrival - stop.travel_s / 60, arrival,
            [`Travel to stop ${i + 1}`, `${Math.round(stop.travel_s / 60)} min · ${(stop.distance_m / 1000).toFixed(1)} km`],
            { style: { background: c } }));
        }
        if (start - arrival > 0.5) {
          track.appendChild(bar("tl-wait", arrival, start, [`Waiting before stop ${i + 1}`, `${Math.round(start - arrival)} min`]));
        }
        if (stop.slot) {
          const answer = (S.day.confirmations || {})[stop.visit_id];
          track.appendChild(bar("tl-slot" + (answer ? ` c-${answer}` : " c-none"), minutesOf(stop.slot.start, date), minutesOf(stop.slot.end, date),
            [`Promised slot of ${stop.visit_id}`, slotText(stop.slot), `borrower: ${CONFIRM_TEXT[answer || "none"]}`],
            { style: { borderColor: c }, attrs: { dataset: { visit: stop.visit_id, confirmation: answer || "none" } } }));
        }
        const change = S.index.changed.get(stop.visit_id);
        const moved = change && change.kinds.some((k) => k !== "slot");
        const state = S.day.states[stop.visit_id];
        track.appendChild(bar("tl-visit" + (moved ? " moved" : "") + (state ? ` s-${state.status}` : "") + sel(stop.visit_id), start, end,
          stopTooltip(stop.visit_id), {
            style: { background: c },
            attrs: { dataset: { visit: stop.visit_id, sequence: i + 1 }, onclick: () => select({ type: "visit", id: stop.visit_id }) },
            children: [el("span", { text: String(i + 1) })],
          }));
      });
      if (route.end_travel_s > 0 && route.stops.length) {
        const z = minutesOf(route.end, date);
        track.appendChild(bar("tl-travel", z - route.end_travel_s / 60, z,
          ["Travel back", `${Math.round(route.end_travel_s / 60)} min`], { style: { background: c } }));
      }
      const f = crewFigures(route);
      box.appendChild(el("div", { class: "tl-row crew-row", dataset: { agent: route.agent_id } },
        el("div", { class: "tl-label", onclick: () => select({ type: "crew", id: route.agent_id }) },
          el("span", { class: "swatch", style: { background: c } }),
          el("strong", { text: route.agent_id }),
          el("span", { class: "muted", text: ` ${f.visits} visits · ${Math.round(100 * f.utilisation)}%` })),
        track));
    }
  }

  // ---------------------------------------------------------------- details
  function select(what) {
    S.selected = what;
    renderDetails();
    drawMarkers();
    $$(".tl-visit.selected").forEach((n) => n.classList.remove("selected"));
    if (what && what.type === "visit") $$(`.tl-visit[data-visit="${CSS.escape(what.id)}"]`).forEach((n) => n.classList.add("selected"));
  }

  function row(label, value) {
    if (value === undefined || value === null || value === "") return null;
    return el("tr", null, el("th", { text: label }), el("td", null, value));
  }

  function renderDetails() {
    const box = clear($("#details"));
    if (!S.selected || (!S.day && !S.draft)) { box.hidden = true; return; }
    box.hidden = false;
    box.appendChild(el("button", { type: "button", class: "close", title: "Close", text: "×", onclick: () => select(null) }));
    if (S.selected.type === "crew" && S.day) {
      const id = S.selected.id;
      const agent = S.index.agents.get(id);
      const route = S.day.plan.routes.find((r) => r.agent_id === id);
      const f = route ? crewFigures(route) : null;
      box.appendChild(el("h3", null, el("span", { class: "swatch", style: { background: colour(id) } }), `Crew ${id}`));
      box.appendChild(el("table", null,
        row("Members", agent && agent.members && agent.members.join(", ")),
        row("Shift", agent && `${clockText(agent.shift.start)}–${clockText(agent.shift.end)}`),
        row("Travel mode", route && route.travel_mode),
        row("Day", route && `leaves ${hhmm(route.start)}, back ${hhmm(route.end)}`),
        row("Visits", f && String(f.visits)),
        row("Travel", f && `${fmtMin(f.travel)} · ${f.distance.toFixed(1)} km`),
        row("Utilisation", f && `${Math.round(100 * f.utilisation)}%`)));
      box.appendChild(el("div", { class: "row" },
        el("a", { href: `agent?date=${encodeURIComponent(S.date)}&agent=${encodeURIComponent(id)}`, target: "_blank", rel: "noopener", text: "Open the crew's phone view" }),
        el("button", { type: "button", class: "secondary", text: S.replan.absent.has(id) ? "Present again" : "Mark absent", onclick: () => toggleAbsent(id) })));
      return;
    }
    const id = S.selected.id;
    const visit = S.index ? S.index.visits.get(id) : S.draft.visits.find((v) => v.id === id);
    const at = S.index && S.index.stops.get(id);
    const un = S.index && S.index.unassigned.get(id);
    const state = S.day && S.day.states[id];
    const change = S.index && S.index.changed.get(id);
    box.appendChild(el("h3", { text: `Visit ${id}` }));
    const windows = visit ? (visit.addresses || []).map((a) => `${a.kind || "home"}: ${(a.time_windows || []).map((w) => `${clockText(w.start)}–${clockText(w.end)}`).join(", ") || "any time"}`).join("; ") : "";
    box.appendChild(el("table", null,
      row("Case", visit && visit.case_id),
      row("Purpose", visit && visit.purpose),
      row("Priority", visit && `${visit.priority !== undefined ? visit.priority : 50}${visit.required ? " · required" : ""}`),
      row("Appointment", visit && visit.appointment && `${clockText(visit.appointment.start)}–${clockText(visit.appointment.end)}`),
      row("Crew", at && `${at.route.agent_id}, stop ${at.sequence}`),
      row("Address", at ? `${at.stop.address_text || ""} (${at.stop.address_kind})` : visit && visit.addresses && visit.addresses[0] && visit.addresses[0].text),
      row("Arrival", at && `${hhmm(at.stop.arrival)} · visit ${hhmm(at.stop.start)}–${hhmm(at.stop.end)}`),
      row("Feasible start", at && `${hhmm(at.stop.earliest_start)}–${hhmm(at.stop.latest_start)}`),
      row("Slot", at && at.stop.slot && slotText(at.stop.slot)),
      row("Slot answer", at && at.stop.slot && CONFIRM_TEXT[(S.day.confirmations || {})[id] || "none"]),
      row("Travel", at && `${Math.round(at.stop.travel_s / 60)} min · ${(at.stop.distance_m / 1000).toFixed(1)} km from the previous place`),
      row("Windows", windows),
      row("Borrower", visit && visit.borrower && [visit.borrower.name, visit.borrower.phone].filter(Boolean).join(" · ")),
      row("Outcome", state && `${state.status}${state.result ? ` · ${state.result}` : ""}`),
      row("Unassigned", un && `${un.code}: ${un.reason}`),
      row("Changed", change && `${change.kinds.map((k) => KIND_TEXT[k] || k).join(", ")}: ${placeText(change.before)} → ${placeText(change.after)}`)));
    if (S.day) {
      box.appendChild(el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", id: "details-cancel",
          text: S.replan.cancelled.has(id) ? "Keep (undo cancel)" : "Cancel in the re-plan",
          onclick: () => { if (S.replan.cancelled.has(id)) removeCancel(id); else addCancel(id); renderDetails(); } })));
    }
  }

  // ----------------------------------------------------------------- replan
  function defaultNow() {
    if (!S.day) return "";
    // the clock now in the plan's zone (its UTC offset, as the plan's times carry it)
    const sample = S.day.plan.routes.find((r) => r.start);
    const m = /([+-])(\d{2}):(\d{2})$/.exec(sample ? sample.start : "");
    const offset = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
    const local = new Date(Date.now() + offset * 60000);
    if (S.day.date === local.toISOString().slice(0, 10)) {
      return `${DS.pad2(local.getUTCHours())}:${DS.pad2(local.getUTCMinutes())}`;
    }
    const starts = S.day.plan.routes.map((r) => r.start).filter(Boolean).sort((a, b) => Date.parse(a) - Date.parse(b));
    return starts.length ? hhmm(starts[0]) : "08:00";
  }

  function renderReplan() {
    const select = clear($("#cancel-select"));
    select.appendChild(el("option", { value: "", text: "Cancel a visit…" }));
    const checks = clear($("#crew-absent"));
    if (!S.day) { renderChips(); return; }
    $("#replan-now").value = defaultNow();
    for (const route of S.day.plan.routes) {
      route.stops.forEach((stop, i) => select.appendChild(el("option", {
        value: stop.visit_id, text: `${route.agent_id} #${i + 1} · ${stop.visit_id}`,
      })));
    }
    for (const u of S.day.plan.unassigned) select.appendChild(el("option", { value: u.visit_id, text: `unassigned · ${u.visit_id}` }));
    // drop pending changes that no longer apply to this version
    for (const id of [...S.replan.cancelled]) if (!S.index.visits.has(id)) S.replan.cancelled.delete(id);
    for (const id of [...S.replan.absent]) if (!S.index.agents.has(id)) S.replan.absent.delete(id);
    checks.appendChild(el("span", { class: "muted", text: "Absent crews: " }));
    for (const route of S.day.plan.routes) {
      checks.appendChild(el("label", { class: "check" },
        el("input", { type: "checkbox", dataset: { agent: route.agent_id }, checked: S.replan.absent.has(route.agent_id),
          onchange: (evt) => { if (evt.target.checked) S.replan.absent.add(route.agent_id); else S.replan.absent.delete(route.agent_id); renderChips(); } }),
        el("span", { class: "swatch", style: { background: colour(route.agent_id) } }), route.agent_id));
    }
    renderChips();
  }

  function renderChips() {
    const box = clear($("#replan-chips"));
    const chip = (text, onremove, cls) => el("span", { class: `chip ${cls}` }, text,
      el("button", { type: "button", class: "chip-x", title: "Remove", text: "×", onclick: onremove }));
    for (const id of S.replan.cancelled) box.appendChild(chip(`cancel ${id}`, () => removeCancel(id), "c-cancel"));
    for (const id of S.replan.absent) box.appendChild(chip(`absent ${id}`, () => toggleAbsent(id), "c-absent"));
    S.replan.added.forEach((v, i) => box.appendChild(chip(`add ${v.id}`, () => { S.replan.added.splice(i, 1); renderChips(); }, "c-add")));
  }

  function addCancel(id) {
    if (!id) return;
    S.replan.cancelled.add(id);
    renderChips();
  }
  function removeCancel(id) { S.replan.cancelled.delete(id); renderChips(); }
  function toggleAbsent(id) {
    if (S.replan.absent.has(id)) S.replan.absent.delete(id); else S.replan.absent.add(id);
    $$(`#crew-absent input[data-agent="${CSS.escape(id)}"]`).forEach((c) => { c.checked = S.replan.absent.has(id); });
    renderChips();
    renderDetails();
  }

  $("#cancel-add").addEventListener("click", () => addCancel($("#cancel-select").value));

  $("#urgent-pick").addEventListener("click", () => {
    S.picking = true;
    $("#map").classList.add("picking");
    $("#map-status").textContent = "Click the map where the urgent visit is.";
    setTimeout(() => { if (!S.picking) $("#map-status").textContent = ""; }, 100);
  });
  $("#map").addEventListener("click", () => { if (!S.picking) $("#map-status").textContent = ""; });

  $("#urgent-add").addEventListener("click", () => {
    const id = $("#urgent-id").value.trim();
    const text = $("#urgent-address").value.trim();
    const lat = parseFloat($("#urgent-lat").value), lon = parseFloat($("#urgent-lon").value);
    const errors = [];
    if (!id) errors.push("give the visit an id");
    if (S.index && S.index.visits.has(id)) errors.push(`visit ${id} is already in the day`);
    if (S.replan.added.some((v) => v.id === id)) errors.push(`visit ${id} is already added`);
    if (!text && !(isFinite(lat) && isFinite(lon))) errors.push("give an address, or lat and lon (Pick on map)");
    const from = $("#urgent-from").value, to = $("#urgent-to").value;
    if (!from || !to || to <= from) errors.push("the window's end must be after its start");
    if (errors.length) { $("#replan-error").textContent = errors.join("; "); return; }
    const address = { kind: "other", time_windows: [{ start: from, end: to }] };
    if (text) address.text = text;
    if (isFinite(lat) && isFinite(lon)) address.location = { lat, lon, crs: "wgs84" };
    S.replan.added.push({
      id, priority: Number($("#urgent-priority").value || 100), required: $("#urgent-required").checked,
      duration_min: Number($("#urgent-duration").value || 30), crew_size: Number($("#urgent-crew").value || 1),
      purpose: "urgent", addresses: [address],
    });
    $("#replan-error").textContent = "";
    const n = S.replan.added.length + 1;
    $("#urgent-id").value = `URGENT-${n}`;
    renderChips();
  });

  $("#replan-btn").addEventListener("click", async () => {
    if (!S.day || S.busy) return;
    $("#replan-error").textContent = "";
    const now = $("#replan-now").value || defaultNow();
    const sample = S.day.plan.routes.find((r) => r.start);
    const offset = sample ? DS.offsetOf(sample.start) : "Z";
    const body = {
      now: `${S.day.date}T${now.length === 5 ? `${now}:00` : now}${offset}`,
      cancelled: [...S.replan.cancelled],
      crews: [...S.replan.absent].map((agent_id) => ({ agent_id, absent: true })),
      added: S.replan.added,
    };
    const job = await runJob(() => api("POST", `/v1/plans/${encodeURIComponent(S.day.date)}/reoptimize`, { body }),
      $("#replan-error"), S.day.date);
    if (job) {
      S.replan = { cancelled: new Set(), absent: new Set(), added: [] };
      S.picked = null;
      renderReplan();
      drawMarkers();
    }
  });

  start();
})();
