// The page of `alae-fast serve`: plain JavaScript, no libraries, no network beyond this server.
// State lives here (window.alae, read by the browser test); the server holds none per user.
"use strict";
const $ = (id) => document.getElementById(id);
const state = window.alae = { info: null, current: null, a: null, b: null, editSeq: 0, edits: 0, encodeSeq: 0,
                               actions: 0, shown: null, refining: 0, unfolded: {} };

// The message banner: one message at a time, a new one replaces the one shown. An error (an action that
// failed) stays in view while scrolling (CSS: sticky) until an action begun after it succeeds (guarded),
// another message replaces it or a click closes it; a notice (ok) goes as well when another generate,
// upload, mix or interpolation begins (quiet). state.shown: what it shows, {text, ok, seq: the action
// it came from}, or null.
function say(text, ok, seq) {
  const m = $("message");
  if (!text) { m.hidden = true; state.shown = null; return; }
  m.textContent = text; m.className = "message" + (ok ? " ok" : ""); m.hidden = false;
  state.shown = { text, ok: Boolean(ok), seq: seq === undefined ? state.actions : seq };
}
function quiet() { if (state.shown && state.shown.ok) say(""); }  // an action begins: an old notice goes

// JSON text of a request body, as JSON.stringify writes it, except that a BigInt (a seed: JavaScript
// numbers are exact only to 2**53) is written as its exact decimal digits, a JSON integer the server
// reads exactly; JSON.stringify refuses BigInts
function jsonText(v) {
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return "[" + v.map((x) => (x === undefined ? "null" : jsonText(x))).join(",") + "]";
  if (v !== null && typeof v === "object") {
    return "{" + Object.entries(v).filter(([, x]) => x !== undefined)
      .map(([k, x]) => JSON.stringify(k) + ":" + jsonText(x)).join(",") + "}";
  }
  return JSON.stringify(v);
}

async function call(path, body, raw, method) {
  const t0 = performance.now();
  const opts = { method: method || (body === undefined ? "GET" : "POST") };
  if (body !== undefined) {
    opts.body = raw ? body : jsonText(body);
    opts.headers = { "Content-Type": raw ? (body.type || "application/octet-stream") : "application/json" };
  }
  let resp, text;
  try {
    resp = await fetch(path, opts);
    text = await resp.text();
  } catch (e) {
    throw new Error("no answer from the server (" + e.message + ")");
  }
  let data = null;
  try { data = JSON.parse(text); } catch (e) { /* a plain-text answer, e.g. a crash's "Internal Server Error" */ }
  if (!resp.ok) {
    throw new Error(data && data.error ? data.error
      : `the server answered ${resp.status}` + (resp.status >= 500 ? " (a server error; its log says more)" : ""));
  }
  if (data === null) throw new Error(`the server answered ${resp.status} with something other than JSON`);
  data.roundTrip = performance.now() - t0;
  return data;
}

// A byte count as the server says it (alae_fast.app.uploads.size_text): KiB below 1 MiB, never "0.0 MiB"
function sizeText(n) {
  if (n < 1024) return `${n} byte${n === 1 ? "" : "s"}`;
  return n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

// The whole number a number field holds, or null: its value is "" for text it cannot read, else
// any valid floating-point number ("1e3", "12.0", "-0"), so the number is read, not the spelling.
// For small ranges (steps, cutoff): read as a JavaScript number, exact to 2**53
function wholeNumber(text, lo, hi) {
  const t = String(text).trim();
  const v = t === "" ? NaN : Number(t);
  return Number.isInteger(v) && v >= lo && v <= hi ? (v === 0 ? 0 : v) : null;  // -0 as 0
}

// A seed: the whole number in [0, limit) (limit a BigInt) that the text spells, as a BigInt, or null.
// Read as the decimal it is, never through a JavaScript number (exact only to 2**53), so that
// "9007199254740993" stays itself; "1e3" and "12.0" are 1000 and 12, as wholeNumber reads them, and
// "1e20", past the range, is refused as "100000000000000000000" is
function wholeSeed(text, limit) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
  if (!m || m[2] + (m[3] || "") === "") return null;  // "", ".", "e5", "abc"
  const frac = m[3] || "";
  let digits = (m[2] + frac).replace(/^0+/, ""), exp = Number(m[4] || 0) - frac.length;  // digits * 10**exp
  if (digits === "") return 0n;  // zero: "0", "-0", "0.0", "0e9"
  if (m[1] === "-") return null;
  const zeros = digits.length - digits.replace(/0+$/, "").length;
  digits = digits.slice(0, digits.length - zeros); exp += zeros;
  if (exp < 0) return null;  // a fraction: its last digit is not 0
  // more digits than the limit has: past it (and 10n ** 1e9n, from "1e999999999", is never computed)
  if (digits.length + exp > limit.toString().length) return null;
  const v = BigInt(digits) * 10n ** BigInt(exp);
  return v < limit ? v : null;
}

