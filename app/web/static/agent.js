/* Doorstep agent page (phone): today's itinerary in order, navigation links,
 * borrower contact as the role allows, outcome buttons, and what changed
 * since the version the agent last acknowledged. Uses DS from common.js. */
"use strict";

(() => {
  const { el, clear, $, api, get, hhmm, slotText } = DS;

  const RESULTS = [
    ["paid", "Paid"], ["promise_to_pay", "Promise to pay"], ["plan_agreed", "Repayment plan agreed"],
    ["refused", "Refused"], ["not_at_home", "Not at home"], ["wrong_address", "Wrong address"],
    ["dispute", "Disputes the debt"], ["moved", "Moved away"], ["third_party", "Met a third party"],
    ["incident", "Incident (safety)"],
  ];
  const AMOUNT_RESULTS = new Set(["paid", "promise_to_pay", "plan_agreed"]);
  const REFRESH_MS = 60000;

  const S = { me: null, date: null, agent: null, it: null, seen: null, diff: null, pending: new Map(), open: null };

  // ------------------------------------------------------------------ login
  async function start() {
    if (!DS.token()) return showLogin();
    try {
      S.me = await get("/web/api/me");
    } catch (err) {
      if (err.status === 401) { DS.setToken(""); return showLogin("That token is unknown or revoked."); }
      return showLogin(err.message);
    }
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = false;
    $("#refresh").hidden = false;
    const params = new URLSearchParams(location.search);
    S.date = params.get("date") || DS.todayISO();
    $("#day-date").value = S.date;
    if (S.me.role === "agent") {
      S.agent = S.me.agent_id;
    } else {
      $("#crew-pick").hidden = false;
      S.agent = params.get("agent") || "";
      $("#crew-input").value = S.agent;
    }
    if (S.agent) load();
    else $("#status").textContent = "Type a crew id to see its day.";
  }

  function showLogin(message) {
    $("#app").hidden = true;
    $("#login").hidden = false;
    $("#logout").hidden = !DS.token();
    $("#login-error").textContent = message || "";
  }

  $("#login-form").addEventListener("submit", (evt) => {
    evt.preventDefault();
    DS.setToken($("#token-input").value);
    $("#token-input").value = "";
    start();
  });
  $("#logout").addEventListener("click", () => { DS.setToken(""); location.reload(); });
  $("#refresh").addEventListener("click", () => load());
  $("#load").addEventListener("click", () => {
    S.date = $("#day-date").value || S.date;
    if (S.me && S.me.role !== "agent") S.agent = $("#crew-input").value.trim();
    const url = new URL(location.href);
    url.searchParams.set("date", S.date);
    if (S.me && S.me.role !== "agent") url.searchParams.set("agent", S.agent);
    history.replaceState(null, "", url);
    load();
  });

  // ------------------------------------------------------------------- load
  async function load() {
    if (!S.agent) return;
    $("#error").textContent = "";
    $("#status").textContent = "Loading…";
    try {
      S.it = await get(`/v1/agents/${encodeURIComponent(S.agent)}/itinerary?date=${encodeURIComponent(S.date)}`);
      S.answers = {};
      try { // the borrower's answer to each slot; the itinerary stands without it
        const list = await get(`/v1/confirmations?date=${encodeURIComponent(S.date)}`);
        list.confirmations.forEach((c) => { S.answers[c.visit_id] = c.state; });
      } catch (_) { /* older server or no access: no answers shown */ }
    } catch (err) {
      S.it = null;
      clear($("#stops"));
      clear($("#summary"));
      $("#changes-banner").hidden = true;
      $("#status").textContent = "";
      if (err.status === 404) {
        $("#status").textContent = `No visits for ${S.agent} on ${S.date}. ${err.message}`;
        const seen = readSeen();
        if (seen && seen.stops.length) { // planned before, not any more (e.g. marked absent)
          $("#changes-banner").hidden = false;
          $("#changes-text").textContent = `Your crew is not in the current plan any more (it was in v${seen.version}).`;
          const removed = clear($("#removed"));
          seen.stops.filter((s) => s.status !== "completed").forEach((s) => removed.appendChild(el("li", {
            dataset: { visit: s.visit_id }, text: `${s.visit_id} (was stop ${s.sequence}) is no longer yours` })));
          $("#ack").hidden = true;
          $("#status").textContent = `No visits for ${S.agent} on ${S.date}.`;
        }
      }
      else if (err.status === 401) { DS.setToken(""); showLogin("Your token is no longer valid."); }
      else $("#error").textContent = err.message;
      return;
    }
    $("#status").textContent = "";
    $("#ack").hidden = false;
    S.seen = readSeen();
    if (!S.seen) { writeSeen(); S.seen = readSeen(); }
    S.diff = diff(S.seen, S.it);
    render();
  }

  // ------------------------------------------------------------ seen version
  // What the agent last acknowledged, per crew and date: order, slots and
  // addresses only (no borrower data kept in the browser).
  function seenKey() { return `doorstep.seen.${S.agent}.${S.date}`; }
  function readSeen() {
    try { return JSON.parse(localStorage.getItem(seenKey()) || "null"); } catch (_) { return null; }
  }
  function writeSeen() {
    const it = S.it;
    localStorage.setItem(seenKey(), JSON.stringify({
      version: it.version,
      stops: it.stops.map((s) => ({
        visit_id: s.visit_id, sequence: s.sequence, slot: s.slot ? [s.slot.start, s.slot.end] : null,
        address: s.address.text || `${s.address.location.lat.toFixed(5)},${s.address.location.lon.toFixed(5)}`,
        status: s.status || null,
      })),
    }));
  }

  function diff(seen, it) {
    const out = { changed: new Map(), removed: [], from: seen && seen.version, to: it.version };
    if (!seen || seen.version === it.version) return out;
    const before = new Map(seen.stops.map((s) => [s.visit_id, s]));
    const now = new Set(it.stops.map((s) => s.visit_id));
    const kept = DS.lcs(seen.stops.map((s) => s.visit_id).filter((v) => now.has(v)),
      it.stops.map((s) => s.visit_id).filter((v) => before.has(v)));
    for (const stop of it.stops) {
      const was = before.get(stop.visit_id);
      const kinds = [];
      if (!was) kinds.push("new");
      else {
        if (!kept.has(stop.visit_id)) kinds.push("moved");
        const slot = stop.slot ? [stop.slot.start, stop.slot.end] : null;
        if (JSON.stringify(slot) !== JSON.stringify(was.slot)) kinds.push("slot");
        const address = stop.address.text || `${stop.address.location.lat.toFixed(5)},${stop.address.location.lon.toFixed(5)}`;
        if (address !== was.address) kinds.push("address");
      }
      if (kinds.length) out.changed.set(stop.visit_id, { kinds, was });
    }
    for (const s of seen.stops) {
      if (!now.has(s.visit_id) && s.status !== "completed" && s.status !== "arrived") out.removed.push(s);
    }
    return out;
  }

  $("#ack").addEventListener("click", () => {
    writeSeen();
    S.seen = readSeen();
    S.diff = diff(S.seen, S.it);
    render();
  });

  // ----------------------------------------------------------------- render
  function render() {
    const it = S.it;
    $("#crew-name").textContent = it.agent_id;
    const summary = clear($("#summary"));
    summary.appendChild(el("div", { class: "who-line" },
      el("strong", { text: it.agent_id }), it.members.length ? ` · ${it.members.join(", ")}` : ""));
    summary.appendChild(el("div", { class: "muted", text:
      `${it.date} · shift ${hhmm(it.shift.start)}–${hhmm(it.shift.end)} · ${it.travel_mode} · plan v${it.version}` }));
    summary.appendChild(el("div", { class: "totals" },
      el("span", null, el("b", { text: String(it.totals.visits) }), " visits"),
      el("span", null, el("b", { text: `${Math.round(it.totals.travel_min)}` }), " min travel"),
      el("span", null, el("b", { text: it.totals.distance_km.toFixed(1) }), " km"),
      el("span", null, "leave ", el("b", { text: hhmm(it.leaves_at) }), " · back ", el("b", { text: hhmm(it.returns_at) }))));
    if (it.breaks.length) {
      summary.appendChild(el("div", { class: "muted", text: `Break ${it.breaks.map((b) => `${hhmm(b.start)}–${hhmm(b.end)}`).join(", ")}` }));
    }

    const banner = $("#changes-banner");
    const d = S.diff;
    if (d.from !== undefined && d.from !== null && d.from !== d.to) {
      banner.hidden = false;
      const counts = { new: 0, moved: 0, slot: 0, address: 0 };
      d.changed.forEach((c) => c.kinds.forEach((k) => { counts[k] += 1; }));
      const parts = [];
      if (counts.new) parts.push(`${counts.new} new`);
      if (counts.moved) parts.push(`${counts.moved} moved`);
      if (counts.slot) parts.push(`${counts.slot} new time slot${counts.slot > 1 ? "s" : ""}`);
      if (counts.address) parts.push(`${counts.address} other address`);
      if (d.removed.length) parts.push(`${d.removed.length} removed`);
      $("#changes-text").textContent = `Your plan changed (v${d.from} → v${d.to}): ${parts.join(", ") || "times adjusted"}.`;
      const removed = clear($("#removed"));
      d.removed.forEach((s) => removed.appendChild(el("li", { dataset: { visit: s.visit_id },
        text: `${s.visit_id} (was stop ${s.sequence}${s.slot ? `, ${slotText(s.slot)}` : ""}) is no longer yours` })));
    } else {
      banner.hidden = true;
    }

    const list = clear($("#stops"));
    if (!it.stops.length) list.appendChild(el("li", { class: "empty", text: "No visits planned for you." }));
    for (const stop of it.stops) list.appendChild(card(stop));
  }

  function card(stop) {
    const change = S.diff.changed.get(stop.visit_id);
    const status = stop.status || "planned";
    const li = el("li", {
      class: `stop-card s-${status}` + (change ? " changed" : ""),
      dataset: { visit: stop.visit_id, sequence: stop.sequence },
    });
    const when = stop.slot ? slotText(stop.slot) : `${hhmm(stop.start)}`;
    li.appendChild(el("div", { class: "stop-head" },
      el("span", { class: "seq", text: String(stop.sequence) }),
      el("div", { class: "when" }, el("strong", { text: when }),
        el("div", { class: "muted", text: stop.slot ? "promised slot" : "planned start" })),
      el("span", { class: `status-chip s-${status}`, text: status + (stop.result ? ` · ${stop.result.replace(/_/g, " ")}` : "") })));
    if (change) {
      li.appendChild(el("div", { class: "change-badges" }, change.kinds.map((k) => el("span", { class: `badge k-${k}`,
        text: k === "new" ? "new" : k === "moved" ? `moved (was ${change.was.sequence})`
          : k === "slot" ? `slot was ${change.was.slot ? slotText(change.was.slot) : "none"}` : "address changed" }))));
    }
    if (stop.slot) {
      const answer = (S.answers || {})[stop.visit_id] || "none";
      li.appendChild(el("div", { class: "confirm" }, el("span", { class: `confirm-chip c-${answer}`,
        dataset: { confirmation: answer }, text: `borrower: ${CONFIRM_TEXT[answer]}` })));
    }
    li.appendChild(el("div", { class: "case" }, el("strong", { text: stop.case_id || stop.visit_id }),
      stop.required || stop.appointment ? el("span", { class: "badge hard", text: stop.appointment ? "appointment" : "required" }) : null,
      stop.purpose ? el("div", { class: "muted", text: stop.purpose }) : null));
    li.appendChild(el("div", { class: "addr", text: `${stop.address.text || "(no address text)"} · ${stop.address.kind}` }));
    li.appendChild(el("div", { class: "muted meta", text:
      `arrive ${hhmm(stop.arrival)} · visit ${hhmm(stop.start)}–${hhmm(stop.end)} (${stop.duration_min} min) · ` +
      `${Math.round(stop.travel_min_from_previous)} min travel (${stop.distance_km_from_previous.toFixed(1)} km)` }));
    if (stop.borrower && (stop.borrower.name || stop.borrower.phone)) {
      li.appendChild(el("div", { class: "borrower" }, stop.borrower.name || "",
        stop.borrower.phone ? el("a", { class: "tel", href: `tel:${stop.borrower.phone}`, text: ` ☎ ${stop.borrower.phone}` }) : null));
    }
    if (stop.case) li.appendChild(caseLine(stop.case));
    li.appendChild(el("div", { class: "nav" },
      el("a", { class: "btn nav-amap", href: stop.navigation.amap, target: "_blank", rel: "noopener noreferrer", text: "Navigate (AMap)" }),
      el("a", { class: "btn nav-geo secondary", href: stop.navigation.geo, text: "Map app" })));
    if (stop.status !== "completed" && (!S.me || S.me.role !== "system")) li.appendChild(actions(stop));
    return li;
  }

  /** What the crew needs at the door: days overdue, the amount (when the role may see it), risk flags. */
  function caseLine(c) {
    const parts = [`${c.days_past_due} days overdue`];
    if (c.overdue_amount != null) parts.push(`${c.currency || ""} ${c.overdue_amount.toLocaleString()}`.trim());
    if (c.broken_promises) parts.push(`${c.broken_promises} broken promise${c.broken_promises > 1 ? "s" : ""}`);
    return el("div", { class: "case-data muted" }, parts.join(" · "),
      (c.risk_flags || []).map((f) => el("span", { class: "badge risk", text: f.replace(/_/g, " ") })));
  }

  /** The borrower's answer to a slot, as the page says it. */
  const CONFIRM_TEXT = { none: "not contacted yet", proposed: "slot proposed", confirmed: "confirmed",
    declined: "declined", no_answer: "no answer" };

  async function contact(stop, result) {
    $("#error").textContent = "";
    try {
      await api("POST", `/v1/visits/${encodeURIComponent(stop.visit_id)}/contact`,
        { body: JSON.stringify({ date: S.date, channel: "phone", result }), headers: { "Idempotency-Key": DS.newKey() } });
      $("#status").textContent = `Saved: ${stop.visit_id} borrower ${CONFIRM_TEXT[result]}`;
      await load();
    } catch (err) {
      $("#error").textContent = err.message;
    }
  }

  function actions(stop) {
    const box = el("div", { class: "actions" });
    const form = outcomeForm(stop);
    if (!stop.status) {
      box.appendChild(el("button", { type: "button", class: "btn-departed secondary", text: "On my way",
        title: "Tell the borrower the crew is coming (only inside legal contact hours)",
        onclick: () => report(stop, { status: "departed" }) }));
    }
    if (!stop.status || stop.status === "departed") {
      box.appendChild(el("button", { type: "button", class: "btn-arrived secondary", text: "Arrived",
        onclick: () => report(stop, { status: "arrived" }) }));
    }
    let calls = null;
    if (stop.slot && !stop.status) {
      const answer = (S.answers || {})[stop.visit_id];
      calls = el("div", { class: "confirm-actions" });
      for (const [result, label] of [["confirmed", "Borrower confirmed"], ["declined", "Borrower declined"], ["no_answer", "No answer"]]) {
        if (answer === result) continue;
        calls.appendChild(el("button", { type: "button", class: `btn-contact-${result} secondary`, text: label,
          onclick: () => contact(stop, result) }));
      }
    }
    box.appendChild(el("button", { type: "button", class: "btn-complete", text: "Record outcome",
      onclick: () => { form.hidden = !form.hidden; S.open = form.hidden ? null : stop.visit_id; } }));
    const wrap = el("div", null, calls, box, form);
    if (S.open === stop.visit_id) form.hidden = false;
    return wrap;
  }

  function outcomeForm(stop) {
    const result = el("select", { class: "result", name: "result", required: true },
      el("option", { value: "", text: "Result…" }), RESULTS.map(([v, t]) => el("option", { value: v, text: t })));
    const amount = el("input", { class: "amount", name: "amount", type: "number", min: "0", step: "0.01", inputmode: "decimal", placeholder: "Amount" });
    const promised = el("input", { class: "promised", name: "promised_date", type: "date", min: S.date });
    const note = el("textarea", { class: "note", name: "note", rows: 2, maxlength: 1000, placeholder: "Note (optional)" });
    const amountRow = el("label", { class: "amount-row", hidden: true }, "Amount ", amount);
    const promisedRow = el("label", { class: "promised-row", hidden: true }, "Will pay on ", promised);
    // the visit record: who was met, attitude, willingness and ability to pay (all optional)
    const choice = (name, label, options) => el("select", { class: name, name, "aria-label": label },
      el("option", { value: "", text: `${label}…` }), options.map(([v, t]) => el("option", { value: v, text: t })));
    const scale = (label) => ["1 (none)", "2", "3", "4", "5 (full)"].map((t, i) => [String(i + 1), `${label}: ${t}`]);
    const met = choice("met", "Met", [["borrower", "Met the borrower"], ["family", "Met family"],
      ["colleague", "Met a colleague"], ["nobody", "Met nobody"]]);
    const attitude = choice("attitude", "Attitude", [["cooperative", "Cooperative"], ["neutral", "Neutral"],
      ["evasive", "Evasive"], ["hostile", "Hostile"]]);
    const willingness = choice("willingness", "Willing to pay", scale("Willing"));
    const ability = choice("ability", "Able to pay", scale("Able"));
    const record = el("div", { class: "record row" }, met, attitude, willingness, ability);
    const error = el("p", { class: "error" });
    result.addEventListener("change", () => {
      amountRow.hidden = !AMOUNT_RESULTS.has(result.value);
      promisedRow.hidden = result.value !== "promise_to_pay";
    });
    const form = el("form", { class: "outcome-form", hidden: true },
      result, amountRow, promisedRow, record, note,
      el("div", { class: "row" },
        el("button", { type: "submit", class: "btn-submit-outcome", text: "Save outcome" }),
        el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => { form.hidden = true; S.open = null; } })),
      error);
    form.addEventListener("submit", (evt) => {
      evt.preventDefault();
      error.textContent = "";
      if (!result.value) { error.textContent = "Choose the result."; return; }
      const body = { status: "completed", result: result.value };
      if (AMOUNT_RESULTS.has(result.value) && amount.value) body.amount = Number(amount.value);
      if (result.value === "promise_to_pay") {
        if (!amount.value || !promised.value) { error.textContent = "A promise to pay needs the amount and the date."; return; }
        body.promised_date = promised.value;
      }
      if (met.value) body.met = met.value;
      if (attitude.value) body.attitude = attitude.value;
      if (willingness.value) body.willingness = Number(willingness.value);
      if (ability.value) body.ability = Number(ability.value);
      if (note.value.trim()) body.note = note.value.trim();
      report(stop, body, error);
    });
    return form;
  }

  /** The phone's position (WGS-84) for proof of visit, or null: no permission, or no fix within 5 s. */
  function position() {
    if (!navigator.geolocation) return Promise.resolve(null);
    return new Promise((resolve) => navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude,
        accuracy_m: Math.min(100000, Math.round(p.coords.accuracy * 10) / 10) }),
      () => resolve(null), { enableHighAccuracy: true, timeout: 5000, maximumAge: 60000 }));
  }

  async function report(stop, fields, errorBox) {
    const body = Object.assign({ date: S.date }, fields);
    const text = JSON.stringify(body);
    // the same report retried (e.g. after a dropped connection) keeps its key,
    // so the server records it once
    let pending = S.pending.get(stop.visit_id);
    if (!pending || pending.text !== text) pending = { key: DS.newKey(), text };
    S.pending.set(stop.visit_id, pending);
    $("#status").textContent = "Saving…";
    // proof of visit: the phone's position, taken once per report (a retry sends the same one)
    if (pending.position === undefined) pending.position = await position();
    const sent = pending.position ? JSON.stringify(Object.assign({}, body, { position: pending.position })) : text;
    try {
      const { data } = await api("POST", `/v1/visits/${encodeURIComponent(stop.visit_id)}/outcome`,
        { body: sent, headers: { "Idempotency-Key": pending.key } });
      S.pending.delete(stop.visit_id);
      S.open = null;
      const saved = `Saved: ${stop.visit_id} ${data.status}${data.result ? ` (${data.result.replace(/_/g, " ")})` : ""}` +
        (data.followups && data.followups.length ? ` · ${data.followups.length} follow-up planned` : "");
      await load();
      if (!$("#error").textContent) $("#status").textContent = saved;
    } catch (err) {
      $("#status").textContent = "";
      const message = err.network ? `${err.message} — tap again to retry; it will be recorded once.` : err.message;
      if (errorBox) errorBox.textContent = message; else $("#error").textContent = message;
      if (err.status === 409) { S.pending.delete(stop.visit_id); }
    }
  }

  // refresh in the background, unless the agent is filling in a form
  setInterval(() => {
    if (document.visibilityState === "visible" && S.it && !S.open && DS.token()) load();
  }, REFRESH_MS);

  start();
})();
