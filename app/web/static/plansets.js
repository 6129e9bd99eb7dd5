/* Doorstep dispatcher page: plan sets (several dates, drafts). The "Days"
 * and "draft" controls of the day input send POST /v1/plans with `dates`
 * and/or ?publish=false; the plan set's per-date summary shows in the
 * "Plan set" panel (GET /v1/plan-sets/{id}), with Publish for a draft
 * (POST /v1/plan-sets/{id}/publish). Uses DS from common.js; the job
 * runner and the day loader come from dispatcher.js. */
"use strict";

(() => {
  const { el, clear, $, api, get } = DS;
  const MAX_DAYS = 7;
  let current = null; // the plan set shown
  let hooks = null; // {runJob, loadDay, setDate, errorBox} of dispatcher.js

  function days() {
    const n = Math.round(Number($("#plan-days").value) || 1);
    return Math.max(1, Math.min(MAX_DAYS, n));
  }

  function draft() { return $("#plan-draft").checked; }

  /** Whether the controls ask for a plan set rather than a one-day plan. */
  function wanted() { return days() > 1 || draft(); }

  /** `n` dates from `first` (YYYY-MM-DD), one day apart. */
  function datesFrom(first, n) {
    const start = new Date(`${first}T00:00:00Z`);
    return Array.from({ length: n }, (_, k) => new Date(start.getTime() + k * 86400000).toISOString().slice(0, 10));
  }

  /** Plan `body` (a POST /v1/plans body with `date`) as the controls say, then show the set. */
  async function run(body, given) {
    hooks = given;
    const first = body.date || $("#day-date").value;
    if (!first) { hooks.errorBox.textContent = "Give the date (the first of the dates to plan)."; return; }
    const n = days();
    if (n > 1) {
      body.dates = datesFrom(String(first), n);
      delete body.date;
    }
    $("#planset-error").textContent = "";
    const path = draft() ? "/v1/plans?publish=false" : "/v1/plans";
    await hooks.runJob(() => api("POST", path, { body }), hooks.errorBox, String(first), async (job) => {
      const set = await get(`/v1/plan-sets/${encodeURIComponent(job.job_id)}`);
      show(set);
      if (set.status === "published") await hooks.loadDay(set.dates[0], null);
    });
  }

  /** Fill the "Plan set" panel from a PlanSetView. */
  function show(set) {
    current = set;
    const panel = $("#planset-panel");
    panel.hidden = false;
    panel.dataset.status = set.status;
    panel.dataset.id = set.id;
    $("#planset-status").textContent = `${set.status} · ${set.dates.length} date(s)`;
    const body = $("#planset-table tbody");
    clear(body);
    set.days.forEach((day) => {
      const summary = day.plan.summary;
      const open = el("button", { type: "button", class: "secondary", text: "Open" });
      open.hidden = !day.version;
      open.addEventListener("click", async () => {
        hooks.setDate(day.date);
        await hooks.loadDay(day.date, null);
      });
      body.append(el("tr", { "data-date": day.date }, [
        el("td", { text: day.date }),
        el("td", { class: "planned", text: `${summary.visits_planned} / ${summary.visits_total}` }),
        el("td", { class: "left", text: String(day.plan.unassigned.length) }),
        el("td", { class: "version", text: day.version ? `v${day.version}` : "draft" }),
        el("td", {}, [open]),
      ]));
    });
    const pastDue = set.unplanned.filter((u) => u.code === "past_due").length;
    $("#planset-summary").textContent =
      `${set.summary.visits_planned} visit(s) planned; ${set.summary.visits_unplanned} on no date` +
      (pastDue ? ` (${pastDue} past due)` : "") +
      (set.status === "draft" ? ". Nothing is published yet: agents do not see a draft." : ".");
    $("#planset-publish").hidden = set.status !== "draft";
  }

  $("#planset-publish").addEventListener("click", async () => {
    if (!current || current.status !== "draft") return;
    const button = $("#planset-publish");
    button.disabled = true;
    $("#planset-error").textContent = "";
    try {
      const { data } = await api("POST", `/v1/plan-sets/${encodeURIComponent(current.id)}/publish`);
      show(data);
      if (hooks) {
        hooks.setDate(data.dates[0]);
        await hooks.loadDay(data.dates[0], null);
      }
    } catch (err) {
      $("#planset-error").textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });

  $("#plan-btn").addEventListener("click", () => { // a one-day plan: the set shown is not the day's
    if (!wanted()) $("#planset-panel").hidden = true;
  });

  DS.planSets = { wanted, run, show };
})();
