// The bar's screen: the kegs on tap, the totals and the latest pours. It
// reads the whole state once, then follows the server's numbered change
// stream. When the connection drops it says so, and once the server is
// back it resumes the stream after the last change it applied, or reads
// the whole state again when the server no longer holds what it missed.
// Opened with the admin's token it also lets staff change kegs and delete
// pours.
"use strict";

// ---- settings ----

const FEED_SIZE = 15;            // pours shown in the feed
const WINDOW_MINUTES = 30;       // the span of the pours-per-minute chart
const MAX_PAGES = 10;            // pages of 1000 fetched to fill that chart
const GLASSES = ["half", "pint", "stein"];
const AMBER_AT = 25;             // a gauge turns amber at or below this percent, red at its keg's lowAt
const LOG_SIZE = 4096;           // changes kept to apply again over an older report
const ML_PER_US_FL_OZ = 29.5735;
const ML_PER_US_GALLON = 3785.41;
const KEG_SIZES = [              // the keg form's choice of sizes, in millilitres
  ["50 l", 50000], ["30 l", 30000], ["20 l", 20000], ["US 1/2 barrel", 58674],
  ["US 1/4 barrel", 29337], ["US 1/6 barrel", 19550], ["Corny", 18927],
];

// The fragment holds the token (#token=...), which browsers send to no
// server and put in no Referer, and the units (#units=us); an old link may
// hold ?token=. The page keeps the token and takes it out of the address
// bar, so that a link copied from there holds no credential.
const fragment = new URLSearchParams(location.hash.slice(1));
const token = fragment.get("token") || new URLSearchParams(location.search).get("token");
let units = fragment.get("units") === "us" ? "us" : "metric";
if (token) history.replaceState(null, "", location.pathname + (units === "us" ? "#units=us" : ""));
addEventListener("hashchange", () => {
  const f = new URLSearchParams(location.hash.slice(1));
  if (f.has("token")) return location.reload(); // a new token: start again with it
  units = f.get("units") === "us" ? "us" : "metric";
  closeForm(false); // its fields are in the other units
  renderNow();
});
const $ = (id) => document.getElementById(id);
const auth = () => (token ? { Authorization: "Bearer " + token } : {});

// ---- the state ----

// The server's stream is consistent: a report counts exactly the changes
// whose events came before it, and every change is an event numbered by
// seq. So the totals and the kegs are the last report plus the changes
// after it, each applied once: a change whose seq is not after state.seq
// is counted already. The pours that a full read fetches over HTTP fill
// the feed and the chart but count nothing.
const state = {
  report: emptyReport(), // the totals, by the rule above
  kegs: new Map(),       // tap id -> the keg on it, by the same rule
  seq: null,             // the last change counted; null until the first report
  log: [],               // the changes counted since the report, to apply again over an older one
  inexact: 0,            // the last change the page could not apply exactly: only a later report will do
  pours: new Map(),      // id -> beer, the pours of the window and the feed
  deleted: null,         // while a full read fetches pours: the ids deleted since it began
  live: null,            // and the ids that arrived since
  fresh: new Set(),      // ids that arrived live, to animate once
  taps: new Map(),       // tap id -> {tapId, online, since}: whether its meter is online
  dismissed: new Set(),  // alerts staff dismissed, as "kegId:low" or "kegId:empty"
  admin: false,          // the token is the admin's: the page shows the staff's controls
};

function emptyReport() {
  return { total: 0, volume: 0, taps: {}, types: { half: 0, pint: 0, stein: 0 } };
}

// ---- the connection ----

let backoff = 500;
let readAll = true; // the next connection reads the whole state: the first, and after a refused resume

