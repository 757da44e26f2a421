// The bar's screen: fills itself from the REST API, then follows the
// server's WebSocket events. When the connection drops it says so,
// reconnects with backoff and fetches what it missed.
"use strict";

const FEED_SIZE = 15;          // pours shown in the feed
const WINDOW_MINUTES = 30;     // the span of the pours-per-minute chart
const MAX_PAGES = 10;          // pages of 1000 fetched to fill that chart
const GLASSES = ["half", "pint", "stein"];

// The token comes from the URL's fragment (#token=...), which browsers send
// to no server and put in no Referer, or from an old link's ?token=. The
// page keeps it and takes it out of the address bar, so that a link copied
// from there holds no credential.
const token = new URLSearchParams(location.hash.slice(1)).get("token") ||
  new URLSearchParams(location.search).get("token");
if (token) history.replaceState(null, "", location.pathname);
const $ = (id) => document.getElementById(id);

// The server's stream is consistent: its first report counts exactly the
// changes before it, and every later change comes as an event. So the
// totals are the last report plus the events after it, and the pours that
// refresh fetches over HTTP fill the feed and the chart but count nothing.
const state = {
  report: { total: 0, volume: 0, taps: {}, types: { half: 0, pint: 0, stein: 0 } },
  pours: new Map(),   // id -> beer, the pours of the window and the feed
  deleted: new Set(), // ids deleted over this connection
  live: new Set(),    // ids that arrived over this connection
  fresh: new Set(),   // ids that arrived live, to animate once
  taps: new Map(),    // tap id -> {online, since}: whether its meter is online
};

// ---- the connection ----

let backoff = 500;