// The server runs one request at a time, and a refinement holds it for seconds: a request sent
// meanwhile says that it waits, in its own status span, until its answer (or error) comes
const WAITING = "waiting for the model: the server is refining an upload and takes one request at a time…";
async function waiting(el, fn) {
  if (!state.refining) return await fn();
  const span = $(el), before = span.textContent;
  span.textContent = WAITING;
  try { return await fn(); } finally { if (span.textContent === WAITING) span.textContent = before; }
}

function latency(el, d, what) {
  // "server": the request's time in the server, waiting for the model included
  $(el).textContent = `${what ? what + ": " : ""}${d.ms.toFixed(0)} ms server, ${d.roundTrip.toFixed(0)} ms total`;
}

function show(id, url) {
  $(id).src = url;
  document.querySelectorAll(`a.dl[data-for="${id}"]`).forEach((a) => { a.href = url; });
}

// An action whose answer was dropped for a newer one (a slider moved again, another upload chosen):
// no outcome to show
const DROPPED = Symbol("dropped");

// Runs an action of the user's: its error replaces the message shown; its success clears an error of an
// action begun before it (corrected input, or the page moved on), never one of an action begun after it
// (still to be seen), nor a notice (ok) it said itself
async function guarded(fn) {
  const seq = ++state.actions;
  let out;
  try { out = await fn(); } catch (e) { say(e.message, false, seq); return; }
  if (out !== DROPPED && state.shown && !state.shown.ok && state.shown.seq < seq) say("");
}

// While a request runs its buttons are disabled (a double click sends one request) and its card
// is marked busy; both come back however it ends. A card may hold several requests at once (B
// from a seed while mixing): it stays marked until the last one ends.
async function busy(card, buttons, fn) {
  const c = $(card);
  buttons.forEach((id) => { $(id).disabled = true; });
  c.dataset.busy = Number(c.dataset.busy || 0) + 1;
  c.classList.add("busy"); c.setAttribute("aria-busy", "true");
  try { return await fn(); } finally {
    buttons.forEach((id) => { $(id).disabled = false; });
    c.dataset.busy = Number(c.dataset.busy) - 1;
    if (c.dataset.busy === "0") { c.classList.remove("busy"); c.removeAttribute("aria-busy"); }
  }
}

// --- model and sliders ---------------------------------------------------------------------
async function loadInfo() {
  const info = state.info = await call("/api/info");
  const kimg = info.kimg === null ? "length of training not recorded" : `${info.kimg.toFixed(1)} kimg`;
  // an official ALAE checkpoint (podgorskiy/ALAE) is no alae_fast run: "official" alone read as a preset's name
  const setup = info.setup === "official" ? "official ALAE checkpoint (no alae_fast training run)" : info.setup;
  // which weights draw the pictures: the EMA copy, unless an official file was opened with --no-ema
  // (a server without the field: the EMA copy)
  const weights = info.ema === false ? " · training weights (--no-ema), not the EMA copy" : "";
  $("model").textContent = `${setup} · ${kimg} · ${info.resolution}×${info.resolution}` +
    ` · ${info.channels === 1 ? "grey" : "RGB"} · w ${info.latent_size}-d · ${info.num_ws} style input${info.num_ws > 1 ? "s" : ""}` +
    ` · ${info.checkpoint}${weights}`;
  $("footer-weights").textContent = info.ema === false ? "the training weights' (--no-ema: not the EMA copy)"
    : "the EMA model's";
  const psi = $("psi"), t = info.truncation;
  psi.min = info.psi_range[0]; psi.max = info.psi_range[1]; psi.value = t.psi;
  if (Number(psi.value) !== t.psi) { psi.step = "any"; psi.value = t.psi; }  // off the 0.01 grid: kept exact
  showPsi();
  $("cutoff").max = info.num_ws; $("cutoff").value = t.cutoff;
  $("cutoff-label").hidden = info.num_ws < 2;
  showScope();
  // an MLP ALAE's G has no noise inputs: every mode draws the same picture, so there is no
  // choice to offer (the CLI refuses --noise-mode there). A server without the field has noise.
  $("noise-label").hidden = info.noise_inputs === false;
  $("footer-noise").hidden = info.noise_inputs === false;
  // mixing swaps style inputs between A and B: with one input there is nothing to swap (the
  // server refuses /api/mix), and the card's title names only what the card holds
  const mixes = info.num_ws >= 2;
  $("mix-block").hidden = !mixes;
  $("pair-title").textContent = mixes ? "Two images: style mixing and interpolation" : "Two images: interpolation";
  document.querySelectorAll(".levels").forEach((s) => {
    const r = info.style_levels[s.dataset.level]; if (r) s.textContent = `(inputs ${r[0]}-${r[1]})`;
  });
  $("steps").max = info.max_steps;
  $("refine-steps").max = info.max_refine_steps;
  document.querySelectorAll("input.seed").forEach((f) => { f.title = `an integer in ${info.seed_range}, as alae-fast generate --seed`; });
  buildSliders();
  if (info.notes.length) say(info.notes.join("; "), true);
}