// connect subscribes: after the last change counted, or, reading the
// whole state, from a first report. The token travels as a subprotocol,
// never in a URL the server logs.
function connect() {
  const after = readAll || state.seq === null ? null : state.seq;
  const url = new URL("/sockets/beers", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (after !== null) url.searchParams.set("after", after);
  const ws = token ? new WebSocket(url, ["altair", "token." + token]) : new WebSocket(url);
  let opened = false, heard = false;
  ws.onopen = () => {
    opened = true;
    backoff = 500;
    setState("live", "live");
    if (after === null) {
      state.seq = null; // the first event is a report, which starts the count again
      state.inexact = 0;
      readAll = false;
      state.live = new Set();
      state.deleted = new Set();
      refresh();
    } else {
      refreshTaps(); // tap events carry no seq: none waited for the page
    }
    if (token && adminAsked === false) checkAdmin();
  };
  ws.onmessage = (msg) => {
    heard = true;
    handle(JSON.parse(msg.data));
  };
  ws.onclose = (e) => {
    // A resume the server refused (the handshake failed, or it closed with
    // 1008 before any change) reads the whole state next time.
    if (after !== null && (!opened || (!heard && e.code === 1008))) readAll = true;
    setState("reconnecting", "reconnecting…");
    retry();
  };
}

function retry() {
  const wait = backoff / 2 + Math.random() * backoff / 2;
  backoff = Math.min(backoff * 2, 10000);
  setTimeout(reconnect, wait);
}

// reconnect asks the server first whether it holds the changes after the
// last one counted (a browser's WebSocket cannot see why a handshake
// failed): 426 is yes (the probe is no handshake), 410 and 400 are no.
async function reconnect() {
  if (!readAll && state.seq !== null) {
    let status = 0;
    try {
      status = (await fetch(`/sockets/beers?after=${state.seq}`, { cache: "no-store", headers: auth() })).status;
    } catch (err) {
      // the server is still away
    }
    if (status === 410 || status === 400) readAll = true;
    else if (status !== 426) return retry();
  }
  connect();
}

function setState(name, text) {
  const el = $("state");
  el.dataset.state = name;
  el.textContent = text;
}

// ---- the events ----

function handle(event) {
  switch (event.event) {
    case "report":
      adopt(event.report, state.seq === null);
      break;
    case "tap":
      setTap(event.tap);
      break;
    case "pour":
    case "deleted":
    case "keg":
      change(event);
      break;
  }
  scheduleRender();
}

// change follows one change: the feed takes every pour and delete; the
// totals and kegs count it unless they do already.
function change(e) {
  if (e.event === "pour") {
    state.fresh.add(e.beer.id);
    state.live?.add(e.beer.id);
    state.pours.set(e.beer.id, e.beer);
  }
  if (state.seq !== null && e.seq > state.seq) {
    if (e.event === "deleted") e.beer = state.pours.get(e.id); // what it takes back, to apply it again
    if (!apply(e)) {
      state.inexact = e.seq;
      resync();
    }
    state.seq = e.seq;
    state.log.push(e);
    if (state.log.length > LOG_SIZE) state.log.splice(0, state.log.length - LOG_SIZE);
  }
  if (e.event === "deleted") {
    state.deleted?.add(e.id);
    state.pours.delete(e.id);
  }
}

// apply counts a change in the totals and the kegs; false when it cannot
// know the outcome exactly.
function apply(e) {
  switch (e.event) {
    case "pour":
      count(e.beer, +1);
      return charge(e.beer, +1);
    case "deleted":
      if (!e.beer) return false; // a pour the page never saw: only the server knows its tap and keg
      count(e.beer, -1);
      return charge(e.beer, -1);
    case "keg":
      takeKeg(e.change, e.keg);
      return true;
  }
  return true;
}

// adopt takes a report as the totals and the kegs. One from the stream
// (fresh: the first of a full read) is where the stream is; one fetched
// over HTTP may be ahead of the changes the page has had, or behind them,
// when the changes since it are applied again. It returns false when the
// report cannot be used.
function adopt(r, fresh) {
  if (!fresh && (state.seq === null || r.seq < state.inexact)) return false;
  const since = fresh ? [] : state.log.filter((e) => e.seq > r.seq);
  if (!fresh && r.seq < state.seq && since.length !== state.seq - r.seq) return false;
  state.report = { total: r.total, volume: r.volume, taps: r.taps || {}, types: r.types || {} };
  state.kegs = new Map((r.kegs || []).map((k) => [String(k.tapId), seen(k)]));
  for (const e of since) apply(e);
  state.seq = Math.max(r.seq, fresh ? 0 : state.seq);
  state.log = since;
  state.inexact = 0;
  return true;
}

// setTap takes a tap's status, unless the page knows a later one.
function setTap(t) {
  const id = String(t.tapId), known = state.taps.get(id);
  if (!known || !known.since || !t.since || Date.parse(t.since) >= Date.parse(known.since)) {
    state.taps.set(id, { tapId: t.tapId, online: t.online, since: t.since });
  }
}

// count applies a pour (+1) or its delete (-1) to the totals.
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

// ---- the kegs ----

// takeKeg applies a keg event: started puts it on its tap (after ended
// took the one before off), ended takes it off, the others change it.
function takeKeg(change, keg) {
  const tap = String(keg.tapId), on = state.kegs.get(tap);
  if (change === "ended") {
    if (on && on.id === keg.id) state.kegs.delete(tap);
  } else if (change === "started" || !on || on.id === keg.id) {
    state.kegs.set(tap, seen(keg));
  }
}

// seen is a copy of a keg as the server showed it, with when the page got
// it and what it held then, which its forecast was made from.
const seen = (k) => ({ ...k, seenAt: Date.now(), before: k.remaining });

// charge charges a pour's volume to its keg (+1), or gives it back (-1),
// as the server does: remaining = max(0, level - served). A keg that was
// empty does not say its level, so what a delete gives back is unknown.
function charge(beer, sign) {
  const k = beer.kegId ? [...state.kegs.values()].find((k) => k.id === beer.kegId) : null;
  if (!k) return true; // no keg, or not on tap any more: nothing shown changes
  if (sign < 0 && k.remaining <= 0) return false;
  const level = k.remaining > 0 ? k.remaining + k.served : null;
  k.served = exact(k.served + sign * beer.volume);
  k.pours += sign;
  if (level !== null) k.remaining = Math.max(0, exact(level - k.served));
  k.percent = Math.round(k.remaining * 1000 / k.size) / 10;
  k.empty = k.remaining <= 0;
  k.low = k.percent <= k.lowAt && !k.empty;
  if (sign > 0) forecast(k, beer.volume);
  return true;
}

// forecast moves when a keg runs out after a pour, until the next report
// says: the server expects the rest to go at the pace of the last hour's
// pours, which this pour adds to. The pace is read back from the last
// forecast, taken as made when the page got it.
function forecast(k, volume) {
  const now = Date.now(), out = k.runsOutAt ? Date.parse(k.runsOutAt) : 0;
  const pace = out > k.seenAt ? k.before / (out - k.seenAt) : 0; // ml a millisecond
  const hour = pace * 3600000 + volume;
  k.runsOutAt = k.empty ? undefined : new Date(now + k.remaining * 3600000 / hour).toISOString();
  [k.seenAt, k.before] = [now, k.remaining];
}

// exact rounds millilitres to the microlitre, as the server counts them.
const exact = (ml) => Math.round(ml * 1000) / 1000;

// levelOf names how full a keg looks: ok, amber, red or empty; none
// without a keg.
function levelOf(k) {
  if (!k) return "none";
  if (k.remaining <= 0) return "empty";
  if (k.percent <= k.lowAt) return "red";
  return k.percent <= AMBER_AT ? "amber" : "ok";
}

// ---- reading the server ----

async function getJSON(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

// refresh fetches the taps and the latest pours, newest page first, until
// the pours-per-minute window is covered, and puts them in place of what
// the page had: what the server holds now, and what this connection told
// of since. The page keeps no pour of an earlier connection, whose server
// may have lost its pours or given their ids to others. The report came
// with the connection.
let fullReads = 0; // full reads begun: a later one makes an earlier one's answers stale
async function refresh() {
  const read = ++fullReads, stale = () => read !== fullReads;
  try {
    await refreshTaps(true);
    const first = await getJSON("/api/beers?page_size=1");
    const since = Date.now() - WINDOW_MINUTES * 60000;
    const pours = new Map();
    let page = Math.max(1, Math.ceil(first.total / 1000));
    for (let n = 0; n < MAX_PAGES && page >= 1; n++, page--) {
      const list = await getJSON(`/api/beers?page_size=1000&page=${page}`);
      list.beers.forEach((b) => pours.set(b.id, b));
      if (!list.beers.length || Date.parse(list.beers[0].timestamp) < since) break;
    }
    if (stale()) return;
    for (const id of state.live) if (state.pours.has(id)) pours.set(id, state.pours.get(id));
    for (const id of state.deleted) pours.delete(id);
    state.pours = pours;
  } catch (err) {
    if (stale()) return;
    console.warn("refresh failed:", err);
    readAll = true; // the feed is incomplete: read it all at the next connection
  }
  state.live = state.deleted = null;
  scheduleRender();
}

// refreshTaps reads which taps the server knows and which are online:
// all of them (whole) after a full read, or news of them after a resume.
async function refreshTaps(whole) {
  const read = fullReads;
  try {
    const list = (await getJSON("/api/taps")).taps;
    if (read !== fullReads) return; // a full read began meanwhile
    if (whole) state.taps = new Map();
    list.forEach(setTap);
    scheduleRender();
  } catch (err) {
    if (whole) throw err;
    console.warn("taps:", err);
  }
}

// resync fetches a report when a change cannot be applied exactly (a
// pour deleted that the page never saw, or given back to an empty keg),
// until one is taken: one that counts that change.
let resyncing = false;
async function resync() {
  if (resyncing) return;
  resyncing = true;
  try {
    for (let n = 0; n < 20 && state.inexact; n++) {
      if (adopt(await getJSON("/api/report"), false)) break;
      await new Promise((done) => setTimeout(done, 100 * (n + 1)));
    }
  } catch (err) {
    console.warn("report:", err);
  } finally {
    resyncing = false;
  }
  scheduleRender();
}

// ---- staff: what the admin's token may do ----

// checkAdmin asks, once, whether the token is the admin's. No route says
// whose a token is, so it asks to change keg 0, which does not exist: the
// admin is told 404, any other token 401 or 403, before anything could
// change.
let adminAsked = false; // false, then true once answered, or a promise while asking
async function checkAdmin() {
  adminAsked = fetch("/api/kegs/0", { method: "PATCH", cache: "no-store", headers: auth() });
  try {
    const resp = await adminAsked;
    adminAsked = true;
    if (resp.status !== 404) return;
  } catch (err) {
    adminAsked = false; // asked again at the next connection
    return;
  }
  state.admin = true;
  document.body.classList.add("staff-mode");
  const another = button("Put a keg on another tap", "secondary"), slot = document.createElement("div");
  another.addEventListener("click", () => openKegForm(slot, another, null));
  $("another-tap").append(another, slot);
  for (const rows of [tapRows, alertRows, feedRows]) { // built again, with their buttons
    for (const li of rows.values()) li.remove();
    rows.clear();
  }
  renderNow();
}

// send sends a change; it returns the answer's body, or throws an Error
// whose message is the server's, or says that it did not answer.
async function send(method, path, body) {
  let resp;
  try {
    resp = await fetch(path, {
      method, cache: "no-store",
      headers: { ...auth(), ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new Error("The server did not answer: check the connection and try again.");
  }
  if (resp.ok) return resp.status === 204 ? null : resp.json();
  let message = `The server answered ${resp.status}.`;
  try {
    const e = await resp.json();
    if (e.message) message = e.message;
  } catch (err) {
    // not JSON: the status says it
  }
  const error = new Error(message);
  error.status = resp.status;
  throw error;
}

// The fields of a keg's body that an error message may name, and the
// form's field that each stands for.
const FIELD_NAMES = ["tapId", "name", "brewery", "style", "abv", "size", "remaining", "lowAt"];

// showErrors puts the server's message beside the control that caused it:
// each problem of a 422 beside the field it names, and what names none
// beside the button that sent it.
function showErrors(form, err) {
  clearErrors(form);
  const parts = err.status === 422 ? err.message.split("; ") : [err.message];
  let focus = null;
  for (const part of parts) {
    let key = "", at = Infinity;
    for (const name of FIELD_NAMES) {
      const m = new RegExp(`\\b${name}\\b`).exec(part);
      if (m && m.index < at) [key, at] = [name, m.index];
    }
    const slot = errorSlot(form, key) || errorSlot(form, "");
    slot.textContent = slot.textContent ? slot.textContent + " " + part : part;
    const input = slot.closest(".field")?.querySelector("input, select");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      focus = focus || input;
    }
  }
  if (focus) focus.focus();
}

// errorSlot is the form's place for errors about key: the last one shown.
function errorSlot(form, key) {
  const slots = [...form.querySelectorAll(`.error[data-for="${key}"]`)].filter((p) => !p.closest("[hidden]"));
  return slots[slots.length - 1];
}

function clearErrors(form) {
  form.querySelectorAll(".error").forEach((p) => { p.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

// Only one form is open at a time: opening another closes it.
let openForm = null; // {form, opener}

function closeForm(focusOpener) {
  if (!openForm) return;
  const { form, opener } = openForm;
  openForm = null;
  form.remove();
  if (focusOpener && opener.isConnected) opener.focus();
}

function escapeCloses(form) {
  form.addEventListener("keydown", (e) => {
    if (e.key === "Escape") closeForm(true);
  });
}

function cloneTemplate(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

// openKegForm opens the form that puts a keg on tap (or on a tap that the
// staff name, when tap is null) in slot.
function openKegForm(slot, opener, tap) {
  closeForm(false);
  const form = cloneTemplate("keg-form");
  const f = form.elements;
  const current = tap === null ? null : state.kegs.get(tap);
  form.querySelector(".tap-field").hidden = tap !== null;
  for (const [name, ml] of KEG_SIZES) f.size.append(new Option(`${name} (${bigVolume(ml)})`, ml));
  f.size.append(new Option(`Other (${unitName()})`, "other"));
  form.querySelectorAll(".unit").forEach((u) => { u.textContent = unitName(); });
  if (current) { // the same again, most often: the staff change what differs
    f.name.value = current.beverage.name;
    f.brewery.value = current.beverage.brewery || "";
    f.style.value = current.beverage.style || "";
    f.abv.value = current.beverage.abv ?? "";
    f.lowAt.value = current.lowAt;
    if (KEG_SIZES.some(([, ml]) => ml === current.size)) f.size.value = current.size;
    else [f.size.value, f.other.value] = ["other", round1(fromML(current.size))];
  }
  const showOther = () => { form.querySelector(".other-field").hidden = f.size.value !== "other"; };
  showOther();
  f.size.addEventListener("change", showOther);
  form.querySelector(".cancel").addEventListener("click", () => closeForm(true));
  showForm(slot, opener, form, () => {
    const body = kegBody(form, tap);
    if (body.problem) throw { message: body.problem };
    return send("POST", "/api/kegs", body);
  });
  (tap === null ? f.tapId : f.name).focus();
}

// kegBody is the body that puts the form's keg on tap. What cannot be
// read as a number goes as typed, for the server to say what it wants.
function kegBody(form, tap) {
  const f = form.elements;
  const beverage = { name: f.name.value.trim() };
  if (f.brewery.value.trim()) beverage.brewery = f.brewery.value.trim();
  if (f.style.value.trim()) beverage.style = f.style.value.trim();
  if (f.abv.value.trim()) beverage.abv = numberOr(f.abv.value);
  let size = f.size.value === "other" ? toML(f.other.value) : Number(f.size.value);
  if (typeof size === "number") size = Math.round(size);
  const body = { tapId: tap === null ? numberOr(f.tapId.value) : Number(tap), beverage, size };
  const poured = f.poured.value.trim() === "" ? 0 : toML(f.poured.value);
  if (typeof poured !== "number") {
    return { problem: `Already poured: write the ${unitName()} poured from it, like 12.5, or 0.` };
  }
  if (poured && typeof size === "number") body.remaining = Math.round(size - poured);
  if (f.lowAt.value.trim()) body.lowAt = numberOr(f.lowAt.value);
  return body;
}

// openLevelForm opens the form that corrects what a keg holds now.
function openLevelForm(slot, opener, keg) {
  closeForm(false);
  const form = cloneTemplate("level-form");
  const input = form.elements.remaining;
  form.querySelector(".unit").textContent = unitName();
  input.value = round1(fromML(keg.remaining));
  form.querySelector(".cancel").addEventListener("click", () => closeForm(true));
  showForm(slot, opener, form, () => send("PATCH", `/api/kegs/${keg.id}`, { remaining: toML(input.value) }));
  input.focus();
  input.select();
}

// showForm puts form in slot, as the form open now, opened by opener. On
// submit it runs request: the form closes once that is done, or shows the
// server's errors beside what they are about.
function showForm(slot, opener, form, request) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      await request();
      closeForm(true);
    } catch (err) {
      showErrors(form, err);
    } finally {
      button.disabled = false;
    }
  });
  escapeCloses(form);
  slot.append(form);
  openForm = { form, opener };
}

// confirmIn puts a question in bar, in place of its buttons, with a
// button that runs the change (yes) and one that keeps things as they
// are; the server's error stays beside them. about names what it asks
// about, so that a row can drop a question that no longer applies.
function confirmIn(bar, about, question, yesText, yes) {
  bar.querySelector(".confirm")?.remove();
  const ask = document.createElement("div");
  ask.className = "confirm";
  ask.dataset.about = about;
  const keep = button("Keep", "secondary");
  const go = button(yesText, "danger");
  const error = span("error", "");
  error.setAttribute("role", "alert");
  ask.append(span("question", question), go, keep, error);
  const restore = () => {
    const had = ask.contains(document.activeElement) || document.activeElement === document.body; // a disabled button loses focus
    ask.remove();
    delete bar.dataset.asking;
    if (had) [...bar.querySelectorAll(":scope > button")].find((b) => !b.hidden)?.focus();
  };
  keep.addEventListener("click", restore);
  ask.addEventListener("keydown", (e) => {
    if (e.key === "Escape") restore();
  });
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      await yes();
      restore();
    } catch (err) {
      error.textContent = err.message;
      go.disabled = false;
    }
  });
  bar.dataset.asking = "true";
  bar.append(ask);
  keep.focus();
}

function button(text, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (cls) b.className = cls;
  return b;
}

// ---- units ----

const unitName = () => (units === "us" ? "gallons" : "litres");
const unitShort = () => (units === "us" ? "gal" : "l");
const fromML = (ml) => ml / (units === "us" ? ML_PER_US_GALLON : 1000);
const round1 = (n) => Math.round(n * 10) / 10;

// toML reads litres or gallons as millilitres, or returns what was typed.
function toML(text) {
  const n = numberOr(text);
  return typeof n === "number" ? n * (units === "us" ? ML_PER_US_GALLON : 1000) : n;
}

// numberOr reads a number, with a decimal point or comma, or returns the text.
function numberOr(text) {
  const t = String(text).trim().replace(",", ".");
  return t !== "" && Number.isFinite(Number(t)) ? Number(t) : String(text).trim();
}

// bigVolume is a keg's volume: litres or US gallons, to a tenth.
const bigVolume = (ml) => `${fromML(ml).toFixed(1)} ${unitShort()}`;

// smallVolume is a glass's: millilitres or US fluid ounces.
const smallVolume = (ml) => (units === "us" ? `${(ml / ML_PER_US_FL_OZ).toFixed(1)} fl oz` : `${Math.round(ml)} ml`);

function percentText(p) {
  return p > 0 && p < 1 ? "<1%" : `${Math.round(p)}%`;
}

function clock(time, withSeconds) {
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (withSeconds) opts.second = "2-digit";
  return new Date(time).toLocaleTimeString([], opts);
}

// runsOut says when a keg runs out: at what time, and on what day unless today.
function runsOut(at) {
  const t = new Date(at), today = new Date();
  const day = t.toDateString() === today.toDateString() ? "" : t.toLocaleDateString([], { weekday: "short" }) + " ";
  return `runs out around ${day}${clock(t, false)}`;
}

// ---- the page ----

let renderQueued = false;

// scheduleRender renders once for a burst of events.
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(renderNow, 0);
}

