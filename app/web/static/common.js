/* Doorstep web pages: shared helpers (API calls with the bearer token, DOM
 * building, times, the SVG street map). Vanilla JS, no dependencies, nothing
 * loaded from the internet. */
"use strict";

const DS = (() => {
  const TOKEN_KEY = "doorstep.token";
  const SVG_NS = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------ token
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  // -------------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, body) {
      const base = (body && body.message) || `HTTP ${status}`;
      const fields = (body && Array.isArray(body.errors)) ? body.errors : [];
      const detail = fields.slice(0, 8).map((e) => `${e.field}: ${e.message}`).join("; ");
      super(detail && !base.includes(detail) ? `${base} — ${detail}` : base);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    let body;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body, cache: "no-store" });
    } catch (err) {
      const e = new ApiError(0, { message: "the server cannot be reached; check the connection" });
      e.network = true;
      throw e;
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { message: text.slice(0, 200) }; }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return { status: response.status, data, headers: response.headers };
  }
  const get = (path) => api("GET", path).then((r) => r.data);

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // -------------------------------------------------------------------- DOM
  /** el("div", {class: "x", onclick: fn, dataset: {a: 1}}, child, "text", [more]) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    applyAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    applyAttrs(node, attrs);
    append(node, children);
    return node;
  }
  function applyAttrs(node, attrs) {
    if (!attrs) return;
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // ------------------------------------------------------------------ times
  /** "HH:MM" of an ISO datetime as written (plans are in the problem's zone). */
  function hhmm(iso) {
    if (!iso) return "";
    const m = /T(\d{2}):(\d{2})/.exec(iso);
    return m ? `${m[1]}:${m[2]}` : String(iso).slice(0, 5);
  }
  function offsetOf(iso) {
    const m = /([+-]\d{2}:\d{2}|Z)$/.exec(iso || "");
    return m ? m[1] : "Z";
  }
  /** Minutes since local midnight of `date` for an ISO datetime. */
  function minutesOf(iso, date) {
    if (!iso) return null;
    const midnight = Date.parse(`${date}T00:00:00${offsetOf(iso)}`);
    return (Date.parse(iso) - midnight) / 60000;
  }
  /** Minutes of a problem clock: "HH:MM[:SS]" or an ISO datetime. */
  function clockMinutes(value, date) {
    if (value === undefined || value === null) return null;
    if (String(value).includes("T")) return minutesOf(value, date);
    const [h, m] = String(value).split(":").map(Number);
    return h * 60 + (m || 0);
  }
  function clockText(value) {
    if (value === undefined || value === null) return "";
    return String(value).includes("T") ? hhmm(value) : String(value).slice(0, 5);
  }
  function fmtMin(minutes) {
    const m = Math.round(minutes);
    return m >= 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min` : `${m} min`;
  }
  function pad2(n) { return String(n).padStart(2, "0"); }
  function todayISO() {
    const d = new Date();
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
  }
  function slotText(slot) {
    if (!slot) return "";
    if (Array.isArray(slot)) return `${hhmm(slot[0])}–${hhmm(slot[1])}`;
    return `${hhmm(slot.start)}–${hhmm(slot.end)}`;
  }

  /** The items of a longest common subsequence of two id lists. */
  function lcs(a, b) {
    const n = a.length, m = b.length;
    const t = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        t[i][j] = a[i] === b[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
    const kept = new Set();
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { kept.add(a[i]); i++; j++; }
      else if (t[i + 1][j] >= t[i][j + 1]) i++;
      else j++;
    }
    return kept;
  }

  // ------------------------------------------------------------- crew colours
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
  /** Stable colours per crew within a session (a crew keeps its colour across versions). */
  function crewColours(date) {
    const key = `doorstep.colours.${date}`;
    let map = {};
    try { map = JSON.parse(sessionStorage.getItem(key) || "{}"); } catch (_) { map = {}; }
    return {
      assign(ids) {
        let changed = false;
        for (const id of ids) {
          if (!(id in map)) { map[id] = Object.keys(map).length; changed = true; }
        }
        if (changed) sessionStorage.setItem(key, JSON.stringify(map));
      },
      of(id) {
        if (!(id in map)) this.assign([id]);
        return PALETTE[map[id] % PALETTE.length];
      },
    };
  }

  // --------------------------------------------------------------- the map
  /**
   * An SVG map: street lines from /web/api/network.geojson as the background,
   * overlays drawn by the page. Coordinates are projected to metres around the
   * network's centre (equirectangular; fine for a city). Wheel zooms, drag pans.
   */
  class StreetMap {
    constructor(svgEl, options = {}) {
      this.svg = svgEl;
      this.options = options;
      this.streets = svg("g", { class: "streets" });
      this.under = svg("g", { class: "under" });
      this.routes = svg("g", { class: "routes" });
      this.markers = svg("g", { class: "markers" });
      this.svg.append(this.streets, this.under, this.routes, this.markers);
      this.view = null;
      this.home = null;
      this.redrawMarkers = null;
      this.bbox = null;
      this._bindPanZoom();
      new ResizeObserver(() => this._fitAspect()).observe(this.svg);
    }

    setBBox(bbox) { // [west, south, east, north]
      this.bbox = bbox;
      const lat0 = (bbox[1] + bbox[3]) / 2;
      this.lon0 = (bbox[0] + bbox[2]) / 2;
      this.lat0 = lat0;
      this.kx = 111320 * Math.cos((lat0 * Math.PI) / 180);
      this.ky = 110574;
      const [x0, y1] = this.project(bbox[0], bbox[1]);
      const [x1, y0] = this.project(bbox[2], bbox[3]);
      const pad = 0.03 * Math.max(x1 - x0, y1 - y0);
      this.home = { x: x0 - pad, y: y0 - pad, w: x1 - x0 + 2 * pad, h: y1 - y0 + 2 * pad };
      this.view = Object.assign({}, this.home);
      this._fitAspect();
    }

    project(lon, lat) {
      return [(lon - this.lon0) * this.kx, (this.lat0 - lat) * this.ky];
    }

    unproject(x, y) {
      return [x / this.kx + this.lon0, this.lat0 - y / this.ky];
    }

    /** Metres per screen pixel at the current zoom. */
    unit() {
      const width = this.svg.clientWidth || 800;
      return this.view ? this.view.w / width : 1;
    }

    drawNetwork(geojson) {
      if (!this.bbox) this.setBBox(geojson.bbox);
      clear(this.streets);
      const byClass = {};
      for (const f of geojson.features) {
        if (!f.geometry || f.geometry.type !== "LineString") continue;
        const cls = f.properties && f.properties.class || "road";
        (byClass[cls] = byClass[cls] || []).push(this.pathData(f.geometry.coordinates));
      }
      // minor roads first, major on top; one path per class keeps the DOM small
      const order = ["road", "service", "living_street", "residential", "unclassified", "tertiary",
        "secondary", "primary", "trunk", "motorway"];
      const classes = Object.keys(byClass).sort((a, b) => order.indexOf(a) - order.indexOf(b));
      for (const cls of classes) {
        this.streets.appendChild(svg("path", { d: byClass[cls].join(""), class: `street street-${cls}` }));
      }
      if (geojson.attribution && this.options.attribution) this.options.attribution.textContent = geojson.attribution;
    }

    pathData(coords) {
      let d = "";
      coords.forEach(([lon, lat], i) => {
        const [x, y] = this.project(lon, lat);
        d += `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
      });
      return d;
    }

    reset() { if (this.home) { this.view = Object.assign({}, this.home); this._fitAspect(); } }

    zoom(factor, cx, cy) {
      if (!this.view) return;
      const v = this.view;
      cx = cx === undefined ? v.x + v.w / 2 : cx;
      cy = cy === undefined ? v.y + v.h / 2 : cy;
      const w = Math.min(Math.max(v.w * factor, this.home.w / 40), this.home.w * 4);
      const k = w / v.w;
      this.view = { x: cx - (cx - v.x) * k, y: cy - (cy - v.y) * k, w: v.w * k, h: v.h * k };
      this._apply();
    }

    _fitAspect() {
      if (!this.view) return;
      const cw = this.svg.clientWidth, ch = this.svg.clientHeight;
      if (cw > 0 && ch > 0) {
        const v = this.view;
        const cx = v.x + v.w / 2, cy = v.y + v.h / 2;
        const target = cw / ch;
        let w = v.w, h = v.h;
        // fit the home box (or current view) into the element, keeping it whole
        if (w / h > target) h = w / target; else w = h * target;
        this.view = { x: cx - w / 2, y: cy - h / 2, w, h };
      }
      this._apply();
    }

    _apply() {
      const v = this.view;
      this.svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
      if (this.redrawMarkers && !this._pending) {
        this._pending = true;
        requestAnimationFrame(() => { this._pending = false; this.redrawMarkers(); });
      }
    }

    /** SVG user coordinates of a mouse event. */
    toUser(evt) {
      const rect = this.svg.getBoundingClientRect();
      const v = this.view;
      // preserveAspectRatio xMidYMid meet: the view is centred in the element
      const scale = Math.max(v.w / rect.width, v.h / rect.height);
      const offX = (rect.width - v.w / scale) / 2, offY = (rect.height - v.h / scale) / 2;
      return [v.x + (evt.clientX - rect.left - offX) * scale, v.y + (evt.clientY - rect.top - offY) * scale];
    }

    _bindPanZoom() {
      this.svg.addEventListener("wheel", (evt) => {
        if (!this.view) return;
        evt.preventDefault();
        const [x, y] = this.toUser(evt);
        this.zoom(evt.deltaY > 0 ? 1.2 : 1 / 1.2, x, y);
      }, { passive: false });
      let drag = null;
      this.svg.addEventListener("pointerdown", (evt) => {
        if (!this.view || evt.button !== 0) return;
        drag = { x: evt.clientX, y: evt.clientY, view: Object.assign({}, this.view), moved: false };
      });
      window.addEventListener("pointermove", (evt) => {
        if (!drag) return;
        const dx = evt.clientX - drag.x, dy = evt.clientY - drag.y;
        if (!drag.moved && Math.hypot(dx, dy) < 4) return;
        drag.moved = true;
        this.svg.classList.add("dragging");
        const rect = this.svg.getBoundingClientRect();
        const scale = Math.max(drag.view.w / rect.width, drag.view.h / rect.height);
        this.view = Object.assign({}, drag.view, { x: drag.view.x - dx * scale, y: drag.view.y - dy * scale });
        this._apply();
      });
      window.addEventListener("pointerup", () => {
        if (drag && drag.moved) {
          // swallow the click that ends a drag
          const stop = (e) => { e.stopPropagation(); e.preventDefault(); };
          this.svg.addEventListener("click", stop, { capture: true, once: true });
          setTimeout(() => this.svg.removeEventListener("click", stop, { capture: true }), 0);
        }
        drag = null;
        this.svg.classList.remove("dragging");
      });
    }
  }

  // --------------------------------------------------------------- tooltip
  function tooltip(container) {
    const tip = el("div", { class: "tooltip", role: "tooltip", hidden: true });
    container.appendChild(tip);
    return {
      show(evt, lines) {
        clear(tip);
        lines.filter(Boolean).forEach((line, i) => tip.appendChild(el(i ? "div" : "strong", { text: line })));
        tip.hidden = false;
        const rect = container.getBoundingClientRect();
        let x = evt.clientX - rect.left + 14, y = evt.clientY - rect.top + 14;
        const w = tip.offsetWidth, h = tip.offsetHeight;
        if (x + w > rect.width - 4) x = Math.max(4, evt.clientX - rect.left - w - 14);
        if (y + h > rect.height - 4) y = Math.max(4, evt.clientY - rect.top - h - 14);
        tip.style.left = `${x}px`;
        tip.style.top = `${y}px`;
      },
      hide() { tip.hidden = true; },
    };
  }

  return {
    token, setToken, api, get, ApiError, newKey,
    el, svg, clear, $, $$,
    hhmm, minutesOf, clockMinutes, clockText, fmtMin, todayISO, slotText, offsetOf, pad2,
    lcs, PALETTE, crewColours, StreetMap, tooltip,
  };
})();