// The sliders in the server's order (the order of /api/edit's amounts and names), whatever group
// each is drawn in
function sliders() {
  return Array.from(document.querySelectorAll("#sliders input[type=range]"))
    .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index));
}

// The groups the sliders are drawn in, by the kind /api/info gives each direction (a kind this page
// does not know goes with the attributes). Pairs are many (45 for the digits) and fold away while
// another group is on the page.
const GROUPS = [
  { kind: "class", title: "Classes", hint: "towards the class, away from all the others (one vs the rest)" },
  { kind: "attribute", title: "Attributes", hint: "from direction files (--directions, the run's directions/) or added here" },
  { kind: "pair", title: "Pairs A → B", hint: "from class A towards class B (alae-fast directions)", fold: true },
];
function groupOf(d) { return GROUPS.some((g) => g.kind === d.kind) ? d.kind : "attribute"; }
// "3-8" of a pair reads "3 → 8"; a suffix the server gave a second one ("3-8 (2)") stays
function label(d) { return d.kind === "pair" ? d.name.replace("-", " → ") : d.name; }
function lengthText(d) {
  return Math.abs(d.norm - 1) < 5e-4 ? "unit length" : `length ${d.norm.toPrecision(3)} as given, scaled to 1 here`;
}

function buildSliders() {
  // a direction added or removed: the other sliders stay where they were, and the edit is made
  // again with the directions now on the page (an edit still on its way is dropped)
  const kept = new Map(sliders().map((s) => [s.dataset.name, Number(s.value)]));
  state.editSeq++;
  const box = $("sliders");
  box.innerHTML = "";
  const dirs = state.info.directions;
  if (!dirs.length) {
    box.innerHTML = '<p class="hint">No directions: start the server with --directions DIR, or add a .npy below.</p>';
  }
  const shown = GROUPS.filter((g) => dirs.some((d) => groupOf(d) === g.kind));
  for (const g of shown) {
    // a folded group is a <details>, whose summary says how many of its sliders are off the image's own value
    const fold = g.fold && shown.length > 1;
    const group = document.createElement(fold ? "details" : "section");
    group.className = "group"; group.dataset.kind = g.kind;
    const head = document.createElement(fold ? "summary" : "div");
    head.className = "group-head";
    const members = dirs.map((d, i) => [d, i]).filter(([d]) => groupOf(d) === g.kind);
    head.innerHTML = `<b></b> <span class="count"></span><span class="scope"></span> <span class="moved"></span>`;
    head.querySelector("b").textContent = g.title;
    head.querySelector(".count").textContent = `(${members.length})`;
    head.querySelector(".scope").textContent = ` ${g.hint}`;
    if (fold) {
      group.open = Boolean(state.unfolded[g.kind]);  // as the user left it before a rebuild
      group.addEventListener("toggle", () => { state.unfolded[g.kind] = group.open; });
    }
    const grid = document.createElement("div"); grid.className = "grid";
    group.append(head, grid);
    members.forEach(([d, i]) => grid.append(...sliderRow(d, i)));
    box.append(group);
  }
  if (!state.current) return;
  setSliders(state.current.values);
  setSliders(sliders().map((s) => kept.has(s.dataset.name) ? kept.get(s.dataset.name) : undefined));
  scheduleEdit();
}