function renderNow() {
  renderQueued = false;
  const r = state.report;
  $("total-beers").textContent = r.total.toLocaleString("en");
  $("total-volume").textContent = fromML(r.volume).toLocaleString("en", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  $("volume-unit").textContent = unitName();
  for (const g of GLASSES) $(`glass-${g}`).textContent = (r.types[g] || 0).toLocaleString("en");
  renderTaps();
  renderAlerts();
  renderShares();
  renderRate();
  renderFeed();
}

// knownTaps are the ids of the taps the page knows of, in order.
function knownTaps() {
  const ids = new Set([...state.taps.keys(), ...Object.keys(state.report.taps), ...state.kegs.keys()]);
  return [...ids].sort((a, b) => a - b);
}

const tapRows = new Map(); // tap id -> li; rows stay, so that a form or focus in one does too

function renderTaps() {
  const list = $("taps");
  const ids = knownTaps();
  for (const [id, li] of tapRows) {
    if (!ids.includes(id)) {
      li.remove();
      tapRows.delete(id);
    }
  }
  let prev = null;
  for (const id of ids) {
    let li = tapRows.get(id);
    if (!li) tapRows.set(id, (li = tapRow(id)));
    fillTapRow(li, id);
    const at = prev ? prev.nextSibling : list.firstChild;
    if (li !== at) list.insertBefore(li, at);
    prev = li;
  }
  $("no-kegs").hidden = ids.length > 0;
}

function tapRow(id) {
  const li = document.createElement("li");
  li.className = "tap-row";
  li.dataset.tap = id;
  const badge = document.createElement("div");
  badge.className = "badge";
  badge.id = `tap-${id}`;
  badge.append(span("vh", "Tap "), span("number", id), span("mark", ""));
  const keg = document.createElement("div");
  keg.className = "keg";
  const level = document.createElement("div");
  level.className = "level";
  const meter = document.createElement("div");
  meter.className = "meter";
  li.append(badge, keg, level, meter);
  if (state.admin) li.append(staffBar(li, id));
  const slot = document.createElement("div");
  slot.className = "slot";
  li.append(slot);
  return li;
}

// staffBar is a tap's row's buttons.
function staffBar(li, id) {
  const bar = document.createElement("div");
  bar.className = "staff";
  const change = button("Change keg");
  const end = button("End keg", "secondary");
  const correct = button("Correct level", "secondary");
  for (const b of [change, end, correct]) b.setAttribute("aria-describedby", `tap-${id}`);
  const slot = () => li.querySelector(".slot");
  change.addEventListener("click", () => openKegForm(slot(), change, id));
  correct.addEventListener("click", () => {
    const k = state.kegs.get(id);
    if (k) openLevelForm(slot(), correct, k);
  });
  end.addEventListener("click", () => {
    const k = state.kegs.get(id);
    if (!k) return;
    closeForm(false);
    confirmIn(bar, String(k.id), `End ${k.beverage.name} on tap ${id}?`, "Yes, end it",
      () => send("POST", `/api/kegs/${k.id}/end`));
  });
  bar.append(change, end, correct);
  return bar;
}

function fillTapRow(li, id) {
  const k = state.kegs.get(id);
  const online = state.taps.get(id)?.online === true;
  const level = levelOf(k);
  li.dataset.keg = k ? k.id : "";
  li.dataset.level = level;
  li.dataset.percent = k ? k.percent : "";
  li.dataset.online = online;
  const mark = li.querySelector(".mark");
  mark.className = "mark " + (online ? "online" : "offline");
  mark.title = online ? "online" : "offline";
  mark.replaceChildren(span("vh", online ? " online" : " offline"));
  const keg = li.querySelector(".keg"), right = li.querySelector(".level"), meter = li.querySelector(".meter");
  if (!k) {
    keg.replaceChildren(p("name none", "no keg"));
    right.replaceChildren();
    meter.replaceChildren();
  } else {
    const b = k.beverage;
    const details = [b.brewery, b.style, b.abv != null ? `${b.abv}%` : ""].filter(Boolean).join(" · ");
    const gauge = document.createElement("div");
    gauge.className = "gauge";
    gauge.setAttribute("role", "meter");
    gauge.setAttribute("aria-label", `Tap ${id}: ${b.name}`);
    gauge.setAttribute("aria-valuemin", "0");
    gauge.setAttribute("aria-valuemax", "100");
    gauge.setAttribute("aria-valuenow", String(k.percent));
    gauge.setAttribute("aria-valuetext", level === "empty" ? "empty" : `${percentText(k.percent)}, ${bigVolume(k.remaining)} left`);
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${Math.max(0, Math.min(100, k.percent))}%`;
    gauge.append(fill);
    keg.replaceChildren(p("name", b.name));
    if (details) keg.append(p("details", details));
    meter.replaceChildren(gauge);
    if (k.runsOutAt && level !== "empty") meter.append(p("runs-out", runsOut(k.runsOutAt)));
    right.replaceChildren(span("percent", level === "empty" ? "empty" : percentText(k.percent)));
    if (level !== "empty") right.append(span("left", `${bigVolume(k.remaining)} left`));
  }
  const staff = li.querySelector(".staff");
  if (staff) {
    const [, end, correct] = staff.querySelectorAll(":scope > button");
    end.hidden = correct.hidden = !k;
    const asking = staff.querySelector(".confirm");
    if (asking && asking.dataset.about !== String(k?.id)) { // that keg came off meanwhile
      asking.remove();
      delete staff.dataset.asking;
    }
  }
}

const alertRows = new Map(); // "kegId:kind" -> li

// renderAlerts shows a banner for each keg on tap that is low or empty,
// until it is not, comes off, or the staff dismiss it.
function renderAlerts() {
  const list = $("alerts");
  const want = new Map();
  for (const id of knownTaps()) {
    const k = state.kegs.get(id);
    if (!k || !(k.low || k.empty)) continue;
    const kind = k.empty ? "empty" : "low";
    const key = `${k.id}:${kind}`;
    if (state.dismissed.has(key)) continue;
    want.set(key, [id, k, kind]);
  }
  for (const [key, li] of alertRows) {
    if (!want.has(key)) {
      li.remove();
      alertRows.delete(key);
    }
  }
  let prev = null;
  for (const [key, [id, k, kind]] of want) {
    let li = alertRows.get(key);
    if (!li) {
      li = document.createElement("li");
      li.className = "alert";
      li.dataset.keg = k.id;
      li.dataset.kind = kind;
      const text = span("text", "");
      text.id = `alert-${k.id}-${kind}`;
      li.append(text);
      if (state.admin) {
        const dismiss = button("Dismiss", "secondary");
        dismiss.setAttribute("aria-describedby", text.id);
        dismiss.addEventListener("click", () => {
          state.dismissed.add(key);
          renderNow();
        });
        li.append(dismiss);
      }
      alertRows.set(key, li);
    }
    const at = prev ? prev.nextSibling : list.firstChild; // in tap order; a row in place stays, with its focus
    if (li !== at) list.insertBefore(li, at);
    prev = li;
    li.dataset.tap = id;
    li.querySelector(".text").textContent = kind === "empty"
      ? `Tap ${id}: ${k.beverage.name} is empty`
      : `Tap ${id}: ${k.beverage.name} is low, ${percentText(k.percent)} left`;
  }
  list.hidden = want.size === 0;
}

function renderShares() {
  const list = $("shares");
  const taps = state.report.taps;
  const ids = [...new Set([...Object.keys(taps), ...state.taps.keys()])].sort((a, b) => a - b);
  const none = { beers: 0, share: 0 };
  const top = Math.max(1, ...ids.map((id) => (taps[id] || none).share)); // the longest bar fills its track
  $("no-taps").hidden = ids.length > 0;
  list.replaceChildren(...ids.map((id) => {
    const tap = taps[id] || none;
    const online = state.taps.get(id)?.online === true;
    const li = document.createElement("li");
    li.dataset.tap = id;
    li.dataset.share = tap.share;
    li.dataset.online = online;
    const track = span("track", "");
    const bar = span("bar", "");
    bar.style.width = `${Math.max(1, 100 * tap.share / top)}%`;
    track.append(bar);
    li.append(span(`mark ${online ? "online" : "offline"}`, ""), span("tap", `Tap ${id}`), track,
      span("share", `${tap.share}%`), span(online ? "count" : "count off", `${tap.beers} · ${online ? "online" : "offline"}`));
    return li;
  }));
}

const svgNS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function renderRate() {
  const svg = $("rate");
  const now = Math.floor(Date.now() / 60000);
  const counts = new Array(WINDOW_MINUTES).fill(0);
  for (const beer of state.pours.values()) {
    const ago = now - Math.floor(Date.parse(beer.timestamp) / 60000);
    if (ago >= 0 && ago < WINDOW_MINUTES) counts[WINDOW_MINUTES - 1 - ago]++;
  }
  const width = svg.clientWidth || 600, height = 150, top = 28, bottom = 30;
  const max = Math.max(1, ...counts);
  const slot = width / WINDOW_MINUTES;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.dataset.counts = counts.join(",");
  counts.forEach((n, i) => {
    const h = (height - top - bottom) * n / max;
    svg.append(svgEl("rect", { class: "bar", x: i * slot + 2, y: height - bottom - h, width: Math.max(1, slot - 4), height: h, rx: 2 }));
  });
  svg.append(
    svgEl("line", { class: "axis", x1: 0, x2: width, y1: height - bottom, y2: height - bottom }),
    svgEl("text", { x: 0, y: height - 6, class: "muted" }, `${WINDOW_MINUTES} min ago`),
    svgEl("text", { x: width, y: height - 6, "text-anchor": "end", class: "muted" }, "now"),
    svgEl("text", { x: width, y: 20, "text-anchor": "end", class: "muted" }, `peak ${max} a minute`),
  );
}

// Feed rows stay in place so that an arrival animates once. They are keyed
// by the whole pour (a restarted server may give an id to another pour)
// and the units they show.
const feedRows = new Map(); // key -> li
const keyOf = (beer) => units + JSON.stringify(beer);

function renderFeed() {
  const latest = [...state.pours.values()].sort((a, b) => b.id - a.id).slice(0, FEED_SIZE);
  const keep = new Set(latest.map(keyOf));
  for (const [key, li] of feedRows) {
    if (!keep.has(key)) {
      li.remove();
      feedRows.delete(key);
    }
  }
  const feed = $("feed");
  let prev = null;
  for (const beer of latest) {
    let li = feedRows.get(keyOf(beer));
    if (!li) feedRows.set(keyOf(beer), (li = feedRow(beer)));
    const at = prev ? prev.nextSibling : feed.firstChild;
    if (li !== at) feed.insertBefore(li, at);
    prev = li;
  }
  state.fresh.clear();
  $("no-pours").hidden = latest.length > 0;
  trim(latest);
}

function feedRow(beer) {
  const li = document.createElement("li");
  li.dataset.id = beer.id;
  li.dataset.tap = beer.tapId;
  li.dataset.glass = beer.type;
  if (state.fresh.has(beer.id)) {
    li.className = "new";
    li.addEventListener("animationend", () => li.classList.remove("new"), { once: true });
  }
  const parts = [
    span("tap", `Tap ${beer.tapId}`),
    span("glass", beer.type),
    span("volume", smallVolume(beer.volume)),
    span("time", clock(beer.timestamp, true)),
  ];
  parts.forEach((part) => { part.id = `pour-${beer.id}-${part.className}`; });
  li.append(...parts);
  if (state.admin) {
    const bar = document.createElement("div");
    bar.className = "staff";
    const del = button("Delete", "secondary");
    del.setAttribute("aria-describedby", parts.map((part) => part.id).join(" "));
    del.addEventListener("click", () => confirmIn(bar, String(beer.id), `Delete this ${beer.type}?`, "Yes, delete",
      () => send("DELETE", `/api/beers/${beer.id}`)));
    bar.append(del);
    li.append(bar);
  }
  return li;
}

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

function p(cls, text) {
  const el = document.createElement("p");
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

// ---- start ----

renderNow();
connect();
setInterval(renderRate, 10000); // the window slides even when nothing is poured
setInterval(renderTaps, 60000); // "runs out around" turns into another day
addEventListener("resize", renderNow);
