// meshsession admin dashboard. Plain JavaScript, no dependencies.
// Every piece of data is put in the page with textContent or attributes
// (never parsed as markup), so user agents, user ids and settings render as text.
"use strict";

(function () {
  const API = "/dashboard/api";
  const LANGS = ["en", "de", "es", "fr", "pt"];
  const state = {
    lang: "en",
    csrf: "",
    me: null,
    es: null,
    route: null,
    refresh: null, // re-render the current page's data (live updates)
    pending: 0,
  };

  // ---------- i18n ----------
  function pickLang() {
    const saved = safeStorage("get", "mss.lang");
    if (saved && LANGS.includes(saved)) return saved;
    const server = document.documentElement.lang;
    if (LANGS.includes(server)) return server;
    for (const l of navigator.languages || []) {
      const b = l.toLowerCase().split("-")[0];
      if (LANGS.includes(b)) return b;
    }
    return "en";
  }
  function safeStorage(op, k, v) {
    try {
      if (op === "get") return window.localStorage.getItem(k);
      window.localStorage.setItem(k, v);
    } catch (e) { /* storage disabled */ }
    return null;
  }
  function t(key, vars) {
    const dict = (window.MSS_I18N && window.MSS_I18N[state.lang]) || {};
    const en = (window.MSS_I18N && window.MSS_I18N.en) || {};
    let s = dict[key] || en[key];
    if (s === undefined || !(key in dict)) {
      // Recorded for the browser tests, which fail on any untranslated text.
      (window.__mssMissing = window.__mssMissing || []).push(state.lang + ":" + key);
      if (s === undefined) s = key;
    }
    if (vars) {
      for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
    }
    return s;
  }
  const fmt = {
    num(n) { return new Intl.NumberFormat(state.lang).format(n); },
    date(v) {
      if (!v) return "—";
      const d = new Date(v);
      if (isNaN(d)) return "—";
      return new Intl.DateTimeFormat(state.lang, { dateStyle: "medium", timeStyle: "short" }).format(d);
    },
    hour(v) { return new Intl.DateTimeFormat(state.lang, { hour: "2-digit", minute: "2-digit" }).format(new Date(v)); },
    day(v) { return new Intl.DateTimeFormat(state.lang, { day: "numeric", month: "short" }).format(new Date(v)); },
    dayHour(v) { return new Intl.DateTimeFormat(state.lang, { weekday: "short", hour: "2-digit" }).format(new Date(v)); },
    pct(x) { return new Intl.NumberFormat(state.lang, { style: "percent", maximumFractionDigits: 0 }).format(x); },
    ago(v) {
      if (!v) return "";
      const secs = Math.round((new Date(v).getTime() - Date.now()) / 1000);
      const rtf = new Intl.RelativeTimeFormat(state.lang, { numeric: "auto" });
      const a = Math.abs(secs);
      if (a < 60) return rtf.format(secs, "second");
      if (a < 3600) return rtf.format(Math.round(secs / 60), "minute");
      if (a < 86400) return rtf.format(Math.round(secs / 3600), "hour");
      return rtf.format(Math.round(secs / 86400), "day");
    },
  };
  function applyStatic() {
    document.documentElement.lang = state.lang;
    for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.getAttribute("data-i18n"));
    document.getElementById("skip").textContent = t("skip");
    document.getElementById("confirm-cancel").textContent = t("cancel");
    document.title = t("title");
    document.getElementById("lang").value = state.lang;
  }

  // ---------- DOM helpers ----------
  // el("tag.class", {attr: v, onclick: fn}, child, "text", ...)
  function el(spec, attrs, ...kids) {
    const [tag, ...classes] = spec.split(".");
    const n = document.createElement(tag || "div");
    if (classes.length) n.className = classes.join(" ");
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k.startsWith("on") && typeof v === "function") n.addEventListener(k.slice(2), v);
        else if (k === "text") n.textContent = v;
        else n.setAttribute(k, v === true ? "" : String(v));
      }
    }
    append(n, kids);
    return n;
  }
  function append(n, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) append(n, k);
      else if (k instanceof Node) n.appendChild(k);
      else n.appendChild(document.createTextNode(String(k)));
    }
  }
  function svg(tag, attrs, ...kids) {
    const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    append(n, kids);
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
  const main = () => document.getElementById("main");
  function setMain(...kids) {
    const m = clear(main());
    append(m, kids);
  }
  function banner(msg, kind) {
    const b = document.getElementById("banner");
    if (!msg) { b.hidden = true; clear(b); return; }
    b.className = "banner " + (kind || "error");
    b.textContent = msg;
    b.hidden = false;
  }
  function announce(msg) { document.getElementById("announce").textContent = msg; }

  // ---------- API ----------
  class APIError extends Error {
    constructor(status, msg, details) { super(msg); this.status = status; this.details = details || {}; }
  }
  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, opts);
    } catch (e) {
      banner(t("err.network"));
      throw new APIError(0, t("err.network"));
    }
    if (res.status !== 503) banner(""); // reachable again: no stale network banner
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.ok) {
      banner("");
      return data;
    }
    const e = (data && data.error) || {};
    const msg = e.message || res.statusText || "error";
    if (res.status === 401 && path !== "/login") {
      const code = (e.details && e.details.code) || "";
      signedOut(code === "signed_out" ? null : code ? t("auth." + code) : msg);
      throw new APIError(401, msg, e.details);
    }
    if (res.status === 503) banner(t("err.unavailable"));
    throw new APIError(res.status, msg, e.details);
  }
  // pageGet reads a page's data; when the person moved on to another page
  // meanwhile, it fails with a "stale" error so the old page draws nothing
  // over the new one.
  async function pageGet(path) {
    const at = state.route;
    let res;
    try { res = await api("GET", path); } catch (e) { if (state.route !== at) e.stale = true; throw e; }
    if (state.route !== at) { const e = new APIError(-1, "stale"); e.stale = true; throw e; }
    return res;
  }
  // quiet: errors that need no message (signed out: the sign-in form says why; stale page).
  function quiet(e) { return e.status === 401 || !!e.stale; }
  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null) u.set(k, v);
    const s = u.toString();
    return s ? "?" + s : "";
  }
  function errorBox(err, retry) {
    const box = el("div.error-state", { role: "alert" },
      el("p", { text: err.status === 503 || err.status === 0 ? t("err.unavailable") : t("err.generic", { msg: err.message }) }));
    if (retry) box.appendChild(el("button", { type: "button", onclick: retry, text: t("retry") }));
    return box;
  }

  // ---------- confirm dialog ----------
  function confirmAction(text, okLabel) {
    const dlg = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel || t("confirm");
    return new Promise((resolve) => {
      const done = () => { dlg.removeEventListener("close", done); resolve(dlg.returnValue === "ok"); };
      dlg.addEventListener("close", done);
      dlg.returnValue = "";
      dlg.showModal();
      document.getElementById("confirm-cancel").focus();
    });
  }

  // ---------- sign-in ----------
  function signedOut(msg) {
    state.me = null;
    state.csrf = "";
    if (state.es) { state.es.close(); state.es = null; }
    document.getElementById("nav").hidden = true;
    document.getElementById("signout").hidden = true;
    document.getElementById("live").hidden = true;
    renderLogin(msg);
  }
  function renderLogin(msg) {
    state.refresh = null;
    const err = el("p.form-error", { id: "login-error", role: "alert" });
    if (msg) err.textContent = msg;
    const input = el("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
      spellcheck: "false", "aria-describedby": "token-help login-error" });
    const form = el("form.card.login", { novalidate: true },
      el("h1", { text: t("login.title") }),
      el("label", { for: "token", text: t("login.token") }),
      input,
      el("p.muted", { id: "token-help", text: t("login.help") }),
      err,
      el("button", { type: "submit", id: "login-submit", text: t("login.submit") }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      if (!input.value.trim()) { err.textContent = t("login.empty"); input.focus(); return; }
      try {
        const me = await api("POST", "/login", { token: input.value.trim() });
        input.value = "";
        try {
          await api("GET", "/me"); // the browser kept the cookie?
        } catch (e2) {
          err.textContent = me.secureCookie ? t("login.needhttps") : e2.message;
          return;
        }
        signedIn(me);
      } catch (e) {
        err.textContent = e.status === 401 ? t("login.bad") : e.status === 429 ? t("login.ratelimited") : e.message;
        input.focus();
      }
    });
    setMain(form);
    input.focus();
  }
  function signedIn(me) {
    state.me = me;
    state.csrf = me.csrf;
    document.getElementById("nav").hidden = false;
    document.getElementById("signout").hidden = false;
    connectEvents();
    if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/overview";
    else route();
  }

  // ---------- live events ----------
  let liveTimer = null;
  function connectEvents() {
    if (state.es || typeof EventSource === "undefined") return;
    const live = document.getElementById("live");
    const es = new EventSource(API + "/events");
    state.es = es;
    let down = false;
    es.addEventListener("hello", () => {
      live.hidden = false; live.className = "live on"; live.textContent = t("live.on");
      if (down) { down = false; banner(""); if (state.refresh) state.refresh([]); else route(); } // back after a restart: reload the data
    });
    es.addEventListener("error", () => {
      down = true; live.hidden = false; live.className = "live off"; live.textContent = t("live.off");
      if (es.readyState === EventSource.CLOSED) { es.close(); state.es = null; checkSession(); } // e.g. signed out (401)
    });
    es.addEventListener("signedout", () => { es.close(); state.es = null; checkSession(); });
    es.addEventListener("sessions", (ev) => {
      let list = [];
      try { list = JSON.parse(ev.data); } catch (e) { return; }
      const started = list.filter((c) => c.type === "started").length;
      const ended = list.length - started;
      announce(t("live.changes", { started: fmt.num(started), ended: fmt.num(ended) }));
      clearTimeout(liveTimer);
      liveTimer = setTimeout(() => { if (state.refresh) state.refresh(list); }, 250);
    });
  }
  async function checkSession() {
    try {
      const me = await api("GET", "/session");
      if (!me.signedIn) { signedOut(me.code && me.code !== "signed_out" ? t("auth." + me.code) : null); return; }
      signedIn(me);
    } catch (e) {
      if (!quiet(e)) setMain(errorBox(e, checkSession));
    }
  }

  // ---------- router ----------
  function parseHash() {
    const h = location.hash.replace(/^#\/?/, "");
    const [p, q] = h.split("?");
    const parts = p.split("/").map((s) => { try { return decodeURIComponent(s); } catch (e) { return s; } });
    return { page: parts[0] || "overview", arg: parts.slice(1).join("/"), params: new URLSearchParams(q || "") };
  }
  function route() {
    if (!state.me) return;
    const r = parseHash();
    state.route = r;
    state.refresh = null;
    clearTimeout(ovTimer);
    for (const a of document.querySelectorAll("#nav a")) {
      const cur = a.getAttribute("data-route") === r.page || (r.page === "session" && a.getAttribute("data-route") === "sessions") ||
        (r.page === "user" && a.getAttribute("data-route") === "sessions");
      if (cur) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const pages = { overview: renderOverview, analytics: renderAnalytics, sessions: renderSessions, session: renderSession, user: renderUser,
      settings: renderSettings, audit: renderAudit, lockouts: renderLockouts };
    (pages[r.page] || renderNotFound)(r);
    main().focus({ preventScroll: true });
  }
  function renderNotFound() {
    setMain(el("div.empty", null, el("h1", { text: t("notfound.title") }), el("p", null, el("a", { href: "#/overview", text: t("notfound.back") }))));
  }
  function loading() { return el("p.muted.loading", { text: t("loading") }); }

  // ---------- overview ----------
  async function renderOverview() {
    setMain(el("h1", { text: t("nav.overview") }), loading());
    let o;
    try { o = (await pageGet("/overview")).data; } catch (e) { if (!quiet(e)) setMain(el("h1", { text: t("nav.overview") }), errorBox(e, renderOverview)); return; }
    const card = (label, value, hint, id) => el("div.stat", { id },
      el("div.stat-value", { text: value === null || value === undefined ? "—" : fmt.num(value) }),
      el("div.stat-label", { text: label }), hint ? el("div.stat-hint", { text: hint }) : null);
    const cards = el("section.stats", { "aria-label": t("ov.figures") },
      card(t("ov.online"), o.onlineNow, t("ov.online.hint") + " · " + t("ov.recent", { m15: fmt.num(o.active15), m30: fmt.num(o.active30) }), "stat-online"),
      card(t("ov.activeSessions"), o.activeSessions, t("ov.activeSessions.hint", { n: o.inactivityMinutes }), "stat-active"),
      o.series ? card(t("ov.logins24"), sum(o.series.logins), null, "stat-logins") : null,
      o.series ? card(t("ov.refusals24"), sum(o.series.refusals), null, "stat-refusals") : null,
      card(t("ov.total"), o.totalSessions, null, "stat-total"),
      card(t("ov.blocked"), o.blockedUsers, null, "stat-blocked"));
    const chartBox = el("section.card", { "aria-labelledby": "chart-title" }, el("h2", { id: "chart-title", text: t("ov.chart") }));
    if (o.series) chartBox.appendChild(timeChart({ start: o.series.start, bucketMin: o.series.bucketMinutes,
      aria: t("ov.chart.aria", { logins: fmt.num(sum(o.series.logins)), refusals: fmt.num(sum(o.series.refusals)), ended: fmt.num(sum(o.series.ended)) }),
      series: [{ label: t("ov.logins"), values: o.series.logins, kind: "bar", cls: "bar-logins" },
        { label: t("ov.refusals"), values: o.series.refusals, kind: "line", cls: "line-refusals" },
        { label: t("ov.ended"), values: o.series.ended, kind: "line", cls: "line-ended" }] }));
    else chartBox.appendChild(el("p.muted", { text: t("ov.partial") }));
    const topList = (title, items, label) => el("section.card", null, el("h2", { text: title }),
      items && items.length ? el("ol.bars", null, items.map((it) => {
        const maxv = Math.max(...items.map((x) => x.count), 1);
        return el("li", null, el("span.bar-label", { text: label ? label(it.name) : it.name || t("unknown") }),
          el("meter", { min: 0, max: maxv, value: it.count, "aria-hidden": "true" }),
          el("span.bar-value", { text: fmt.num(it.count) }));
      })) : el("p.muted", { text: o.partial ? t("ov.partial") : t("ov.notop") }));
    const since = o.topSince ? t("ov.since", { date: fmt.date(o.topSince) }) : "";
    setMain(el("h1", { text: t("nav.overview") }), cards, chartBox,
      el("div.grid3", null, topList(t("ov.countries"), o.topCountries, (n) => countryLabel(n, "")), topList(t("ov.devices"), o.topDevices, deviceLabel), topList(t("ov.browsers"), o.topBrowsers)),
      el("p.muted", { text: [since, t("ov.updated", { time: fmt.date(o.generatedAt) })].filter(Boolean).join(" · ") }));
    state.refresh = () => { if (state.route && state.route.page === "overview") renderOverviewQuiet(); };
  }
  let ovTimer = null;
  function renderOverviewQuiet() {
    clearTimeout(ovTimer);
    const at = state.route;
    ovTimer = setTimeout(() => { if (state.route === at) renderOverview(); }, 1000); // not over another page
  }

  const sum = (a) => a.reduce((x, y) => x + y, 0);

  // ---------- labels translated in the page ----------
  // Optional texts: "" when the catalogue has no such key (not an omission).
  function tOpt(key, vars) {
    const en = (window.MSS_I18N && window.MSS_I18N.en) || {};
    return key in en ? t(key, vars) : "";
  }
  const DEVICES = ["desktop", "mobile", "tablet", "bot", "unknown"];
  function deviceLabel(type) { return DEVICES.includes(type) ? t("device." + type) : type || t("unknown"); }
  function countryLabel(name, code) {
    if (name === "Private network") return t("geo.private");
    if (code && typeof Intl.DisplayNames === "function") {
      try { return new Intl.DisplayNames([state.lang], { type: "region" }).of(code) || name || code; } catch (e) { /* unknown code */ }
    }
    return name || t("unknown");
  }
  // "mobile · Android" (the user view's device key) with the type translated.
  function deviceKeyLabel(name) {
    const [type, ...rest] = String(name).split(" · ");
    return [type === "?" ? t("unknown") : deviceLabel(type)].concat(rest.filter((x) => x && x !== "?")).join(" · ");
  }
  // A score reason: a code with parameters is translated; other text shows as it is.
  function reasonText(r) {
    if (!r || !r.code) return r ? r.text : "";
    const p = Object.assign({}, r.params || {});
    if (p.country) p.country = countryLabel(p.country, p.country);
    for (const k of ["n", "max", "km"]) if (p[k] !== undefined && /^\d+$/.test(p[k])) p[k] = fmt.num(Number(p[k]));
    return t("score." + r.code, p);
  }

  // ---------- charts (SVG, sized to the screen so labels keep their size) ----------
  function chartWidth(half) {
    const w = Math.max(280, Math.min(1100, (main().clientWidth || 800) - 48));
    return half && window.innerWidth > 760 ? Math.max(280, (w - 16) / 2 - 24) : w;
  }
  // timeChart: series of {key, values, kind: bar|line|dash, cls}, buckets from start every bucketMin.
  function timeChart(opts) {
    const W = chartWidth(opts.half), H = W < 500 ? 200 : 240, L = 44, R = 10, T = 12, B = 30;
    const n = opts.series[0].values.length;
    const top = Math.max(1, ...opts.series.flatMap((s) => s.values));
    const maxv = Math.ceil(top / 4) * 4;
    const step = (W - L - R) / Math.max(1, n);
    const y = (v) => T + (H - T - B) * (1 - v / maxv);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart", role: "img", "aria-label": opts.aria });
    for (let i = 0; i <= 4; i++) {
      const v = (maxv * i) / 4, yy = y(v);
      g.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
      g.appendChild(svg("text", { x: L - 6, y: yy + 4, "text-anchor": "end", class: "axis" }, fmt.num(Math.round(v))));
    }
    const label = opts.bucketMin >= 1440 ? (ms) => fmt.day(ms) : opts.bucketMin >= 360 ? (ms) => fmt.dayHour(ms) : (ms) => fmt.hour(ms);
    const every = Math.max(1, Math.ceil((opts.bucketMin >= 360 ? 90 : 56) / step));
    const start = new Date(opts.start).getTime();
    const at = (i) => start + i * opts.bucketMin * 60e3;
    for (const s of opts.series) {
      if (s.kind === "bar") {
        s.values.forEach((v, i) => {
          const bar = svg("rect", { x: L + i * step + 1, y: y(v), width: Math.max(1, step - 2), height: H - B - y(v), class: s.cls });
          bar.appendChild(svg("title", {}, `${label(at(i))}: ${opts.series.map((x) => x.label + " " + fmt.num(x.values[i])).join(", ")}`));
          g.appendChild(bar);
        });
      } else {
        g.appendChild(svg("polyline", { class: s.cls, fill: "none", points: s.values.map((v, i) => `${L + i * step + step / 2},${y(v)}`).join(" ") }));
      }
    }
    for (let i = 0; i < n; i += every) g.appendChild(svg("text", { x: L + i * step + step / 2, y: H - B + 16, "text-anchor": "middle", class: "axis" }, label(at(i))));
    const legend = el("div.legend", null, opts.series.map((s) => el("span.key.k-" + s.cls, { text: s.label })));
    return el("div.chart-wrap", null, g, legend);
  }
  function barList(items, label, id) {
    if (!items || !items.length) return el("p.muted", { text: t("an.nodata") });
    const total = items.reduce((a, x) => a + x.count, 0) || 1;
    const maxv = Math.max(...items.map((x) => x.count), 1);
    return el("ol.bars", { id }, items.map((it) => el("li", null, el("span.bar-label", { text: label(it) }),
      el("meter", { min: 0, max: maxv, value: it.count, "aria-hidden": "true" }),
      el("span.bar-value", { text: fmt.num(it.count) + " · " + fmt.pct(it.count / total) }))));
  }

  // World tile map: one square per country at its approximate centre,
  // nudged to the nearest free cell; no map data leaves this file.
  const CENTRES = "CA56,-100 US39,-98 MX23,-102 GT15.5,-90.3 BZ17.2,-88.7 HN14.8,-86.6 SV13.7,-88.9 NI12.9,-85.2 CR9.9,-84 PA8.5,-80 CU21.5,-79 " +
    "JM18.1,-77.3 HT19,-72.5 DO18.9,-70.5 PR18.2,-66.5 BS24.5,-77.5 TT10.5,-61.3 GL72,-40 CO4,-73 VE7,-66 GY5,-59 SR4,-56 EC-1.5,-78 PE-9,-75 " +
    "BR-10,-52 BO-17,-65 PY-23,-58 UY-33,-56 AR-35,-65 CL-33,-71 IS65,-18 IE53,-8 GB54,-2 PT39.5,-8 ES40,-4 FR46.5,2.5 BE50.6,4.6 NL52.2,5.5 " +
    "LU49.8,6.1 DE51,10 CH46.8,8.2 AT47.5,14.5 IT42.8,12.5 MT35.9,14.4 DK56,10 NO62,10 SE62,16 FI64,26 EE58.7,25.5 LV56.9,24.6 LT55.3,23.9 " +
    "PL52,19.5 CZ49.8,15.5 SK48.7,19.5 HU47.2,19.5 SI46.1,14.8 HR45.2,15.5 BA44,17.8 RS44,20.8 ME42.7,19.3 AL41.2,20 MK41.6,21.7 GR39,22 " +
    "BG42.7,25.3 RO45.9,25 MD47.2,28.5 UA49,32 BY53.7,28 RU58,50 CY35,33 TR39,35 GE42.2,43.5 AM40.2,45 AZ40.3,47.7 SY35,38.5 LB33.9,35.8 " +
    "IL31.5,34.9 PS31.9,35.2 JO31,36.5 IQ33,43.7 IR32.5,54 KW29.3,47.6 SA24,45 BH26,50.5 QA25.3,51.2 AE24,54 OM21,57 YE15.5,48 KZ48,67 " +
    "UZ41.4,64.6 TM39,59.5 KG41.5,74.8 TJ38.9,71 AF33.9,67.7 PK30,70 IN22,79 NP28.4,84 BT27.5,90.4 BD23.7,90.3 LK7.9,80.8 MV3.2,73.2 MM21,96 " +
    "TH15.5,101 LA18.5,103 KH12.6,105 VN16,107 MY4,102 SG1.35,103.8 ID-2.5,118 PH12.5,122 BN4.5,114.7 TL-8.8,125.7 CN35,103 MN46.8,103 " +
    "KP40,127 KR36.5,128 JP36.5,138 TW23.7,121 HK22.3,114.2 AU-25,134 NZ-41,174 PG-6.3,145 FJ-17.7,178 NC-21.3,165.5 SB-9.6,160 VU-15.4,166.9 " +
    "MA31.8,-7 DZ28,2.6 TN34,9.5 LY27,17 EG26.8,30.8 SD15.5,30 SS7.5,30.5 ER15.2,39.8 ET9,39.5 DJ11.8,42.6 SO5.2,46.2 KE0.2,37.9 UG1.4,32.3 " +
    "RW-2,29.9 BI-3.4,29.9 TZ-6.4,34.9 MR21,-10.9 ML17.6,-4 NE17.6,8 TD15.5,18.7 SN14.5,-14.5 GM13.4,-15.3 GW12,-15 GN10,-11 SL8.5,-11.8 " +
    "LR6.4,-9.4 CI7.5,-5.5 BF12.2,-1.6 GH7.9,-1 TG8.6,0.8 BJ9.3,2.3 NG9,8.7 CM5.7,12.4 CF6.6,20.9 GQ1.6,10.3 GA-0.8,11.6 CG-0.2,15.8 " +
    "CD-2.9,23.7 AO-11.2,17.9 ZM-13.1,27.8 MW-13.3,34.3 MZ-18.7,35.5 ZW-19,29.2 BW-22.3,24.7 NA-22.6,18.5 ZA-30.6,22.9 LS-29.6,28.2 " +
    "SZ-26.5,31.5 MG-18.8,46.9 MU-20.3,57.6 CV16,-24";
  let tiles = null;
  function tileLayout() {
    if (tiles) return tiles;
    const COLS = 46, ROWS = 24, used = new Set();
    tiles = [];
    for (const item of CENTRES.split(" ")) {
      const code = item.slice(0, 2);
      const [lat, lon] = item.slice(2).split(",").map(Number);
      const cx = Math.round(((lon + 170) / 360) * COLS), cy = Math.round(((78 - lat) / 128) * ROWS);
      let best = null;
      for (let r = 0; r < 8 && !best; r++) {
        let bd = Infinity;
        for (let dx = -r; dx <= r; dx++) for (let dy = -r; dy <= r; dy++) {
          const x = cx + dx, y = cy + dy;
          if (Math.max(Math.abs(dx), Math.abs(dy)) !== r || x < 0 || y < 0 || x >= COLS || y >= ROWS || used.has(x + "," + y)) continue;
          const d = dx * dx + dy * dy * 1.2;
          if (d < bd) { bd = d; best = [x, y]; }
        }
      }
      if (!best) continue;
      used.add(best[0] + "," + best[1]);
      tiles.push({ code, x: best[0], y: best[1] });
    }
    return tiles;
  }
  function worldMap(countries) {
    const byCode = {};
    for (const c of countries) if (c.code) byCode[c.code] = (byCode[c.code] || 0) + c.count;
    const maxv = Math.max(1, ...Object.values(byCode));
    const S = 20, G = 2;
    const lay = tileLayout();
    const x0 = Math.min(...lay.map((l) => l.x)), x1 = Math.max(...lay.map((l) => l.x)) + 1;
    const y0 = Math.min(...lay.map((l) => l.y)), y1 = Math.max(...lay.map((l) => l.y)) + 1;
    const g = svg("svg", { viewBox: `${x0 * S} ${y0 * S} ${(x1 - x0) * S} ${(y1 - y0) * S}`, class: "worldmap", id: "world-map", role: "img",
      "aria-label": t("an.map.aria", { n: fmt.num(Object.keys(byCode).length) }) });
    for (const tile of lay) {
      const v = byCode[tile.code] || 0;
      const level = v ? Math.max(1, Math.ceil((5 * Math.log1p(v)) / Math.log1p(maxv))) : 0;
      const r = svg("rect", { x: tile.x * S + G / 2, y: tile.y * S + G / 2, width: S - G, height: S - G, rx: 3, class: "tile l" + level, "data-code": tile.code });
      r.appendChild(svg("title", {}, countryLabel("", tile.code) + ": " + fmt.num(v)));
      g.appendChild(r);
      g.appendChild(svg("text", { x: tile.x * S + S / 2, y: tile.y * S + S / 2 + 3.5, "text-anchor": "middle", class: "tile-label" + (level >= 3 ? " dark" : "") }, tile.code));
    }
    const scale = el("div.map-scale", { "aria-hidden": "true" }, el("span", { text: fmt.num(0) }),
      [1, 2, 3, 4, 5].map((l) => el("span.swatch.l" + l)), el("span", { text: fmt.num(maxv) }));
    return el("div.map-wrap", null, g, scale);
  }

  // ---------- analytics ----------
  const RANGES = ["24h", "7d", "30d", "custom"];
  async function renderAnalytics(r) {
    const range = RANGES.includes(r.params.get("range")) ? r.params.get("range") : "24h";
    const from = r.params.get("from") || "", to = r.params.get("to") || "";
    const picker = el("form.range", { id: "range-picker", "aria-label": t("an.range"), onsubmit: (ev) => ev.preventDefault() },
      el("div.seg", { role: "radiogroup", "aria-label": t("an.range") }, RANGES.map((x) => el("button" + (x === range ? ".on" : ".secondary"), {
        type: "button", role: "radio", "aria-checked": x === range ? "true" : "false", "data-range": x, text: t("an.r." + x),
        onclick: () => x === "custom" ? setHashParams("analytics", "", { range: "custom", from: from || isoDay(Date.now() - 7 * 864e5), to: to || isoDay(Date.now()) })
          : setHashParams("analytics", "", { range: x }) }))));
    if (range === "custom") {
      const f = el("input", { type: "date", id: "range-from", value: from, required: true });
      const tt = el("input", { type: "date", id: "range-to", value: to, required: true });
      picker.appendChild(el("label", null, el("span", { text: t("an.from") }), f));
      picker.appendChild(el("label", null, el("span", { text: t("an.to") }), tt));
      picker.appendChild(el("button", { type: "submit", id: "range-apply", text: t("an.apply") }));
      picker.addEventListener("submit", () => setHashParams("analytics", "", { range: "custom", from: f.value, to: tt.value }));
    }
    const body = el("div", { id: "analytics-body" }, loading());
    setMain(el("h1", { text: t("nav.analytics") }), picker, body);
    const day = /^\d{4}-\d{2}-\d{2}$/;
    if (range === "custom" && (!day.test(from) || !day.test(to) || from > to || Date.parse(to) - Date.parse(from) > 365 * 864e5)) {
      clear(body).appendChild(el("p.form-error", { id: "range-error", role: "alert", text: t("an.badrange") }));
      return;
    }
    let a;
    try {
      const res = await pageGet("/analytics" + qs({ range, from: range === "custom" ? from : "", to: range === "custom" ? to : "" }));
      if (!res.data) { clear(body).appendChild(el("p.muted", { text: t("ov.partial") })); return; }
      a = res.data;
    } catch (e) {
      if (e.status === 400 && !e.stale) { clear(body).appendChild(el("p.form-error", { id: "range-error", role: "alert", text: t("an.badrange") })); return; }
      if (!quiet(e)) { clear(body).appendChild(errorBox(e, () => renderAnalytics(r))); }
      return;
    }
    const sumOf = (items, pred) => (items || []).filter(pred).reduce((x, i) => x + i.count, 0);
    const logins = sumOf(a.devices, () => true);
    const mobile = sumOf(a.devices, (i) => i.name === "mobile" || i.name === "tablet");
    const card = (label, value, hint, id) => el("div.stat", { id }, el("div.stat-value", { text: value }), el("div.stat-label", { text: label }),
      hint ? el("div.stat-hint", { text: hint }) : null);
    const bm = a.bucketMinutes;
    const tz = -new Date().getTimezoneOffset() / 60;
    const peak = Number.isInteger(tz) ? a.peakHours.map((_, h) => a.peakHours[(((h - tz) % 24) + 24) % 24]) : a.peakHours;
    const peakChart = timeChart({ half: true, start: new Date(2000, 0, 1).getTime(), bucketMin: 60, aria: t("an.peak.aria"),
      series: [{ label: t("ov.logins"), values: peak, kind: "bar", cls: "bar-logins" }] });
    clear(body);
    append(body, [
      el("p.muted", { id: "range-line", text: t("an.window", { from: fmt.date(a.from), to: fmt.date(a.to) }) }),
      el("section.stats", { "aria-label": t("ov.figures") },
        card(t("ov.logins"), fmt.num(a.totalLogins), null, "an-logins"),
        card(t("an.unique.users"), fmt.num(a.uniqueUsers), null, "an-users"),
        card(t("an.unique.ips"), fmt.num(a.uniqueIps), null, "an-ips"),
        card(t("ov.refusals"), fmt.num(a.totalRefusals), t("an.refusals.hint"), "an-refusals"),
        card(t("an.mobile"), logins ? fmt.pct(mobile / logins) : "—", null, "an-mobile"),
        card(t("an.risky"), fmt.num(a.riskyCount), t("an.risky.hint", { n: fmt.num(70) }), "an-risky")),
      el("section.card", { "aria-labelledby": "an-chart-title" }, el("h2", { id: "an-chart-title", text: t("an.chart.logins") }),
        timeChart({ start: a.from, bucketMin: bm, aria: t("an.chart.logins"), series: [
          { label: t("ov.logins"), values: a.logins, kind: "bar", cls: "bar-logins" },
          { label: t("ov.refusals"), values: a.refusals, kind: "line", cls: "line-refusals" },
          { label: t("ov.ended"), values: a.ended, kind: "line", cls: "line-ended" }] })),
      el("section.card", { "aria-labelledby": "an-active-title" }, el("h2", { id: "an-active-title", text: t("an.chart.active") }),
        timeChart({ start: a.from, bucketMin: bm, aria: t("an.chart.active"), series: [
          { label: t("an.open"), values: a.active, kind: "line", cls: "line-active" }] })),
      el("div.grid2", null,
        el("section.card", null, el("h2", { text: t("an.refusals.by") }), barList(a.refusalsByReason, (i) => t("refusal." + i.name), "refusal-reasons")),
        el("section.card", null, el("h2", { text: t("an.peak") }), peakChart)),
      el("section.card", { "aria-labelledby": "an-map-title" }, el("h2", { id: "an-map-title", text: t("an.map") }),
        el("div.map-grid", null, worldMap(a.countries),
          barList(a.countries.slice(0, 10), (i) => countryLabel(i.name, i.code), "country-list"))),
      el("div.grid3", null,
        el("section.card", null, el("h2", { text: t("ov.devices") }), barList(a.devices, (i) => deviceLabel(i.name), "device-mix")),
        el("section.card", null, el("h2", { text: t("ov.browsers") }), barList(a.browsers, (i) => i.name || t("unknown"), "browser-mix")),
        el("section.card", null, el("h2", { text: t("an.os") }), barList(a.os, (i) => i.name || t("unknown"), "os-mix"))),
      el("section.card", { "aria-labelledby": "an-risky-title" }, el("h2", { id: "an-risky-title", text: t("an.risky.title") }),
        a.risky.length ? el("div.table-wrap", null, el("table.sessions", { id: "risky-table" },
          el("thead", null, el("tr", null, [t("col.user"), t("col.login"), t("col.ip"), t("col.location"), t("col.score"), t("an.reasons")].map((h) => el("th", { scope: "col", text: h })))),
          el("tbody", null, a.risky.map((x) => el("tr", null,
            el("td", { "data-label": t("col.user") }, el("a", { href: "#/session/" + encodeURIComponent(x.sessionId), text: x.userId })),
            el("td", { "data-label": t("col.login"), text: fmt.date(x.loginTime) }),
            el("td", { "data-label": t("col.ip"), text: x.ipAddress || "—" }),
            el("td", { "data-label": t("col.location"), text: countryLabel(x.country, "") }),
            el("td", { "data-label": t("col.score") }, scoreBadge(x.securityScore)),
            el("td", { "data-label": t("an.reasons") }, x.reasons.length ? x.reasons.map(reasonText).join("; ") : "—"))))))
          : el("p.muted", { text: t("an.norisky") })),
      el("p.muted", { text: t("ov.updated", { time: fmt.date(a.generatedAt) }) }),
    ]);
  }
  function isoDay(ms) { const d = new Date(ms); return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); }

  // ---------- sessions table ----------
  const STATUSES = ["all", "active", "idle", "loggedout", "terminated"];
  function statusOf(s) {
    if (s.isActive) return s.isTrulyActive ? "active" : "idle";
    return s.terminationReason === "logout" ? "loggedout" : "terminated";
  }
  function statusBadge(s) {
    const st = statusOf(s);
    let label = t("status." + st);
    if (st === "terminated" && s.terminationReason) label += " · " + t("reason." + s.terminationReason);
    return el("span.badge.b-" + st, { text: label });
  }
  function locationLine(g) {
    if (!g) return "";
    const c = g.country === "Private network" ? t("geo.private") : g.country_code ? countryLabel(g.country, g.country_code) : g.country || g.countryCode;
    return [g.city, g.region, c].filter(Boolean).join(", ");
  }
  // sid is a session's store id ("sess_…"): documentId in the shared
  // session view, where sessionId is the id the app sees.
  function sid(s) { return s.documentId || s.sessionId; }
  // who names a session's user: the name and email when known, else the id.
  function who(s) {
    const u = s.user || {};
    return u.username || u.email || s.userId;
  }
  // actionableTable: the sessions table with row actions and a bar to act on the selection.
  function actionableTable(list, opts, reload) {
    // A live reload keeps the rows still listed selected.
    const selection = opts.keep || new Map();
    for (const id of [...selection.keys()]) if (!list.some((s) => sid(s) === id)) selection.delete(id);
    for (const s of list) if (selection.has(sid(s))) selection.set(sid(s), s);
    const count = el("span", { id: "bulk-count", "aria-live": "polite" });
    const termBtn = el("button.danger", { type: "button", id: "bulk-terminate", text: t("bulk.terminate") });
    const blockBtn = el("button.secondary", { type: "button", id: "bulk-block", text: t("bulk.block") });
    const bar = el("div.bulkbar", { id: "bulk-bar", role: "region", "aria-label": t("bulk.label"), hidden: true }, count, termBtn, blockBtn);
    const update = () => {
      const n = selection.size;
      bar.hidden = n === 0;
      const users = new Set([...selection.values()].map((s) => s.userId));
      count.textContent = t("bulk.selected", { n: fmt.num(n), users: fmt.num(users.size) });
      termBtn.disabled = ![...selection.values()].some((s) => s.isActive);
    };
    const names = (arr) => arr.slice(0, 5).join(", ") + (arr.length > 5 ? " " + t("bulk.more", { n: fmt.num(arr.length - 5) }) : "");
    const run = async (body, msgKey) => {
      try {
        const res = await api("POST", "/bulk", body);
        announce(t(msgKey, { n: fmt.num(res.done), total: fmt.num(res.results.length) }));
        banner(t(msgKey, { n: fmt.num(res.done), total: fmt.num(res.results.length) }), res.done === res.results.length ? "ok" : "error");
        selection.clear();
        reload();
      } catch (e) { if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
    };
    termBtn.addEventListener("click", async () => {
      const list2 = [...selection.values()].filter((s) => s.isActive);
      if (!(await confirmAction(t("bulk.terminate.confirm", { n: fmt.num(list2.length), users: names([...new Set(list2.map(who))]) }), t("bulk.terminate")))) return;
      run({ action: "terminate", sessionIds: list2.map((s) => sid(s)) }, "bulk.terminated");
    });
    blockBtn.addEventListener("click", async () => {
      const users = [...new Map([...selection.values()].map((s) => [s.userId, s])).values()];
      if (!(await confirmAction(t("bulk.block.confirm", { n: fmt.num(users.length), users: names(users.map(who)) }), t("bulk.block")))) return;
      run({ action: "block", userIds: users.map((s) => s.userId) }, "bulk.blocked");
    });
    const onTerminate = async (s) => {
      if (!(await confirmAction(t("session.terminate.confirm", { user: who(s) }), t("session.terminate")))) return;
      try {
        await api("POST", "/sessions/" + encodeURIComponent(sid(s)) + "/terminate");
        announce(t("session.terminated"));
        reload();
      } catch (e) { if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
    };
    const table = sessionsTable(list, Object.assign({}, opts, { selection, onSelect: () => { all.checked = list.every((s) => selection.has(sid(s))); update(); }, onTerminate }));
    // Select all: above the table, so that phones (where the table is a list of cards) have it too.
    const all = el("input", { type: "checkbox", id: "select-all", checked: list.length > 0 && list.every((s) => selection.has(sid(s))), onchange: (ev) => {
      for (const s of list) { if (ev.target.checked) selection.set(sid(s), s); else selection.delete(sid(s)); }
      for (const c of table.querySelectorAll("input.pick-row")) c.checked = ev.target.checked;
      update();
    } });
    update();
    return [el("div.tabletools", null, el("label.pick-all", null, all, " ", t("sel.all"))), bar, table];
  }
  function sessionsTable(list, opts) {
    // Sortable where the store has an index: user and login always, last
    // activity among open sessions, logout time among ended ones.
    const st = opts.status || "all";
    const open = st === "active" || st === "idle";
    const ended = st === "loggedout" || st === "terminated";
    const cols = [
      ["userId", t("col.user"), true], ["ipAddress", t("col.ip")], [null, t("col.location")], [null, t("col.device")],
      ["loginTime", t("col.login"), true],
      ended ? ["logoutTime", t("col.ended"), true] : ["lastActive", t("col.lastActive"), open],
      [null, t("col.status")], ["securityScore", t("col.score")],
    ];
    const sort = opts.sort || "-loginTime";
    const desc = sort.startsWith("-");
    const field = sort.replace(/^-/, "");
    const sel = opts.selection; // Map sessionId -> session, when rows can be selected
    const head = el("tr", null, sel ? el("th.pick", { scope: "col" }, el("span.sr-only", { text: t("sel.row.label") })) : null, cols.map(([f, label, sortable]) => {
      if (!sortable || !opts.onSort) return el("th", { scope: "col", text: label });
      const cur = f === field;
      return el("th", { scope: "col", "aria-sort": cur ? (desc ? "descending" : "ascending") : "none" },
        el("button.sort", { type: "button", onclick: () => opts.onSort(cur && desc ? f : "-" + f),
          "aria-label": t("sortby", { col: label }) }, label, el("span.arrow", { "aria-hidden": "true", text: cur ? (desc ? " ▼" : " ▲") : "" })));
    }));
    if (opts.onTerminate) head.appendChild(el("th", { scope: "col" }, el("span.sr-only", { text: t("col.actions") })));
    const rows = list.map((s) => el("tr", { "data-session": sid(s) },
      sel ? el("td.pick", { "data-label": t("sel.row.label") }, el("input.pick-row", { type: "checkbox", "data-session": sid(s),
        "aria-label": t("sel.row", { user: who(s) }), checked: sel.has(sid(s)),
        onchange: (ev) => { if (ev.target.checked) sel.set(sid(s), s); else sel.delete(sid(s)); opts.onSelect(); } })) : null,
      el("td", { "data-label": t("col.user") }, el("a", { href: "#/user/" + encodeURIComponent(s.userId), text: s.userId }),
        userName(s) ? el("div.sub.person", { text: userName(s) }) : null,
        el("div.sub", null, el("a.session-link", { href: "#/session/" + encodeURIComponent(sid(s)), text: t("details") }))),
      el("td", { "data-label": t("col.ip"), text: s.ipAddress || "—" }),
      el("td", { "data-label": t("col.location"), text: locationLine(s.geoLocation) || "—" }),
      el("td", { "data-label": t("col.device") }, [s.deviceType ? deviceLabel(s.deviceType) : "", s.browserName, s.osName].filter(Boolean).join(" · ") || "—",
        el("div.sub.ua", { text: s.userAgent || "", title: s.userAgent || "" })),
      el("td", { "data-label": t("col.login"), text: fmt.date(s.loginTime) }),
      opts.status === "loggedout" || opts.status === "terminated"
        ? el("td", { "data-label": t("col.ended"), text: fmt.date(s.logoutTime) })
        : el("td", { "data-label": t("col.lastActive"), text: fmt.ago(s.lastActive), title: fmt.date(s.lastActive) }),
      el("td", { "data-label": t("col.status") }, statusBadge(s)),
      el("td", { "data-label": t("col.score") }, scoreBadge(s.securityScore)),
      opts.onTerminate ? el("td.row-actions", { "data-label": t("col.actions") }, s.isActive ? el("button.secondary.small.row-terminate", { type: "button",
        "aria-label": t("row.terminate.aria", { user: who(s) }), text: t("row.terminate"), onclick: () => opts.onTerminate(s) }) : null) : null));
    return el("div.table-wrap", null, el("table.sessions", { id: opts.id || "sessions-table" },
      el("caption.sr-only", { text: opts.caption || t("nav.sessions") }), el("thead", null, head), el("tbody", null, rows)));
  }
  // userName is the name the login answer gave ("" when none).
  function userName(s) {
    const u = s.user || {};
    return [u.username, u.email].filter(Boolean).join(" · ");
  }
  function scoreBadge(v) {
    if (v === null || v === undefined) return el("span.score.muted", { text: "—" });
    const cls = v >= 70 ? "good" : v >= 40 ? "warn" : "bad";
    return el("span.score." + cls, { text: fmt.num(v) });
  }
  function pager(meta, go) {
    const p = meta.pagination || { page: 1, pageCount: 1, total: meta.count };
    return el("nav.pager", { "aria-label": t("pagination") },
      el("button.secondary", { type: "button", disabled: p.page <= 1, onclick: () => go(p.page - 1), text: t("prev") }),
      el("span", { text: t("pageof", { page: fmt.num(p.page), pages: fmt.num(Math.max(1, p.pageCount)) + (p.totalCapped ? "+" : ""),
        total: fmt.num(p.total) + (p.totalCapped ? "+" : "") }) }),
      el("button.secondary", { type: "button", disabled: p.page >= p.pageCount, onclick: () => go(p.page + 1), text: t("next") }));
  }
  function setHashParams(page, arg, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null && !(k === "page" && String(v) === "1")) q.set(k, v);
    const s = q.toString();
    location.hash = "#/" + page + (arg ? "/" + encodeURIComponent(arg) : "") + (s ? "?" + s : "");
  }

  function renderSessions(r) {
    const status = r.params.get("status") || "all";
    const endedView = status === "loggedout" || status === "terminated";
    const p = {
      status, search: r.params.get("search") || "",
      sort: r.params.get("sort") || (endedView ? "-logoutTime" : "-loginTime"), page: r.params.get("page") || "1", pageSize: r.params.get("pageSize") || "25",
      match: r.params.get("match") || "",
    };
    // A sort that the new filter cannot use falls back to the default.
    const fitSort = (st, sort) => {
      const f = (sort || "").replace(/^-/, "");
      if (f === "lastActive" && st !== "active" && st !== "idle") return "";
      if (f === "logoutTime" && st !== "loggedout" && st !== "terminated") return "";
      return sort;
    };
    const nav = (changes) => setHashParams("sessions", "", Object.assign({}, p, changes));
    const statusSel = el("select", { id: "filter-status" }, STATUSES.map((s) => el("option", { value: s, text: t("status." + s), selected: s === p.status })));
    statusSel.addEventListener("change", () => nav({ status: statusSel.value, sort: fitSort(statusSel.value, p.sort), page: 1 }));
    const search = el("input", { id: "search", type: "search", value: p.search, placeholder: t("search.placeholder"), maxlength: 200 });
    let deb = null;
    search.addEventListener("input", () => { clearTimeout(deb); deb = setTimeout(() => nav({ search: search.value.trim(), match: "", page: 1 }), 400); });
    search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { clearTimeout(deb); nav({ search: search.value.trim(), match: "", page: 1 }); } });
    const size = el("select", { id: "page-size" }, ["25", "50", "100"].map((s) => el("option", { value: s, text: s, selected: s === p.pageSize })));
    size.addEventListener("change", () => nav({ pageSize: size.value, page: 1 }));
    const exportQ = qs({ status: p.status === "all" ? "" : p.status, search: p.search, sort: p.sort, match: p.match });
    const filters = el("form.filters", { role: "search", onsubmit: (ev) => ev.preventDefault() },
      el("label", null, el("span", { text: t("filter.status") }), statusSel),
      el("label.grow", null, el("span", { text: t("filter.search") }), search),
      el("label", null, el("span", { text: t("filter.pagesize") }), size),
      el("div.export", null,
        el("a.button.secondary", { id: "export-csv", href: API + "/export" + exportQ + (exportQ ? "&" : "?") + "format=csv", download: "", text: t("export.csv") }),
        el("a.button.secondary", { id: "export-json", href: API + "/export" + exportQ + (exportQ ? "&" : "?") + "format=json", download: "", text: t("export.json") })));
    const body = el("div", { id: "sessions-body" }, loading());
    const selected = new Map();
    setMain(el("h1", { text: t("nav.sessions") }), filters, body);
    const load = async () => {
      let res;
      try {
        res = await pageGet("/sessions" + qs({ status: p.status === "all" ? "" : p.status, search: p.search, sort: p.sort, page: p.page, pageSize: p.pageSize, match: p.match }));
      } catch (e) {
        if (!quiet(e)) { clear(body); body.appendChild(errorBox(e, load)); }
        return;
      }
      clear(body);
      const plus = (n, capped) => fmt.num(n) + (capped ? "+" : "");
      const summary = el("p.muted", { id: "sessions-summary", text: t("sessions.summary", { count: plus(res.meta.count, res.meta.countCapped), active: plus(res.meta.active, res.meta.activeCapped) }) });
      if (!res.data.length) {
        body.appendChild(el("div.empty", { id: "sessions-empty" }, el("p", { text: p.search || p.status !== "all" ? t("sessions.nomatch") : t("sessions.none") }),
          p.search || p.status !== "all" ? el("button.secondary", { type: "button", onclick: () => nav({ search: "", status: "all", page: 1 }), text: t("filter.clear") }) : null));
        return;
      }
      body.appendChild(summary);
      if (res.meta.exactMatch) {
        body.appendChild(el("p.note", { id: "exact-note" }, t("search.exact." + res.meta.exactMatch, { term: p.search }), " ",
          el("button.secondary", { type: "button", id: "search-everywhere", onclick: () => nav({ match: "contains", page: 1 }), text: t("search.everywhere") })));
      }
      append(body, actionableTable(res.data, { keep: selected, sort: p.sort, status: p.status, onSort: (s) => nav({ sort: s, page: 1 }) }, load));
      body.appendChild(pager(res.meta, (n) => nav({ page: n })));
    };
    load();
    state.refresh = load;
  }

  // ---------- session detail ----------
  async function renderSession(r) {
    const id = r.arg;
    setMain(el("h1", { text: t("session.title") }), loading());
    let res;
    try { res = await pageGet("/sessions/" + encodeURIComponent(id)); } catch (e) {
      if (e.status === 404 && !e.stale) setMain(el("div.empty", null, el("h1", { text: t("session.title") }), el("p", { text: t("session.notfound") }), el("a", { href: "#/sessions", text: t("back.sessions") })));
      else if (!quiet(e)) setMain(el("h1", { text: t("session.title") }), errorBox(e, () => renderSession(r)));
      return;
    }
    const s = res.data;
    const g = s.geoLocation;
    const dl = (pairs) => el("dl.props", null, pairs.filter((x) => x).map(([k, v]) => [el("dt", { text: k }), el("dd", null, v === "" || v === null || v === undefined ? "—" : v)]));
    let loc = locationLine(g) || t("unknown");
    if (g && (g.latitude || g.longitude)) loc += ` (${g.latitude.toFixed(2)}, ${g.longitude.toFixed(2)})`;
    if (g && g.timezone) loc += " · " + g.timezone;
    const timeline = el("ol.timeline", { id: "timeline" },
      el("li", null, el("strong", { text: t("tl.login") }), " ", fmt.date(s.loginTime), s.route ? el("span.muted", { text: " · " + s.route }) : null),
      el("li", null, el("strong", { text: t("tl.lastActive") }), " ", fmt.date(s.lastActive), el("span.muted", { text: " · " + fmt.ago(s.lastActive) })),
      s.logoutTime ? el("li", null, el("strong", { text: t("tl.ended") }), " ", fmt.date(s.logoutTime), " · ",
        t("reason." + (s.terminationReason || "logout")), s.terminatedManually && s.terminationReason !== "manual" ? el("span.muted", { text: " (" + t("tl.byadmin") + ")" }) : null,
        res.endedBy ? el("span.muted", { id: "ended-by", text: " · " + t("tl.by", { name: res.endedBy }) }) : null) : null,
      s.isActive && s.expiresAt ? el("li", null, el("strong", { text: t("tl.expires") }), " ", fmt.date(s.expiresAt)) : null);
    const actions = el("div.actions");
    if (s.isActive) {
      actions.appendChild(el("button.danger", { type: "button", id: "terminate", text: t("session.terminate"), onclick: async () => {
        if (!(await confirmAction(t("session.terminate.confirm", { user: who(s) }), t("session.terminate")))) return;
        try {
          await api("POST", "/sessions/" + encodeURIComponent(sid(s)) + "/terminate");
          announce(t("session.terminated"));
          renderSession(r);
        } catch (e) { if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
      } }));
    }
    actions.appendChild(el("a.button.secondary", { href: "#/user/" + encodeURIComponent(s.userId), text: t("session.userlink") }));
    const rlist = res.reasons || (s.scoreReasons || []).map((x) => ({ text: x }));
    const reasons = rlist.length ? el("ul.reasons", { id: "score-reasons" }, rlist.map((x) => el("li", { text: reasonText(x) }))) : el("p.muted", { text: t("score.noreasons") });
    setMain(
      el("p.crumbs", null, el("a", { href: "#/sessions", text: t("back.sessions") })),
      el("h1", null, t("session.title"), " ", el("code", { text: sid(s) })),
      el("p", null, statusBadge(s), res.userBlocked ? el("span.badge.b-terminated", { text: t("user.blocked") }) : null),
      el("div.grid2", null,
        el("section.card", null, el("h2", { text: t("session.device") }), dl([
          [t("col.user"), el("span", null, el("a", { href: "#/user/" + encodeURIComponent(s.userId), text: s.userId, id: "detail-user" }),
            userName(s) ? el("span.muted", { id: "detail-person", text: " · " + userName(s) }) : null)],
          [t("session.devicetype"), s.deviceType ? deviceLabel(s.deviceType) : ""], [t("session.browser"), s.browserName], [t("session.os"), s.osName],
          [t("col.ip"), s.ipAddress], [t("col.location"), loc],
          [t("session.ua"), el("code.ua-full", { id: "detail-ua", text: s.userAgent || "—" })]])),
        el("section.card", null, el("h2", { text: t("session.security") }),
          el("p.scoreline", null, scoreBadge(s.securityScore), " ", el("meter", { min: 0, max: 100, low: 40, high: 70, optimum: 100, value: s.securityScore, "aria-label": t("col.score") })),
          reasons)),
      el("section.card", null, el("h2", { text: t("session.timeline") }), timeline),
      actions);
    state.refresh = (changes) => { if ((changes || []).some((c) => c.sessionId === sid(s))) renderSession(r); };
  }

  // ---------- user view ----------
  async function renderUser(r) {
    const uid = r.arg;
    const page = r.params.get("page") || "1";
    setMain(el("h1", { text: t("user.title") }), loading());
    let res;
    try { res = await pageGet("/users/" + encodeURIComponent(uid) + qs({ page, pageSize: 25 })); } catch (e) {
      if (!quiet(e)) setMain(el("h1", { text: t("user.title") }), errorBox(e, () => renderUser(r)));
      return;
    }
    const list = res.sessions.data || [];
    const meta = res.sessions.meta || {};
    const blockBtn = el("button." + (res.blocked ? "secondary" : "danger"), { type: "button", id: "block-toggle",
      text: res.blocked ? t("user.unblock") : t("user.block"), onclick: async () => {
        const next = !res.blocked;
        if (!(await confirmAction(t(next ? "user.block.confirm" : "user.unblock.confirm", { user: who(list[0] || { userId: uid }) }), next ? t("user.block") : t("user.unblock")))) return;
        try { await api("POST", "/users/" + encodeURIComponent(uid) + "/block", { blocked: next }); announce(next ? t("user.blocked") : t("user.unblocked")); renderUser(r); } catch (e) { if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
      } });
    const killBtn = el("button.danger", { type: "button", id: "terminate-all", text: t("user.terminateall"), disabled: !meta.active && !list.some((s) => s.isActive),
      onclick: async () => {
        if (!(await confirmAction(t("user.terminateall.confirm", { user: who(list[0] || { userId: uid }) }), t("user.terminateall")))) return;
        try { const x = await api("POST", "/users/" + encodeURIComponent(uid) + "/terminate-all"); announce(t("user.terminatedn", { n: fmt.num(x.terminated || 0) })); renderUser(r); } catch (e) { if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
      } });
    const seen = (title, items, label) => el("section.card", null, el("h2", { text: title }),
      items.length ? el("ul.chips", null, items.map((i) => el("li", null, el("span", { text: label(i.name) }), " ", el("span.count", { text: fmt.num(i.count) })))) : el("p.muted", { text: t("none") }));
    setMain(
      el("p.crumbs", null, el("a", { href: "#/sessions", text: t("back.sessions") })),
      el("h1", null, t("user.title"), " ", el("code", { id: "user-id", text: uid })),
      list[0] && userName(list[0]) ? el("p.person", { id: "user-name", text: userName(list[0]) }) : null,
      el("p", { id: "user-state" }, res.blocked ? el("span.badge.b-terminated", { text: t("user.blocked") }) : el("span.badge.b-active", { text: t("user.notblocked") }),
        " ", el("span.muted", { text: t("sessions.summary", { count: fmt.num(meta.count || 0), active: fmt.num(meta.active || 0) }) })),
      el("div.actions", null, killBtn, blockBtn),
      el("div.grid3", null, seen(t("user.countries"), res.countries, (n) => n === "?" ? t("unknown") : countryLabel(n, "")),
        seen(t("user.devices"), res.devices, deviceKeyLabel), seen(t("user.browsers"), res.browsers, (n) => n === "?" ? t("unknown") : n)),
      list.length ? [actionableTable(list, { id: "user-sessions", caption: t("user.sessions") }, () => renderUser(r)), pager(meta, (n) => setHashParams("user", uid, { page: n }))]
        : el("div.empty", null, el("p", { text: t("user.nosessions") })));
    state.refresh = (changes) => { if ((changes || []).some((c) => c.userId === uid)) renderUser(r); };
  }

  // ---------- settings ----------
  const SETTINGS = [
    ["timing", [
      ["inactivityTimeout", "int", 1, 10080], ["cleanupInterval", "int", 1, 1440], ["lastSeenRateLimit", "int", 1, 3600],
      ["retentionDays", "int", -1, 3650], ["maxSessionAgeDays", "int", 1, 3650]]],
    ["security", [
      ["enableGeolocation", "bool"], ["enableSecurityScoring", "bool"], ["blockSuspiciousSessions", "bool"],
      ["minSecurityScore", "int", 0, 100], ["maxFailedLogins", "int", 0, 1000], ["lockoutMinutes", "int", 0, 10080]]],
    ["geofencing", [
      ["enableGeofencing", "bool"], ["allowedCountries", "countries"], ["blockedCountries", "countries"],
      ["blockTor", "bool"], ["blockVpn", "bool"], ["blockDatacenter", "bool"]]],
    ["email", [
      ["enableEmailAlerts", "bool"], ["alertOnSuspiciousLogin", "bool"], ["alertOnNewLocation", "bool"], ["alertOnVpnProxy", "bool"],
      ["alertRecipients", "list"], ["smtp.host", "text"], ["smtp.port", "int", 0, 65535], ["smtp.username", "text"],
      ["smtp.password", "secret"], ["smtp.from", "text"], ["smtp.tls", "select", ["starttls", "tls", "none"]]]],
    ["webhooks", [
      ["enableWebhooks", "bool"], ["discordWebhookUrl", "secret"], ["slackWebhookUrl", "secret"], ["webhooks", "hooks"]]],
  ];
  const getPath = (o, p) => p.split(".").reduce((a, k) => (a == null ? undefined : a[k]), o);
  function setPath(o, p, v) {
    const ks = p.split(".");
    let cur = o;
    for (let i = 0; i < ks.length - 1; i++) { cur[ks[i]] = cur[ks[i]] || {}; cur = cur[ks[i]]; }
    cur[ks[ks.length - 1]] = v;
  }
  const fieldId = (k) => "set-" + k.replace(/\./g, "-");

  // readField returns [value, problem] for one settings field.
  function readField(key, f) {
    if (f.type === "bool") return [f.input.checked, ""];
    if (f.type === "hooks") return f.get();
    const raw = f.input.value.trim();
    if (f.type === "int") {
      if (!/^-?\d+$/.test(raw)) return [null, t("v.int")];
      const v = parseInt(raw, 10);
      if (v < f.min || v > f.max || (key === "retentionDays" && v === 0)) return [null, t("v.range", { min: f.min, max: f.max })];
      return [v, ""];
    }
    if (f.type === "countries" || f.type === "list") {
      let v = raw ? raw.split(/[\s,;]+/).filter(Boolean) : [];
      if (f.type === "countries") {
        v = v.map((c) => c.toUpperCase());
        const bad = v.find((c) => !/^[A-Z]{2}$/.test(c));
        if (bad) return [null, t("v.country", { v: bad })];
      } else {
        const bad = v.find((c) => !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(c));
        if (bad) return [null, t("v.email", { v: bad })];
      }
      return [v, ""];
    }
    if (f.type === "secret" && raw && raw !== "********" && key.endsWith("Url") && !/^https?:\/\/\S+$/i.test(raw)) return [null, t("v.url")];
    return [raw, ""];
  }
  // hooksEditor edits the signed webhooks as rows (name, URL, secret, events).
  function hooksEditor(id, list) {
    const rows = el("div.hooks", { id });
    const addRow = (h) => {
      const n = rows.children.length;
      const f = (k, type, val, ph) => {
        const inp = el("input", { type, autocomplete: "off", spellcheck: "false", "data-k": k, placeholder: ph || null, id: id + "-" + n + "-" + k });
        inp.value = val || "";
        return el("label", null, el("span", { text: t("set.hook." + k) }), inp);
      };
      const row = el("div.hook", null, f("name", "text", h.name), f("url", "password", h.url, "https://…"), f("secret", "password", h.secret),
        f("events", "text", (h.events || []).join(", "), t("set.hook.all")),
        el("button.secondary.small", { type: "button", text: t("set.hook.remove"), onclick: () => row.remove() }));
      rows.appendChild(row);
    };
    for (const h of list) addRow(h);
    const node = el("div", null, rows, el("button.secondary.small", { type: "button", id: id + "-add", text: t("set.hook.add"), onclick: () => addRow({}) }));
    const get = () => {
      const out = [], names = new Set();
      for (const row of rows.children) {
        const val = (k) => row.querySelector(`[data-k="${k}"]`).value.trim();
        const h = { name: val("name"), url: val("url"), secret: val("secret"), events: val("events") ? val("events").split(/[\s,;]+/).filter(Boolean) : [] };
        if (!h.name || names.has(h.name)) return [null, t("v.hook.name")];
        if (h.url !== "********" && !/^https?:\/\/\S+$/i.test(h.url)) return [null, t("v.url")];
        names.add(h.name);
        out.push(h);
      }
      return [out, ""];
    };
    return { node, get };
  }
  async function renderSettings() {
    setMain(el("h1", { text: t("nav.settings") }), loading());
    let cur;
    try { cur = (await pageGet("/settings")).settings; } catch (e) {
      if (!quiet(e)) setMain(el("h1", { text: t("nav.settings") }), errorBox(e, renderSettings));
      return;
    }
    const inputs = {};
    const errs = {};
    const groups = SETTINGS.map(([group, fields]) => el("fieldset.card", { id: "grp-" + group }, el("legend", { text: t("set.g." + group) }),
      fields.map(([key, type, a, b]) => {
        const id = fieldId(key);
        const v = getPath(cur, key);
        const help = tOpt("set.h." + key);
        const err = el("p.field-error", { id: id + "-err", role: "alert" });
        errs[key] = err;
        let input;
        if (type === "bool") {
          input = el("input", { id, type: "checkbox", checked: !!v });
          inputs[key] = { type, input };
          return el("div.field.check", null, input, el("label", { for: id, text: t("set." + key) }), help ? el("p.help", { text: help }) : null, err);
        }
        if (type === "select") {
          input = el("select", { id }, a.map((o) => el("option", { value: o, text: o, selected: o === v })));
        } else if (type === "hooks") {
          const ed = hooksEditor(id, v || []);
          inputs[key] = { type, input: ed.node, get: ed.get };
          return el("div.field", null, el("span.label", { id: id + "-label", text: t("set." + key) }),
            el("p.help", { id: id + "-help", text: help }), ed.node, err);
        } else if (type === "int") {
          input = el("input", { id, type: "number", inputmode: "numeric", min: a, max: b, step: 1, value: v ?? "" });
        } else {
          input = el("input", { id, type: type === "secret" ? "password" : "text", autocomplete: "off", spellcheck: "false" });
          input.value = Array.isArray(v) ? v.join(", ") : v ?? "";
        }
        input.setAttribute("aria-describedby", id + "-help " + id + "-err");
        inputs[key] = { type, input, min: a, max: b };
        // Inline validation: a field is checked when it loses focus.
        input.addEventListener("change", () => {
          const [, problem] = readField(key, inputs[key]);
          err.textContent = problem || "";
          input.setAttribute("aria-invalid", problem ? "true" : "false");
        });
        return el("div.field", null, el("label", { for: id, text: t("set." + key) }), input,
          el("p.help", { id: id + "-help", text: help }), err);
      })));
    const msg = el("div.form-msg", { id: "settings-msg", role: "status", "aria-live": "polite" });
    const form = el("form.settings", { novalidate: true, id: "settings-form" }, groups, msg,
      el("div.actions.sticky", null, el("button", { type: "submit", id: "settings-save", text: t("set.save") })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(msg);
      msg.className = "form-msg";
      for (const e of Object.values(errs)) e.textContent = "";
      for (const f of Object.values(inputs)) f.input.removeAttribute("aria-invalid");
      const doc = {};
      const problems = [];
      for (const [key, f] of Object.entries(inputs)) {
        const [v, problem] = readField(key, f);
        if (problem) { problems.push([key, problem]); continue; }
        setPath(doc, key, v);
      }
      if (problems.length) {
        for (const [k, m] of problems) { errs[k].textContent = m; inputs[k].input.setAttribute("aria-invalid", "true"); }
        msg.className = "form-msg error";
        msg.textContent = t("set.fix", { n: problems.length });
        inputs[problems[0][0]].input.focus();
        return;
      }
      try {
        const res = await api("PUT", "/settings", doc);
        cur = res.settings;
        msg.className = "form-msg ok";
        msg.textContent = t("set.saved");
      } catch (e) {
        if (e.status === 401) return;
        msg.className = "form-msg error";
        const list = (e.details && e.details.errors) || [];
        msg.textContent = list.length ? t("set.rejected") : t("err.generic", { msg: e.message });
        if (list.length) {
          const ul = el("ul", null, list.map((p) => el("li", { text: p })));
          msg.appendChild(ul);
          for (const p of list) {
            const k = p.split(":")[0].replace(/\[\d+\].*$/, "");
            for (const key of Object.keys(errs)) if (k.split("/").includes(key) || k === key) errs[key].textContent = p;
          }
        }
      }
    });
    const outbox = el("section.card", { id: "outbox", "aria-labelledby": "outbox-title" }, el("h2", { id: "outbox-title", text: t("outbox.title") }), loading());
    const jump = el("nav.set-groups", { "aria-label": t("set.groups") }, SETTINGS.map(([group]) => el("button.secondary.small", { type: "button",
      text: t("set.g." + group), onclick: () => { const f = document.getElementById("grp-" + group); f.scrollIntoView({ block: "start" }); const x = f.querySelector("input, select"); if (x) x.focus({ preventScroll: true }); } })),
      el("button.secondary.small", { type: "button", text: t("outbox.title"), onclick: () => document.getElementById("outbox").scrollIntoView({ block: "start" }) }));
    setMain(el("h1", { text: t("nav.settings") }), el("p.muted", { text: t("set.intro") }), jump, form, outbox);
    loadOutbox(outbox);
  }
  async function loadOutbox(box) {
    let res;
    try { res = await pageGet("/alerts"); } catch (e) {
      if (!quiet(e)) { clear(box); box.appendChild(el("h2", { text: t("outbox.title") })); box.appendChild(errorBox(e, () => loadOutbox(box))); }
      return;
    }
    clear(box);
    box.appendChild(el("h2", { id: "outbox-title", text: t("outbox.title") }));
    if (!res.data.length) { box.appendChild(el("p.muted", { id: "outbox-empty", text: t("outbox.empty") })); return; }
    box.appendChild(el("div.table-wrap", null, el("table", { id: "outbox-table" },
      el("thead", null, el("tr", null, [t("outbox.event"), t("outbox.channel"), t("outbox.attempts"), t("outbox.error"), t("outbox.created"), ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", null, res.data.map((a) => el("tr", null,
        el("td", { text: a.event }), el("td", { text: a.channel }), el("td", { text: fmt.num(a.attempts) }),
        el("td.err", { text: a.lastError || "—" }), el("td", { text: fmt.date(a.createdAt) }),
        el("td", null, el("button.secondary", { type: "button", "data-alert": a.id, text: t("outbox.retry"), onclick: async (ev) => {
          ev.target.disabled = true;
          try { await api("POST", "/alerts/" + a.id + "/retry"); announce(t("outbox.queued")); loadOutbox(box); } catch (e) { ev.target.disabled = false; if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
        } }))))))));
  }

  // ---------- audit trail ----------
  const AUDIT_EVENTS = ["session.terminated", "session.deleted", "user.terminated_all", "user.blocked", "user.unblocked", "settings.changed",
    "sessions.purged", "lockout.locked", "lockout.unlocked", "token.created", "token.revoked", "alert.retried"];
  function auditEventLabel(ev) { return AUDIT_EVENTS.includes(ev) ? t("audit.ev." + ev) : ev; }
  function auditSubject(e) {
    if (!e.subject) return "—";
    if (e.subjectType === "session") return el("a", { href: "#/session/" + encodeURIComponent(e.subject), text: e.subject });
    if (e.subjectType === "user") return el("a", { href: "#/user/" + encodeURIComponent(e.subject), text: e.subject });
    return (e.subjectType === "ip" ? t("lock.ip") : e.subjectType === "identifier" ? t("lock.identifier") : e.subjectType) + " " + e.subject;
  }
  function auditDetail(d) {
    if (!d || typeof d !== "object") return "";
    return Object.entries(d).filter(([k]) => k !== "ip").map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  }
  async function renderAudit(r) {
    const before = r.params.get("before") || "";
    const exportQ = (f) => API + "/audit/export?format=" + f;
    setMain(el("h1", { text: t("nav.audit") }), loading());
    let res;
    try { res = await pageGet("/audit" + qs({ before, limit: 50 })); } catch (e) {
      if (!quiet(e)) setMain(el("h1", { text: t("nav.audit") }), errorBox(e, () => renderAudit(r)));
      return;
    }
    const list = res.data || [];
    const head = el("div.filters", null, el("p.muted.grow", { text: t("audit.intro") }),
      el("div.export", null, el("a.button.secondary", { id: "audit-csv", href: exportQ("csv"), download: "", text: t("export.csv") }),
        el("a.button.secondary", { id: "audit-json", href: exportQ("json"), download: "", text: t("export.json") })));
    const table = list.length ? el("div.table-wrap", null, el("table.sessions", { id: "audit-table" },
      el("caption.sr-only", { text: t("nav.audit") }),
      el("thead", null, el("tr", null, [t("audit.when"), t("audit.who"), t("audit.what"), t("audit.subject"), t("audit.from"), t("audit.detail")].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", null, list.map((e) => el("tr", { "data-audit": e.id },
        el("td", { "data-label": t("audit.when"), text: fmt.date(e.at), title: e.at }),
        el("td", { "data-label": t("audit.who"), text: e.actor === "system" ? t("audit.system") : e.actor || "—" }),
        el("td", { "data-label": t("audit.what"), text: auditEventLabel(e.event) }),
        el("td", { "data-label": t("audit.subject") }, auditSubject(e)),
        el("td", { "data-label": t("audit.from"), text: (e.detail && e.detail.ip) || "—" }),
        el("td.what", { "data-label": t("audit.detail"), text: auditDetail(e.detail) || "—" })))))) 
      : el("div.empty", { id: "audit-empty" }, el("p", { text: t("audit.none") }));
    const next = res.meta && res.meta.next;
    const pagerNav = el("nav.pager", { "aria-label": t("pagination") },
      el("button.secondary", { type: "button", disabled: !before, onclick: () => setHashParams("audit", "", {}), text: t("audit.newest") }),
      el("button.secondary", { type: "button", id: "audit-older", disabled: !next, onclick: () => setHashParams("audit", "", { before: next }), text: t("audit.older") }));
    setMain(el("h1", { text: t("nav.audit") }), head, table, pagerNav);
  }

  // ---------- lockouts ----------
  async function renderLockouts() {
    setMain(el("h1", { text: t("nav.lockouts") }), loading());
    let res;
    try { res = await pageGet("/lockouts"); } catch (e) {
      if (e.status === 404 && !e.stale) { setMain(el("h1", { text: t("nav.lockouts") }), el("p.muted", { text: t("lock.unavailable") })); return; }
      if (!quiet(e)) setMain(el("h1", { text: t("nav.lockouts") }), errorBox(e, renderLockouts));
      return;
    }
    const list = res.data || [];
    const unlock = async (l) => {
      const name = (l.type === "ip" ? t("lock.ip") : t("lock.identifier")) + " " + l.value;
      if (!(await confirmAction(t("lock.unlock.confirm", { what: name }), t("lock.unlock")))) return;
      try { await api("POST", "/lockouts/unlock", { type: l.type, value: l.value }); announce(t("lock.unlocked", { what: name })); banner(t("lock.unlocked", { what: name }), "ok"); renderLockouts(); }
      catch (e) { if (e.status === 404) renderLockouts(); else if (!quiet(e)) banner(t("err.generic", { msg: e.message })); }
    };
    setMain(el("h1", { text: t("nav.lockouts") }), el("p.muted", { text: t("lock.intro") }),
      list.length ? el("div.table-wrap", null, el("table.sessions", { id: "lockouts-table" },
        el("caption.sr-only", { text: t("nav.lockouts") }),
        el("thead", null, el("tr", null, [t("lock.what"), t("lock.failures"), t("lock.since"), t("lock.until"), ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", null, list.map((l) => el("tr", { "data-lock": l.type + ":" + l.value },
          el("td", { "data-label": t("lock.what") }, el("span.badge.b-loggedout", { text: l.type === "ip" ? t("lock.ip") : t("lock.identifier") }), " ", el("code", { text: l.value })),
          el("td", { "data-label": t("lock.failures"), text: fmt.num(l.failures) }),
          el("td", { "data-label": t("lock.since"), text: fmt.date(l.lockedAt) }),
          el("td", { "data-label": t("lock.until"), text: fmt.date(l.lockedUntil), title: fmt.ago(l.lockedUntil) }),
          el("td.row-actions", { "data-label": t("col.actions") }, el("button.secondary.small.unlock", { type: "button", text: t("lock.unlock"),
            "aria-label": t("lock.unlock") + ": " + l.value, onclick: () => unlock(l) }))))))) 
        : el("div.empty", { id: "lockouts-empty" }, el("p", { text: t("lock.none") })));
  }

  // ---------- start ----------
  function init() {
    state.lang = pickLang();
    applyStatic();
    document.getElementById("lang").addEventListener("change", (ev) => {
      state.lang = LANGS.includes(ev.target.value) ? ev.target.value : "en";
      safeStorage("set", "mss.lang", state.lang);
      applyStatic();
      if (state.me) route(); else renderLogin();
    });
    document.getElementById("signout").addEventListener("click", async () => {
      try { await api("POST", "/logout"); } catch (e) { /* signed out anyway */ }
      signedOut();
      announce(t("signedout"));
    });
    window.addEventListener("hashchange", route);
    checkSession();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