function sliderRow(d, i) {
  const label_ = document.createElement("label");
  label_.textContent = label(d); label_.htmlFor = `dir-${i}`;
  label_.title = `${label(d)} (${d.kind}) — ${d.source}; ${lengthText(d)}`;
  const input = document.createElement("input");
  // step "any": a snapping step would move the image's own value, so "reset" would not give it back
  Object.assign(input, { type: "range", id: `dir-${i}`, min: d.lo, max: d.hi, step: "any" });
  input.dataset.index = i; input.dataset.name = d.name;
  input.disabled = !state.current;
  const out = document.createElement("output"); out.id = `dir-${i}-out`;
  input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(2); countMoved(); scheduleEdit(); });
  // only uploaded directions can go: those the server started with are how it was started
  const rm = document.createElement(d.removable ? "button" : "span");
  if (d.removable) {
    Object.assign(rm, { type: "button", id: `dir-${i}-remove`, className: "remove", textContent: "×",
                        title: `remove direction ${d.name}` });
    rm.setAttribute("aria-label", `remove direction ${d.name}`);
    rm.addEventListener("click", () => guarded(() => removeDirection(d.name, rm)));
  }
  return [label_, input, out, rm];
}

// How many sliders of each folded group sit off the image's own value: an edit along a folded
// group's directions is said in its summary, not made unseen
function countMoved() {
  document.querySelectorAll("#sliders .group").forEach((g) => {
    const own = state.current ? state.current.values : [];
    let n = 0;
    g.querySelectorAll("input[type=range]").forEach((s) => {
      const v = own[Number(s.dataset.index)];
      const moved = v !== undefined && Math.abs(Number(s.value) - v) > 1e-9;
      s.labels[0].classList.toggle("moved", moved); n += moved;
    });
    g.querySelector(".moved").textContent = n ? `· ${n} moved` : "";
  });
}

function setSliders(values) {
  sliders().forEach((s) => {
    const v = values[Number(s.dataset.index)];
    if (v === undefined) return;
    // widen the range when the image lies outside it, so its own value is reachable
    if (v < Number(s.min)) s.min = v; if (v > Number(s.max)) s.max = v;
    s.value = v; s.disabled = false;
    $(`${s.id}-out`).textContent = Number(v).toFixed(2);
  });
  countMoved();
}

function amounts() { return sliders().map((s) => Number(s.value)); }

async function removeDirection(name, button) {
  button.disabled = true;  // a second click would only be told the direction is gone
  try {
    const d = await call("/api/directions?name=" + encodeURIComponent(name), undefined, false, "DELETE");
    await directionsChanged(d.directions);
    say(`removed direction ${d.name}`, true);
  } finally { button.disabled = false; }
}

async function directionsChanged(directions) {
  state.info.directions = directions;
  if (state.current) state.current.values = (await call("/api/values", { w: state.current.w })).values;
  buildSliders();
}

let editTimer = null;
function scheduleEdit() {
  clearTimeout(editTimer);
  editTimer = setTimeout(() => guarded(runEdit), 40);
}

async function runEdit() {
  if (!state.current) return DROPPED;
  const seq = ++state.editSeq;
  // names: the server refuses (409) amounts meant for directions it no longer has
  const body = { w: state.current.w, amounts: amounts(), names: sliders().map((s) => s.dataset.name) };
  let d;
  try { d = await waiting("edit-ms", () => call("/api/edit", body)); } catch (e) {
    if (seq !== state.editSeq) return DROPPED;  // superseded: its answer would have been dropped too
    throw e;
  }
  if (seq !== state.editSeq) return DROPPED;  // a newer slider position is on its way
  state.lastEdit = body;
  state.current.edited = d.ws;  // the styles of the picture shown as "edited": what "use as A/B" takes
  show("edited", d.image); latency("edit-ms", d, "edit"); state.edits++;
}

function setCurrent(w, values) {
  state.current = { w, values, edited: w };
  state.editSeq++;  // an edit of the previous image still on its way is dropped
  setSliders(values);
}

