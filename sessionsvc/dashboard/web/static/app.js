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
    let s = dict[key] || en[key] || key;
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
      const me = await api("GET", "/me");
      signedIn(me);
    } catch (e) {
      if (e.status !== 401) setMain(errorBox(e, checkSession));
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
    for (const a of document.querySelectorAll("#nav a")) {
      const cur = a.getAttribute("data-route") === r.page || (r.page === "session" && a.getAttribute("data-route") === "sessions") ||
        (r.page === "user" && a.getAttribute("data-route") === "sessions");
      if (cur) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const pages = { overview: renderOverview, sessions: renderSessions, session: renderSession, user: renderUser, settings: renderSettings };
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
    try { o = (await api("GET", "/overview")).data; } catch (e) { if (e.status !== 401) setMain(el("h1", { text: t("nav.overview") }), errorBox(e, renderOverview)); return; }
    const card = (label, value, hint, id) => el("div.stat", { id },
      el("div.stat-value", { text: value === null || value === undefined ? "—" : fmt.num(value) }),
      el("div.stat-label", { text: label }), hint ? el("div.stat-hint", { text: hint }) : null);
    const cards = el("section.stats", { "aria-label": t("ov.figures") },
      card(t("ov.online"), o.onlineNow, t("ov.online.hint"), "stat-online"),
      card(t("ov.active15"), o.active15, null, "stat-active15"),
      card(t("ov.active30"), o.active30, null, "stat-active30"),
      card(t("ov.activeSessions"), o.activeSessions, t("ov.activeSessions.hint", { n: o.inactivityMinutes }), "stat-active"),
      card(t("ov.total"), o.totalSessions, null, "stat-total"),
      card(t("ov.blocked"), o.blockedUsers, null, "stat-blocked"));
    const chartBox = el("section.card", { "aria-labelledby": "chart-title" }, el("h2", { id: "chart-title", text: t("ov.chart") }));
    if (o.series) chartBox.appendChild(chart(o.series));
    else chartBox.appendChild(el("p.muted", { text: t("ov.partial") }));
    const topList = (title, items) => el("section.card", null, el("h2", { text: title }),
      items && items.length ? el("ol.bars", null, items.map((it) => {
        const maxv = Math.max(...items.map((x) => x.count), 1);
        return el("li", null, el("span.bar-label", { text: it.name || t("unknown") }),
          el("meter", { min: 0, max: maxv, value: it.count, "aria-hidden": "true" }),
          el("span.bar-value", { text: fmt.num(it.count) }));
      })) : el("p.muted", { text: o.partial ? t("ov.partial") : t("ov.notop") }));
    const since = o.topSince ? t("ov.since", { date: fmt.date(o.topSince) }) : "";
    setMain(el("h1", { text: t("nav.overview") }), cards, chartBox,
      el("div.grid3", null, topList(t("ov.countries"), o.topCountries), topList(t("ov.devices"), o.topDevices), topList(t("ov.browsers"), o.topBrowsers)),
      el("p.muted", { text: [since, t("ov.updated", { time: fmt.date(o.generatedAt) })].filter(Boolean).join(" · ") }));
    state.refresh = () => { if (state.route && state.route.page === "overview") renderOverviewQuiet(); };
  }
  let ovTimer = null;
  function renderOverviewQuiet() { clearTimeout(ovTimer); ovTimer = setTimeout(renderOverview, 1000); }

  // chart draws logins (bars), refusals and ended sessions (lines) per hour.
  function chart(s) {
    const W = 720, H = 240, L = 44, R = 12, T = 12, B = 34;
    const n = s.logins.length;
    const top = Math.max(1, ...s.logins, ...s.refusals, ...s.ended);
    const maxv = Math.ceil(top / 4) * 4; // four whole-number steps
    const step = (W - L - R) / n;
    const y = (v) => T + (H - T - B) * (1 - v / maxv);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
      "aria-label": t("ov.chart.aria", { logins: fmt.num(sum(s.logins)), refusals: fmt.num(sum(s.refusals)), ended: fmt.num(sum(s.ended)) }) });
    for (let i = 0; i <= 4; i++) {
      const v = (maxv * i) / 4, yy = y(v);
      g.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
      g.appendChild(svg("text", { x: L - 6, y: yy + 4, "text-anchor": "end", class: "axis" }, fmt.num(Math.round(v))));
    }
    const start = new Date(s.start).getTime();
    s.logins.forEach((v, i) => {
      const bar = svg("rect", { x: L + i * step + 2, y: y(v), width: Math.max(1, step - 4), height: H - B - y(v), class: "bar-logins" });
      bar.appendChild(svg("title", {}, `${fmt.hour(start + i * 3600e3)}: ${t("ov.logins")} ${fmt.num(v)}, ${t("ov.refusals")} ${fmt.num(s.refusals[i])}, ${t("ov.ended")} ${fmt.num(s.ended[i])}`));
      g.appendChild(bar);
      if (i % 4 === 0) g.appendChild(svg("text", { x: L + i * step + step / 2, y: H - B + 16, "text-anchor": "middle", class: "axis" }, fmt.hour(start + i * 3600e3)));
    });
    const line = (vals, cls) => g.appendChild(svg("polyline", { class: cls, fill: "none",
      points: vals.map((v, i) => `${L + i * step + step / 2},${y(v)}`).join(" ") }));
    line(s.ended, "line-ended");
    line(s.refusals, "line-refusals");
    const legend = el("div.legend", null,
      el("span.key.k-logins", { text: t("ov.logins") }), el("span.key.k-refusals", { text: t("ov.refusals") }),
      el("span.key.k-ended", { text: t("ov.ended") }));
    return el("div.chart-wrap", null, g, legend);
  }
  const sum = (a) => a.reduce((x, y) => x + y, 0);

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
    return [g.city, g.region, g.country || g.countryCode || g.country_code].filter(Boolean).join(", ");
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
    const head = el("tr", null, cols.map(([f, label, sortable]) => {
      if (!sortable || !opts.onSort) return el("th", { scope: "col", text: label });
      const cur = f === field;
      return el("th", { scope: "col", "aria-sort": cur ? (desc ? "descending" : "ascending") : "none" },
        el("button.sort", { type: "button", onclick: () => opts.onSort(cur && desc ? f : "-" + f),
          "aria-label": t("sortby", { col: label }) }, label, el("span.arrow", { "aria-hidden": "true", text: cur ? (desc ? " ▼" : " ▲") : "" })));
    }));
    const rows = list.map((s) => el("tr", { "data-session": s.documentId },
      el("td", { "data-label": t("col.user") }, el("a", { href: "#/user/" + encodeURIComponent(s.userId), text: s.userId }),
        userName(s) ? el("div.sub", { text: userName(s) }) : null,
        el("div.sub", null, el("a.session-link", { href: "#/session/" + encodeURIComponent(s.documentId), text: t("details") }))),
      el("td", { "data-label": t("col.ip"), text: s.ipAddress || "—" }),
      el("td", { "data-label": t("col.location"), text: locationLine(s.geoLocation) || "—" }),
      el("td", { "data-label": t("col.device") }, [s.deviceType, s.browserName, s.osName].filter(Boolean).join(" · ") || "—",
        el("div.sub.ua", { text: s.userAgent || "", title: s.userAgent || "" })),
      el("td", { "data-label": t("col.login"), text: fmt.date(s.loginTime) }),
      opts.status === "loggedout" || opts.status === "terminated"
        ? el("td", { "data-label": t("col.ended"), text: fmt.date(s.logoutTime) })
        : el("td", { "data-label": t("col.lastActive"), text: fmt.ago(s.lastActive), title: fmt.date(s.lastActive) }),
      el("td", { "data-label": t("col.status") }, statusBadge(s)),
      el("td", { "data-label": t("col.score") }, scoreBadge(s.securityScore))));
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
    setMain(el("h1", { text: t("nav.sessions") }), filters, body);
    const load = async () => {
      let res;
      try {
        res = await api("GET", "/sessions" + qs({ status: p.status === "all" ? "" : p.status, search: p.search, sort: p.sort, page: p.page, pageSize: p.pageSize, match: p.match }));
      } catch (e) {
        if (e.status !== 401) { clear(body); body.appendChild(errorBox(e, load)); }
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
      body.appendChild(sessionsTable(res.data, { sort: p.sort, status: p.status, onSort: (s) => nav({ sort: s, page: 1 }) }));
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
    try { res = await api("GET", "/sessions/" + encodeURIComponent(id)); } catch (e) {
      if (e.status === 404) setMain(el("div.empty", null, el("h1", { text: t("session.title") }), el("p", { text: t("session.notfound") }), el("a", { href: "#/sessions", text: t("back.sessions") })));
      else if (e.status !== 401) setMain(el("h1", { text: t("session.title") }), errorBox(e, () => renderSession(r)));
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
        t("reason." + (s.terminationReason || "logout")), s.terminatedManually ? el("span.muted", { text: " (" + t("tl.byadmin") + ")" }) : null) : null,
      s.isActive && s.expiresAt ? el("li", null, el("strong", { text: t("tl.expires") }), " ", fmt.date(s.expiresAt)) : null);
    const actions = el("div.actions");
    if (s.isActive) {
      actions.appendChild(el("button.danger", { type: "button", id: "terminate", text: t("session.terminate"), onclick: async () => {
        if (!(await confirmAction(t("session.terminate.confirm", { user: s.userId }), t("session.terminate")))) return;
        try {
          await api("POST", "/sessions/" + encodeURIComponent(s.documentId) + "/terminate");
          announce(t("session.terminated"));
          renderSession(r);
        } catch (e) { if (e.status !== 401) banner(t("err.generic", { msg: e.message })); }
      } }));
    }
    actions.appendChild(el("a.button.secondary", { href: "#/user/" + encodeURIComponent(s.userId), text: t("session.userlink") }));
    const reasons = s.scoreReasons && s.scoreReasons.length ? el("ul.reasons", null, s.scoreReasons.map((x) => el("li", { text: x }))) : el("p.muted", { text: t("score.noreasons") });
    setMain(
      el("p.crumbs", null, el("a", { href: "#/sessions", text: t("back.sessions") })),
      el("h1", null, t("session.title"), " ", el("code", { text: s.documentId })),
      el("p", null, statusBadge(s), res.userBlocked ? el("span.badge.b-terminated", { text: t("user.blocked") }) : null),
      el("div.grid2", null,
        el("section.card", null, el("h2", { text: t("session.device") }), dl([
          [t("col.user"), el("span", null, el("a", { href: "#/user/" + encodeURIComponent(s.userId), text: s.userId, id: "detail-user" }),
            userName(s) ? el("span.muted", { text: " · " + userName(s) }) : null)],
          [t("session.devicetype"), s.deviceType], [t("session.browser"), s.browserName], [t("session.os"), s.osName],
          [t("col.ip"), s.ipAddress], [t("col.location"), loc],
          [t("session.ua"), el("code.ua-full", { id: "detail-ua", text: s.userAgent || "—" })]])),
        el("section.card", null, el("h2", { text: t("session.security") }),
          el("p.scoreline", null, scoreBadge(s.securityScore), " ", el("meter", { min: 0, max: 100, low: 40, high: 70, optimum: 100, value: s.securityScore, "aria-label": t("col.score") })),
          reasons)),
      el("section.card", null, el("h2", { text: t("session.timeline") }), timeline),
      actions);
    state.refresh = (changes) => { if ((changes || []).some((c) => c.sessionId === s.documentId)) renderSession(r); };
  }

  // ---------- user view ----------
  async function renderUser(r) {
    const uid = r.arg;
    const page = r.params.get("page") || "1";
    setMain(el("h1", { text: t("user.title") }), loading());
    let res;
    try { res = await api("GET", "/users/" + encodeURIComponent(uid) + qs({ page, pageSize: 25 })); } catch (e) {
      if (e.status !== 401) setMain(el("h1", { text: t("user.title") }), errorBox(e, () => renderUser(r)));
      return;
    }
    const list = res.sessions.data || [];
    const meta = res.sessions.meta || {};
    const blockBtn = el("button." + (res.blocked ? "secondary" : "danger"), { type: "button", id: "block-toggle",
      text: res.blocked ? t("user.unblock") : t("user.block"), onclick: async () => {
        const next = !res.blocked;
        if (!(await confirmAction(t(next ? "user.block.confirm" : "user.unblock.confirm", { user: uid }), next ? t("user.block") : t("user.unblock")))) return;
        try { await api("POST", "/users/" + encodeURIComponent(uid) + "/block", { blocked: next }); announce(next ? t("user.blocked") : t("user.unblocked")); renderUser(r); } catch (e) { if (e.status !== 401) banner(t("err.generic", { msg: e.message })); }
      } });
    const killBtn = el("button.danger", { type: "button", id: "terminate-all", text: t("user.terminateall"), disabled: !meta.active && !list.some((s) => s.isActive),
      onclick: async () => {
        if (!(await confirmAction(t("user.terminateall.confirm", { user: uid }), t("user.terminateall")))) return;
        try { const x = await api("POST", "/users/" + encodeURIComponent(uid) + "/terminate-all"); announce(t("user.terminatedn", { n: fmt.num(x.terminated || 0) })); renderUser(r); } catch (e) { if (e.status !== 401) banner(t("err.generic", { msg: e.message })); }
      } });
    const seen = (title, items) => el("section.card", null, el("h2", { text: title }),
      items.length ? el("ul.chips", null, items.map((i) => el("li", null, el("span", { text: i.name === "?" ? t("unknown") : i.name }), " ", el("span.count", { text: fmt.num(i.count) })))) : el("p.muted", { text: t("none") }));
    setMain(
      el("p.crumbs", null, el("a", { href: "#/sessions", text: t("back.sessions") })),
      el("h1", null, t("user.title"), " ", el("code", { id: "user-id", text: uid })),
      el("p", { id: "user-state" }, res.blocked ? el("span.badge.b-terminated", { text: t("user.blocked") }) : el("span.badge.b-active", { text: t("user.notblocked") }),
        " ", el("span.muted", { text: t("sessions.summary", { count: fmt.num(meta.count || 0), active: fmt.num(meta.active || 0) }) })),
      el("div.actions", null, killBtn, blockBtn),
      el("div.grid3", null, seen(t("user.countries"), res.countries), seen(t("user.devices"), res.devices), seen(t("user.browsers"), res.browsers)),
      list.length ? [sessionsTable(list, { id: "user-sessions", caption: t("user.sessions") }), pager(meta, (n) => setHashParams("user", uid, { page: n }))]
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
      ["enableWebhooks", "bool"], ["discordWebhookUrl", "secret"], ["slackWebhookUrl", "secret"], ["webhooks", "json"]]],
  ];
  const getPath = (o, p) => p.split(".").reduce((a, k) => (a == null ? undefined : a[k]), o);
  function setPath(o, p, v) {
    const ks = p.split(".");
    let cur = o;
    for (let i = 0; i < ks.length - 1; i++) { cur[ks[i]] = cur[ks[i]] || {}; cur = cur[ks[i]]; }
    cur[ks[ks.length - 1]] = v;
  }
  const fieldId = (k) => "set-" + k.replace(/\./g, "-");

  async function renderSettings() {
    setMain(el("h1", { text: t("nav.settings") }), loading());
    let cur;
    try { cur = (await api("GET", "/settings")).settings; } catch (e) {
      if (e.status !== 401) setMain(el("h1", { text: t("nav.settings") }), errorBox(e, renderSettings));
      return;
    }
    const inputs = {};
    const errs = {};
    const groups = SETTINGS.map(([group, fields]) => el("fieldset.card", null, el("legend", { text: t("set.g." + group) }),
      fields.map(([key, type, a, b]) => {
        const id = fieldId(key);
        const v = getPath(cur, key);
        const help = t("set.h." + key);
        const err = el("p.field-error", { id: id + "-err", role: "alert" });
        errs[key] = err;
        let input;
        if (type === "bool") {
          input = el("input", { id, type: "checkbox", checked: !!v });
          inputs[key] = { type, input };
          return el("div.field.check", null, input, el("label", { for: id, text: t("set." + key) }), help !== "set.h." + key ? el("p.help", { text: help }) : null, err);
        }
        if (type === "select") {
          input = el("select", { id }, a.map((o) => el("option", { value: o, text: o, selected: o === v })));
        } else if (type === "json") {
          input = el("textarea", { id, rows: 4, spellcheck: "false" });
          input.value = JSON.stringify(v || [], null, 2);
        } else if (type === "int") {
          input = el("input", { id, type: "number", inputmode: "numeric", min: a, max: b, step: 1, value: v ?? "" });
        } else {
          input = el("input", { id, type: type === "secret" ? "password" : "text", autocomplete: "off", spellcheck: "false" });
          input.value = Array.isArray(v) ? v.join(", ") : v ?? "";
        }
        input.setAttribute("aria-describedby", id + "-help " + id + "-err");
        inputs[key] = { type, input, min: a, max: b };
        return el("div.field", null, el("label", { for: id, text: t("set." + key) }), input,
          el("p.help", { id: id + "-help", text: help !== "set.h." + key ? help : "" }), err);
      })));
    const msg = el("div.form-msg", { id: "settings-msg", role: "status", "aria-live": "polite" });
    const form = el("form.settings", { novalidate: true, id: "settings-form" }, groups, msg,
      el("div.actions.sticky", null, el("button", { type: "submit", id: "settings-save", text: t("set.save") })));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(msg);
      msg.className = "form-msg";
      for (const e of Object.values(errs)) e.textContent = "";
      const doc = {};
      const problems = [];
      for (const [key, f] of Object.entries(inputs)) {
        const raw = f.type === "bool" ? f.input.checked : f.input.value.trim();
        let v = raw;
        if (f.type === "int") {
          if (!/^-?\d+$/.test(raw)) { problems.push([key, t("v.int")]); continue; }
          v = parseInt(raw, 10);
          if (v < f.min || v > f.max || (key === "retentionDays" && v === 0)) { problems.push([key, t("v.range", { min: f.min, max: f.max })]); continue; }
        } else if (f.type === "countries" || f.type === "list") {
          v = raw ? raw.split(/[\s,;]+/).filter(Boolean) : [];
          if (f.type === "countries") {
            v = v.map((c) => c.toUpperCase());
            const bad = v.find((c) => !/^[A-Z]{2}$/.test(c));
            if (bad) { problems.push([key, t("v.country", { v: bad })]); continue; }
          }
        } else if (f.type === "json") {
          try { v = JSON.parse(raw || "[]"); if (!Array.isArray(v)) throw new Error("array"); } catch (e) { problems.push([key, t("v.json")]); continue; }
        }
        setPath(doc, key, v);
      }
      if (problems.length) {
        for (const [k, m] of problems) errs[k].textContent = m;
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
    setMain(el("h1", { text: t("nav.settings") }), el("p.muted", { text: t("set.intro") }), form, outbox);
    loadOutbox(outbox);
  }
  async function loadOutbox(box) {
    let res;
    try { res = await api("GET", "/alerts"); } catch (e) {
      if (e.status !== 401) { clear(box); box.appendChild(el("h2", { text: t("outbox.title") })); box.appendChild(errorBox(e, () => loadOutbox(box))); }
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
          try { await api("POST", "/alerts/" + a.id + "/retry"); announce(t("outbox.queued")); loadOutbox(box); } catch (e) { ev.target.disabled = false; if (e.status !== 401) banner(t("err.generic", { msg: e.message })); }
        } }))))))));
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
