/* Doorstep dispatcher page, Reports tab: GET /v1/reports for a period and a
 * grouping, drawn as a table and two charts (Chart.js, vendored under
 * static/vendor: nothing from the internet), and the same report as CSV.
 * Uses DS from common.js; the Plan | Reports buttons switch the views. */
"use strict";

(() => {
  const { el, clear, $, $$, get } = DS;

  /** A colour per outcome result (the order of the report's result mix). */
  const RESULT_COLOURS = {
    paid: "#2e7d32", promise_to_pay: "#59a14f", plan_agreed: "#76b7b2", refused: "#e15759",
    not_at_home: "#bab0ac", wrong_address: "#9c755f", dispute: "#f28e2b", moved: "#b07aa1",
    third_party: "#4e79a7", incident: "#c62828",
  };
  const R = { report: null, charts: {}, started: false };

  // ------------------------------------------------------------------ views
  function showView(name) {
    $$(".view-tab").forEach((tab) => tab.classList.toggle("active", tab.dataset.view === name));
    $("#app").hidden = name !== "plan";
    $("#reports-view").hidden = name !== "reports";
    if (name === "reports" && !R.started) {
      R.started = true;
      defaultPeriod();
      run();
    }
  }
  $$(".view-tab").forEach((tab) => tab.addEventListener("click", () => showView(tab.dataset.view)));

  /** The month so far, ending on the plan page's date (or today). */
  function defaultPeriod() {
    const to = $("#day-date").value || DS.todayISO();
    if (!$("#report-to").value) $("#report-to").value = to;
    if (!$("#report-from").value) $("#report-from").value = `${to.slice(0, 8)}01`;
  }

  function query(format) {
    const params = new URLSearchParams({
      from: $("#report-from").value, to: $("#report-to").value, group_by: $("#report-group").value,
    });
    if (format) params.set("format", format);
    return `/v1/reports?${params}`;
  }

  // ------------------------------------------------------------------ fetch
  async function run() {
    $("#report-error").textContent = "";
    $("#report-run").disabled = true;
    try {
      R.report = await get(query());
      draw(R.report);
    } catch (err) {
      $("#report-error").textContent = `Report failed: ${err.message}`;
    } finally {
      $("#report-run").disabled = false;
    }
  }

  $("#report-form").addEventListener("submit", (evt) => { evt.preventDefault(); run(); });
  $("#report-group").addEventListener("change", run);

  $("#report-csv").addEventListener("click", async () => {
    $("#report-error").textContent = "";
    const path = query("csv");
    try {
      const headers = { Accept: "text/csv", Authorization: `Bearer ${DS.token()}` };
      const response = await fetch(path, { headers, cache: "no-store" });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new DS.ApiError(response.status, body);
      }
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const p = new URLSearchParams(path.split("?")[1]);
      const link = el("a", { href: url, download: `doorstep-report-${p.get("from")}-${p.get("to")}-${p.get("group_by")}.csv` });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      $("#report-error").textContent = `CSV export failed: ${err.message}`;
    }
  });

  // ------------------------------------------------------------ formatting
  const num = (value, digits = 0) => (value === null || value === undefined ? "–"
    : Number(value).toLocaleString("en-GB", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const pct = (value) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)} %`);
  const money = (value, currency) => (value === null || value === undefined ? "hidden" : `${currency || ""} ${num(value, 2)}`.trim());

  // ------------------------------------------------------------------ table
  const COLUMNS = [
    ["Planned", (l) => num(l.visits_planned)],
    ["Made", (l) => num(l.visits_made)],
    ["Contact rate", (l) => pct(l.contact_rate)],
    ["Promises (due / kept)", (l) => `${l.promises_made} (${l.promises_due} / ${l.promises_kept})`],
    ["Kept rate", (l) => pct(l.promise_kept_rate)],
    ["Promised", (l, c) => money(l.promised_amount, c)],
    ["Recovered", (l, c) => money(l.recovered_amount, c)],
    ["Hours", (l) => num(l.hours, 1)],
    ["km", (l) => num(l.km, 1)],
    ["Cost", (l, c) => money(l.cost, c)],
    ["Cost / visit", (l, c) => money(l.cost_per_visit, c)],
    ["Cost / unit recovered", (l) => (l.cost_per_recovered === null ? "–" : num(l.cost_per_recovered, 3))],
    ["Compliance exceptions", (l) => exceptionsText(l)],
  ];

  function exceptionsText(line) {
    const rules = Object.entries(line.exceptions_by_rule || {}).map(([rule, n]) => `${rule} ${n}`);
    return rules.length ? `${line.compliance_exceptions} (${rules.join(", ")})` : String(line.compliance_exceptions);
  }

  function row(line, currency) {
    return el("tr", { dataset: { group: line.group } },
      el("td", { class: "group", text: line.group }),
      COLUMNS.map(([, value]) => el("td", { class: "num", text: value(line, currency) })));
  }

  function drawTable(report) {
    const table = clear($("#report-table"));
    const label = { crew: "Crew", branch: "Branch", bucket: "Bucket" }[report.group_by];
    table.appendChild(el("thead", null, el("tr", null, el("th", { text: label }),
      COLUMNS.map(([name]) => el("th", { class: "num", text: name })))));
    const body = el("tbody");
    if (!report.groups.length) body.appendChild(el("tr", null, el("td", { class: "empty", colspan: COLUMNS.length + 1, text: "No plan in this period." })));
    report.groups.forEach((line) => body.appendChild(row(line, report.currency)));
    table.appendChild(body);
    table.appendChild(el("tfoot", null, row(Object.assign({}, report.total, { group: "Total" }), report.currency)));
  }

  // ----------------------------------------------------------------- charts
  function chart(id, config) {
    if (R.charts[id]) R.charts[id].destroy();
    R.charts[id] = new Chart($(`#${id}`), config);
  }

  const BASE = {
    responsive: true, maintainAspectRatio: false, animation: false,
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
  };

  function drawCharts(report) {
    const labels = report.groups.map((g) => g.group);
    const results = Object.keys(report.total.results).filter((r) => report.total.results[r] > 0);
    chart("chart-results", {
      type: "bar",
      data: {
        labels,
        datasets: results.map((result) => ({
          label: result.replace(/_/g, " "), data: report.groups.map((g) => g.results[result]),
          backgroundColor: RESULT_COLOURS[result] || "#888",
        })),
      },
      options: Object.assign({}, BASE, {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      }),
    });
    const amounts = report.amounts_visible;
    $("#chart-amounts-title").textContent = amounts ? "Promised and recovered" : "Cost (amounts hidden for this role)";
    const datasets = amounts ? [
      { label: "promised", data: report.groups.map((g) => g.promised_amount), backgroundColor: "#76b7b2" },
      { label: "recovered", data: report.groups.map((g) => g.recovered_amount), backgroundColor: "#2e7d32" },
      { label: "cost", data: report.groups.map((g) => g.cost), backgroundColor: "#e15759" },
    ] : [{ label: "cost", data: report.groups.map((g) => g.cost), backgroundColor: "#e15759" }];
    chart("chart-amounts", {
      type: "bar",
      data: { labels, datasets },
      options: Object.assign({}, BASE, { scales: { y: { beginAtZero: true, title: { display: true, text: report.currency || "" } } } }),
    });
  }

  function draw(report) {
    const t = report.total;
    $("#report-summary").textContent = `${report.from} to ${report.to}: ${report.days_planned} day(s) planned, `
      + `${t.visits_made} of ${t.visits_planned} visits made, contact rate ${pct(t.contact_rate)}, `
      + `promise-kept rate ${pct(t.promise_kept_rate)}, cost ${money(t.cost, report.currency)}.`;
    drawTable(report);
    drawCharts(report);
    $("#reports-view").dataset.ready = `${report.from}:${report.to}:${report.group_by}`;
  }
})();