// --- encode --------------------------------------------------------------------------------
// The descent steps the refine field asks for (0: ALAE's own E(x)), read before anything is sent: a
// field it cannot read ("" from a number input) is refused by name, not sent as 0
function refineSteps() {
  const max = state.info ? state.info.max_refine_steps : Infinity;
  const n = wholeNumber($("refine-steps").value, 0, max);
  if (n === null) {
    throw new Error(`refine steps: enter a whole number ${Number.isFinite(max) ? `from 0 to ${max}` : "of 0 or more"}` +
                    " (0: ALAE's own E(x))");
  }
  return n;
}
function stepsText(n) { return `${n} step${n === 1 ? "" : "s"}`; }

async function encodeFile(file) {
  if (!file) return DROPPED;
  quiet();
  const limit = state.info ? state.info.max_upload_bytes : Infinity;
  if (file.size > limit) {  // the server refuses it too (413); saying so here spares the upload
    let [size, max] = [sizeText(file.size), sizeText(limit)];
    if (size === max) [size, max] = [`${file.size} bytes`, `${limit} bytes`];  // one byte past it
    throw new Error(`${file.name} is ${size}; the limit is ${max}` +
                    (state.current ? " (the pictures shown are still those of the previous image)" : ""));
  }
  const steps = refineSteps();
  const seq = ++state.encodeSeq;
  // a refinement takes seconds where an encoding takes milliseconds: besides the busy card, say which
  // is running (the latest upload's; an older one answering late leaves it)
  $("encode-status").textContent = steps ? `refining E(x) by ${stepsText(steps)} of descent…` : "encoding…";
  if (steps) state.refining++;
  return await busy("encode-card", [], async () => {
    try {
      let d;
      try { d = await call(steps ? `/api/encode?refine_steps=${steps}` : "/api/encode", file, true); } catch (e) {
        if (seq !== state.encodeSeq) return DROPPED;  // a newer upload is on its way: its outcome is what counts
        throw new Error(e.message + (state.current ? " (the pictures shown are still those of the previous image)" : ""));
      }
      // two uploads in quick succession may answer out of order: the last one chosen is shown
      if (seq !== state.encodeSeq) return DROPPED;
      show("original", d.original); show("reconstruction", d.reconstruction); show("edited", d.reconstruction);
      // what the server did (d.refine_steps), not what the field says now: it may have changed meanwhile
      const how = d.refine_steps ? `G(w), E(x) refined by ${stepsText(d.refine_steps)}` : "G(E(x))";
      $("rec-label").textContent = `reconstruction ${how}`;
      $("mse").textContent = `reconstruction ${how}: MSE ${d.mse.toFixed(4)} (pixels in [-1, 1])`;
      latency("encode-ms", d, d.refine_steps ? "encode and refine" : "encode"); $("edit-ms").textContent = "";
      setCurrent(d.w, d.values);  // the refined w, when refined: edits, A and B start from it
      state.encoded = d;
      if (d.notice) say(`${file.name}: ${d.notice}`, true);
    } finally {
      if (seq === state.encodeSeq) $("encode-status").textContent = "";
      if (steps) state.refining--;
    }
  });
}

$("file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  e.target.value = "";  // choosing the same file again encodes it again
  guarded(() => encodeFile(f));
});
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
// a drop without a file (a link or text dragged from another page) is said, not silently ignored
drop.addEventListener("drop", (e) => guarded(() => {
  const f = e.dataTransfer.files[0];
  if (!f) throw new Error("the drop held no file (a link or text?): drop an image file (PNG, JPEG, WebP, BMP or GIF), or choose one");
  return encodeFile(f);
}));
$("reset").addEventListener("click", () => guarded(() => {
  if (!state.current) throw new Error("reset sliders: encode an image (or edit a sample) first");
  setSliders(state.current.values); scheduleEdit();
}));

// The server takes 1 to 60 printable characters (str.isprintable: no \p{C} or \p{Z} but the
// space) and refuses others by name; a file's name is made one here, where the user sees the
// result in the slider's label and in "added direction ...". Array.from counts code points, as
// Python's len does.
function directionName(fileName) {
  const kept = Array.from(fileName.replace(/\.npy$/i, "").replace(/[\p{C}\p{Z}]/gu, (c) => (c === " " ? c : "")));
  return kept.slice(0, 60).join("") || "uploaded";
}