function connect() {
  const url = new URL("/sockets/beers", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  // The token travels as a subprotocol, never in a URL the server logs.
  const ws = token ? new WebSocket(url, ["altair", "token." + token]) : new WebSocket(url);
  ws.onopen = () => {
    backoff = 500;
    state.live.clear();
    state.deleted.clear();
    setState("live", "live");
    refresh(); // what happened before this connection
  };
  ws.onmessage = (msg) => handle(JSON.parse(msg.data));
  ws.onclose = () => {
    setState("reconnecting", "reconnecting…");
    const wait = backoff / 2 + Math.random() * backoff / 2;
    backoff = Math.min(backoff * 2, 10000);
    setTimeout(connect, wait);
  };
}

function setState(name, text) {
  const el = $("state");
  el.dataset.state = name;
  el.textContent = text;
}

function handle(event) {
  switch (event.event) {
    case "pour":
      state.fresh.add(event.beer.id);
      state.live.add(event.beer.id);
      state.pours.set(event.beer.id, event.beer);
      count(event.beer, +1);
      break;
    case "deleted":
      state.deleted.add(event.id);
      if (state.pours.has(event.id)) {
        count(state.pours.get(event.id), -1);
        state.pours.delete(event.id);
      } else {
        fetchReport(); // a pour the page never saw: only the server knows its tap and glass
      }
      break;
    case "report":
      state.report = event.report;
      break;
    case "tap":
      state.taps.set(String(event.tap.tapId), event.tap);
      break;
  }
  render();
}

// ---- the data ----

async function getJSON(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

async function fetchReport() {
  try {
    state.report = await getJSON("/api/report");
    render();
  } catch (err) {
    console.warn(err);
  }
}

// refresh fetches the latest pours, newest page first, until the
// pours-per-minute window is covered, and puts them in place of what the
// page had: what the server holds now, and what this connection told of
// since. The page keeps nothing of an earlier connection, whose server may
// have lost its pours or given their ids to others. The report came with
// the connection.
async function refresh() {
  try {
    const taps = await getJSON("/api/taps");
    state.taps = new Map(taps.taps.map((t) => [String(t.tapId), t]));
    const first = await getJSON("/api/beers?page_size=1");
    const since = Date.now() - WINDOW_MINUTES * 60000;
    const pours = new Map();
    let page = Math.max(1, Math.ceil(first.total / 1000));
    for (let n = 0; n < MAX_PAGES && page >= 1; n++, page--) {
      const list = await getJSON(`/api/beers?page_size=1000&page=${page}`);
      list.beers.forEach((b) => pours.set(b.id, b));
      if (!list.beers.length || Date.parse(list.beers[0].timestamp) < since) break;
    }
    for (const id of state.live) if (state.pours.has(id)) pours.set(id, state.pours.get(id));
    for (const id of state.deleted) pours.delete(id);
    state.pours = pours;
    render();
  } catch (err) {
    console.warn("refresh failed:", err);
  }
}

// count applies a pour (+1) or its delete (-1) to the report at once; the
// next report from the server is the truth.
function count(beer, sign) {
  const r = state.report;
  r.total += sign;
  r.volume += sign * beer.volume;
  r.types[beer.type] = (r.types[beer.type] || 0) + sign;
  const t = r.taps[beer.tapId] || { beers: 0, volume: 0, share: 0 };
  t.beers += sign;
  t.volume += sign * beer.volume;
  r.taps[beer.tapId] = t;
  for (const [id, tap] of Object.entries(r.taps)) {
    if (tap.beers <= 0) delete r.taps[id];
    else tap.share = Math.round(tap.beers * 10000 / r.total) / 100;
  }
}

// ---- the page ----

function render() {
  const r = state.report;
  $("total-beers").textContent = r.total.toLocaleString("en");
  $("total-litres").textContent = (r.volume / 1000).toFixed(1);
  for (const g of GLASSES) $(`glass-${g}`).textContent = (r.types[g] || 0).toLocaleString("en");
  renderShares(r.taps);
  renderRate();
  renderFeed();
}

const svgNS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function renderShares(taps) {
  const svg = $("shares");
  const ids = [...new Set([...Object.keys(taps), ...state.taps.keys()])].sort((a, b) => a - b);
  const row = 46, width = svg.clientWidth || 600, labelW = 120, valueW = 190;
  const none = { beers: 0, share: 0 };
  const top = Math.max(1, ...ids.map((id) => (taps[id] || none).share)); // the longest bar fills the row
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${Math.max(row, ids.length * row)}`);
  $("no-taps").hidden = ids.length > 0;
  ids.forEach((id, i) => {
    const tap = taps[id] || none;
    const online = (state.taps.get(id) || {}).online === true;
    const y = i * row;
    const barW = Math.max(2, (width - labelW - valueW) * tap.share / top);
    const g = svgEl("g", { "data-tap": id, "data-share": tap.share, "data-online": online });
    g.append(
      svgEl("circle", { cx: 10, cy: y + 23, r: 9, class: online ? "online" : "offline" }),
      svgEl("text", { x: 28, y: y + 30 }, `Tap ${id}`),
      svgEl("rect", { class: "bar", x: labelW, y: y + 8, width: barW, height: row - 16, rx: 5 }),
      svgEl("text", { x: labelW + barW + 10, y: y + 30, class: "share" }, `${tap.share}%`),
      svgEl("text", { x: width, y: y + 30, "text-anchor": "end", class: online ? "muted" : "off" },
        `${tap.beers} · ${online ? "online" : "offline"}`),
    );
    svg.append(g);
  });
}

function renderRate() {
  const svg = $("rate");
  const now = Math.floor(Date.now() / 60000);
  const counts = new Array(WINDOW_MINUTES).fill(0);
  for (const beer of state.pours.values()) {
    const ago = now - Math.floor(Date.parse(beer.timestamp) / 60000);
    if (ago >= 0 && ago < WINDOW_MINUTES) counts[WINDOW_MINUTES - 1 - ago]++;
  }
  const width = svg.clientWidth || 600, height = 170, top = 28, bottom = 30;
  const max = Math.max(1, ...counts);
  const slot = width / WINDOW_MINUTES;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.dataset.counts = counts.join(",");
  counts.forEach((n, i) => {
    const h = (height - top - bottom) * n / max;
    svg.append(svgEl("rect", { class: "bar", x: i * slot + 2, y: height - bottom - h, width: slot - 4, height: h, rx: 2 }));
  });
  svg.append(
    svgEl("line", { class: "axis", x1: 0, x2: width, y1: height - bottom, y2: height - bottom }),
    svgEl("text", { x: 0, y: height - 6, class: "muted" }, `${WINDOW_MINUTES} min ago`),
    svgEl("text", { x: width, y: height - 6, "text-anchor": "end", class: "muted" }, "now"),
    svgEl("text", { x: width, y: 20, "text-anchor": "end", class: "muted" }, `peak ${max} a minute`),
  );
}

// rows stay in place so that an arrival animates once. They are keyed by
// the whole pour: a restarted server may give an id to another pour.
const rows = new Map(); // key -> li
const keyOf = (beer) => JSON.stringify(beer);

function renderFeed() {
  const latest = [...state.pours.values()].sort((a, b) => b.id - a.id).slice(0, FEED_SIZE);
  const keep = new Set(latest.map(keyOf));
  for (const [key, li] of rows) {
    if (!keep.has(key)) {
      li.remove();
      rows.delete(key);
    }
  }
  const feed = $("feed");
  let prev = null;
  for (const beer of latest) {
    let li = rows.get(keyOf(beer));
    if (!li) rows.set(keyOf(beer), (li = row(beer)));
    const at = prev ? prev.nextSibling : feed.firstChild;
    if (li !== at) feed.insertBefore(li, at);
    prev = li;
  }
  state.fresh.clear();
  $("no-pours").hidden = latest.length > 0;
  trim(latest);
}

function row(beer) {
  const li = document.createElement("li");
  li.dataset.id = beer.id;
  li.dataset.tap = beer.tapId;
  li.dataset.glass = beer.type;
  if (state.fresh.has(beer.id)) {
    li.className = "new";
    li.addEventListener("animationend", () => li.classList.remove("new"), { once: true });
  }
  const time = new Date(beer.timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  li.append(
    span("tap", `Tap ${beer.tapId}`),
    span("glass", beer.type),
    span("volume", `${beer.volume} ml`),
    span("time", time),
  );
  return li;
}

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

// trim keeps only the pours the feed or the window still needs.
function trim(latest) {
  const since = Date.now() - WINDOW_MINUTES * 60000;
  const keep = new Set(latest.map((b) => b.id));
  for (const [id, beer] of state.pours) {
    if (!keep.has(id) && Date.parse(beer.timestamp) < since) state.pours.delete(id);
  }
}

render();
connect();
setInterval(renderRate, 10000); // the window slides even when nothing is poured
addEventListener("resize", render);