$("direction-file").addEventListener("change", (e) => guarded(async () => {
  const f = e.target.files[0]; if (!f) return DROPPED;
  e.target.value = "";  // cleared on failure too: the same file can be chosen again
  const d = await call("/api/directions?name=" + encodeURIComponent(directionName(f.name)), f, true);
  await directionsChanged(d.directions);
  say(`added direction ${d.name}`, true);
}));

// --- generate ------------------------------------------------------------------------------
// psi applies to style inputs [0, cutoff), by default the config's cutoff: `alae-fast generate`'s rule
function fmtPsi(v) { return String(Math.round(Number(v) * 1e4) / 1e4); }
function showPsi() { $("psi-out").textContent = fmtPsi($("psi").value); }
function scope(cutoff, n) {
  if (n === 1) return "its one style input";
  if (cutoff >= n) return `all ${n} styles`;
  // cutoff >= 1: the server's answer, or showScope's check; one style is not a range ("styles 0-0")
  return cutoff === 1 ? `style 0 of ${n}` : `styles 0-${cutoff - 1} of ${n}`;
}
// psi 1 truncates nothing: the cutoff would change nothing (the server refuses one then, as
// `alae-fast generate --cutoff` does), so its field is disabled and none is sent
function untruncated() { return Number($("psi").value) === 1; }
// A cutoff generate would refuse (0, past num_ws, 1.5, empty) reads as the refusal does, not as
// a scope: 0 read "on no style input", as if generate would take it
function showScope() {
  const t = state.info.truncation, n = state.info.num_ws, c = wholeNumber($("cutoff").value, 1, n);
  $("cutoff").disabled = untruncated();
  if (untruncated()) { $("trunc-scope").textContent = "(ψ 1: no truncation)"; return; }
  if (c === null) { $("trunc-scope").textContent = `(cutoff: enter a whole number from 1 to ${n})`; return; }
  const configs = c === t.cutoff && n > 1;
  $("trunc-scope").textContent = `on ${scope(c, n)}` + (configs ? " (the config's)" : "");
}
$("psi").addEventListener("input", () => { showPsi(); showScope(); });
$("cutoff").addEventListener("input", showScope);
// A seed field's text as a BigInt in the server's range, [0, seed_limit) (the CLI's and the Python
// API's: alae_fast.inference.sampling.SEED_LIMIT, 2**63), or the refusal the server would give. The
// seed fields are text fields: a number field steps (and sanitizes) through doubles, exact to 2**53 only
function readSeed(text, field) {
  const t = String(text).trim(), seed = wholeSeed(t, BigInt(state.info.seed_limit));
  if (seed === null) {  // an empty field is refused, not taken as seed 0
    throw new Error(`${field}: expected an integer in ${state.info.seed_range} (as alae-fast generate --seed), ` +
                    `got ${t === "" ? "an empty field" : JSON.stringify(t.length > 40 ? t.slice(0, 40) + "…" : t)}`);
  }
  return seed;
}
async function generate(seedText, field) {
  const seed = readSeed(seedText, field || "seed");  // sent as its exact digits (jsonText)
  // without noise inputs the select is hidden at "const", the server's default: sent all the same,
  // a picture no mode changes
  const body = { seed, psi: Number($("psi").value), noise_mode: $("noise").value };
  if (untruncated()) return await call("/api/generate", body);
  // left out at the config's: the server's default then, as the CLI's without --cutoff
  // (a number input holding text it cannot read gives "": said here, not as the server's type error)
  const cutoff = wholeNumber($("cutoff").value, 1, state.info.num_ws);
  if (cutoff === null) throw new Error(`cutoff: enter a whole number from 1 to ${state.info.num_ws}`);
  if (cutoff !== state.info.truncation.cutoff) body.cutoff = cutoff;
  return await call("/api/generate", body);
}
$("generate").addEventListener("click", () => guarded(() => busy("generate-card", ["generate", "random-seed"], async () => {
  quiet();
  const seed = $("seed").value.trim(), noise = $("noise").value;  // as sent: the fields may change meanwhile
  const d = await waiting("generate-ms", () => generate(seed));
  state.generated = d; d.seed = readSeed(seed, "seed"); show("generated", d.image); latency("generate-ms", d);
  const on = d.psi === 1 ? "(no truncation)" : `on ${scope(d.cutoff, state.info.num_ws)}`;
  const noiseText = state.info.noise_inputs === false ? "no noise inputs" : `noise ${noise}`;
  $("gen-settings").textContent = `seed ${readSeed(seed, "seed")}, ψ ${fmtPsi(d.psi)} ${on}, ${noiseText}`;
})));
$("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 100000); $("generate").click(); });
$("gen-edit").addEventListener("click", () => guarded(() => {
  if (!state.generated) throw new Error("edit this sample: generate a sample first");
  // without noise: the picture the edits (which decode without noise) start from
  show("original", state.generated.plain); show("reconstruction", state.generated.plain); show("edited", state.generated.plain);
  $("rec-label").textContent = "reconstruction";
  $("mse").textContent = "a generated sample, without noise (no reconstruction error)";
  $("encode-ms").textContent = $("edit-ms").textContent = "";  // they timed the previous upload
  setCurrent(state.generated.ws, state.generated.values);  // styles: truncated below the cutoff only
}));

// --- A, B: mixing and interpolation -------------------------------------------------------
// A slot's seed field and caption say where its picture came from: a seed field left at another
// seed beside a picture that is not that seed's would be read as the picture's
function setSlot(which, w, image, seed, from) {
  state[which] = { w }; show(`slot-${which}`, image);
  $(`seed-${which}`).value = seed === null ? "" : String(seed);
  $(`from-${which}`).textContent = from;
}
for (const which of ["a", "b"]) {
  const slot = which.toUpperCase();
  // the picture shown as "edited" with its own w (the slider edit, or the image itself before any)
  $(`use-${which}`).addEventListener("click", () => guarded(() => {
    if (!state.current) throw new Error(`use as ${slot}: encode an image (or edit a sample) first`);
    setSlot(which, state.current.edited, $("edited").src, null, "the edited picture above");
  }));
  // a sample goes to A or B without noise: mixing and interpolation decode its w without noise
  $(`gen-${which}`).addEventListener("click", () => guarded(() => {
    if (!state.generated) throw new Error(`use as ${slot}: generate a sample first`);
    const g = state.generated;
    setSlot(which, g.ws, g.plain, g.seed, `the sample of seed ${g.seed}, ψ ${fmtPsi(g.psi)}, without noise`);
  }));
  $(`seed-${which}-go`).addEventListener("click", () => guarded(() => busy("pair-card", [`seed-${which}-go`], async () => {
    quiet();
    const text = $(`seed-${which}`).value;
    const d = await waiting("pair-ms", () => generate(text, `seed of ${slot}`));
    const seed = readSeed(text, `seed of ${slot}`);
    setSlot(which, d.ws, d.plain, seed, `seed ${seed}, ψ ${fmtPsi(d.psi)}`);
  })));
}
function needPair() { if (!state.a || !state.b) throw new Error("fill both A and B first"); }
$("mix").addEventListener("click", () => guarded(() => busy("pair-card", ["mix"], async () => {
  quiet(); needPair();
  const d = await waiting("mix-ms", () => call("/api/mix", { wa: state.a.w, wb: state.b.w }));
  for (const k of ["coarse", "middle", "fine"]) show(`mix-${k}`, d[k]);
  latency("mix-ms", d);
})));
$("interpolate").addEventListener("click", () => guarded(() => busy("pair-card", ["interpolate"], async () => {
  quiet(); needPair();
  const steps = wholeNumber($("steps").value, 2, state.info.max_steps);  // "" (unreadable text): not 0 steps
  if (steps === null) throw new Error(`steps: enter a whole number from 2 to ${state.info.max_steps}`);
  const d = await waiting("interp-ms", () => call("/api/interpolate", { wa: state.a.w, wb: state.b.w, steps }));
  const strip = $("strip"); strip.innerHTML = "";
  d.images.forEach((url, i) => {
    const f = document.createElement("figure");
    const t = d.images.length > 1 ? i / (d.images.length - 1) : 0;
    f.innerHTML = `<img alt="" id="interp-${i}"><figcaption>${i === 0 ? "A" : i === d.images.length - 1 ? "B" : "t " + t.toFixed(2)} <a class="dl" data-for="interp-${i}" download="interpolation-${i}.png">PNG</a></figcaption>`;
    strip.append(f); show(`interp-${i}`, url);
  });
  latency("interp-ms", d);
})));

$("message").addEventListener("click", () => say(""));
guarded(loadInfo);
