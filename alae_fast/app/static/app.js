// The page of `alae-fast serve`: plain JavaScript, no libraries, no network beyond this server.
// State lives here (window.alae, read by the browser test); the server holds none per user.
"use strict";
const $ = (id) => document.getElementById(id);
const state = window.alae = { info: null, current: null, a: null, b: null, editSeq: 0, edits: 0 };

function say(text, ok) {  // errors stay in view while scrolling (CSS: sticky); a click closes the message
  const m = $("message");
  if (!text) { m.hidden = true; return; }
  m.textContent = text; m.className = "message" + (ok ? " ok" : ""); m.hidden = false;
}

async function call(path, body, raw) {
  const t0 = performance.now();
  const opts = { method: body === undefined ? "GET" : "POST" };
  if (body !== undefined) {
    opts.body = raw ? body : JSON.stringify(body);
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

function latency(el, d, what) {
  // "server": the request's time in the server, waiting for the model included
  $(el).textContent = `${what ? what + ": " : ""}${d.ms.toFixed(0)} ms server, ${d.roundTrip.toFixed(0)} ms total`;
}

function show(id, url) {
  $(id).src = url;
  document.querySelectorAll(`a.dl[data-for="${id}"]`).forEach((a) => { a.href = url; });
}

async function guarded(fn) {
  try { await fn(); } catch (e) { say(e.message); }
}

// --- model and sliders ---------------------------------------------------------------------
async function loadInfo() {
  const info = state.info = await call("/api/info");
  const kimg = info.kimg === null ? "length of training not recorded" : `${info.kimg.toFixed(1)} kimg`;
  $("model").textContent = `${info.setup} · ${kimg} · ${info.resolution}×${info.resolution}` +
    ` · ${info.channels === 1 ? "grey" : "RGB"} · w ${info.latent_size}-d · ${info.num_ws} style input${info.num_ws > 1 ? "s" : ""}` +
    ` · ${info.checkpoint}`;
  $("psi").min = info.psi_range[0]; $("psi").max = info.psi_range[1];
  $("mix-block").hidden = info.num_ws < 2;
  document.querySelectorAll(".levels").forEach((s) => {
    const r = info.style_levels[s.dataset.level]; if (r) s.textContent = `(inputs ${r[0]}-${r[1]})`;
  });
  $("steps").max = info.max_steps;
  buildSliders();
  if (info.notes.length) say(info.notes.join("; "), true);
}

function buildSliders() {
  const box = $("sliders");
  box.innerHTML = "";
  const dirs = state.info.directions;
  if (!dirs.length) {
    box.innerHTML = '<p class="hint">No directions: start the server with --directions DIR, or add a .npy below.</p>';
    return;
  }
  dirs.forEach((d, i) => {
    const label = document.createElement("label");
    label.textContent = d.name; label.title = `${d.name} — ${d.source}`; label.htmlFor = `dir-${i}`;
    const input = document.createElement("input");
    // step "any": a snapping step would move the image's own value, so "reset" would not give it back
    Object.assign(input, { type: "range", id: `dir-${i}`, min: d.lo, max: d.hi, step: "any" });
    input.dataset.index = i;
    input.disabled = !state.current;
    const out = document.createElement("output"); out.id = `dir-${i}-out`;
    input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(2); scheduleEdit(); });
    box.append(label, input, out);
  });
  if (state.current) setSliders(state.current.values);
}

function setSliders(values) {
  document.querySelectorAll("#sliders input[type=range]").forEach((s) => {
    const v = values[Number(s.dataset.index)];
    if (v === undefined) return;
    // widen the range when the image lies outside it, so its own value is reachable
    if (v < Number(s.min)) s.min = v; if (v > Number(s.max)) s.max = v;
    s.value = v; s.disabled = false;
    $(`${s.id}-out`).textContent = Number(v).toFixed(2);
  });
}

function amounts() {
  return Array.from(document.querySelectorAll("#sliders input[type=range]")).map((s) => Number(s.value));
}

let editTimer = null;
function scheduleEdit() {
  clearTimeout(editTimer);
  editTimer = setTimeout(() => guarded(runEdit), 40);
}

async function runEdit() {
  if (!state.current) return;
  const seq = ++state.editSeq;
  const body = { w: state.current.w, amounts: amounts() };
  const d = await call("/api/edit", body);
  if (seq !== state.editSeq) return;  // a newer slider position is on its way
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
async function encodeFile(file) {
  if (!file) return;
  say("");
  const limit = state.info ? state.info.max_upload_bytes : Infinity;
  if (file.size > limit) {  // the server refuses it too (413); saying so here spares the upload
    throw new Error(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; the limit is ${(limit / 2 ** 20).toFixed(1)} MiB`);
  }
  $("encode-card").classList.add("busy");
  try {
    let d;
    try { d = await call("/api/encode", file, true); } catch (e) {
      throw new Error(e.message + (state.current ? " (the pictures shown are still those of the previous image)" : ""));
    }
    show("original", d.original); show("reconstruction", d.reconstruction); show("edited", d.reconstruction);
    $("mse").textContent = `reconstruction G(E(x)): MSE ${d.mse.toFixed(4)} (pixels in [-1, 1])`;
    latency("encode-ms", d, "encode"); $("edit-ms").textContent = "";
    setCurrent(d.w, d.values);
    state.encoded = d;
    if (d.notice) say(`${file.name}: ${d.notice}`, true);
  } finally { $("encode-card").classList.remove("busy"); }
}

$("file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  e.target.value = "";  // choosing the same file again encodes it again
  guarded(() => encodeFile(f));
});
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => guarded(() => encodeFile(e.dataTransfer.files[0])));
$("reset").addEventListener("click", () => { if (state.current) { setSliders(state.current.values); scheduleEdit(); } });

$("direction-file").addEventListener("change", (e) => guarded(async () => {
  const f = e.target.files[0]; if (!f) return;
  e.target.value = "";  // cleared on failure too: the same file can be chosen again
  const d = await call("/api/directions?name=" + encodeURIComponent(f.name.replace(/\.npy$/, "")), f, true);
  state.info.directions = d.directions;
  if (state.current) state.current.values = (await call("/api/values", { w: state.current.w })).values;
  buildSliders();
  say(`added direction ${d.name}`, true);
}));

// --- generate ------------------------------------------------------------------------------
$("psi").addEventListener("input", () => { $("psi-out").textContent = Number($("psi").value).toFixed(2); });
async function generate(seed) {
  // an empty field (or text a number input cannot hold) reads as "": refused, not taken as seed 0
  if (!/^\d+$/.test(String(seed).trim())) throw new Error("seed: enter a whole number, 0 or more");
  const body = { seed: Number(seed), psi: Number($("psi").value), noise_mode: $("noise").value };
  const d = await call("/api/generate", body);
  return d;
}
$("generate").addEventListener("click", () => guarded(async () => {
  say("");
  const d = await generate($("seed").value);
  state.generated = d; show("generated", d.image); latency("generate-ms", d);
}));
$("random-seed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 100000); $("generate").click(); });
$("gen-edit").addEventListener("click", () => {
  if (!state.generated) return say("generate a sample first");
  // without noise: the picture the edits (which decode without noise) start from
  show("original", state.generated.plain); show("reconstruction", state.generated.plain); show("edited", state.generated.plain);
  $("mse").textContent = "a generated sample, without noise (no reconstruction error)";
  setCurrent(state.generated.w, state.generated.values);
});

// --- A, B: mixing and interpolation -------------------------------------------------------
function setSlot(which, w, image) { state[which] = { w }; show(`slot-${which}`, image); }
// the picture shown as "edited" with its own w (the slider edit, or the image itself before any)
$("use-a").addEventListener("click", () => state.current ? setSlot("a", state.current.edited, $("edited").src) : say("encode an image first"));
$("use-b").addEventListener("click", () => state.current ? setSlot("b", state.current.edited, $("edited").src) : say("encode an image first"));
// a sample goes to A or B without noise: mixing and interpolation decode its w without noise
$("gen-a").addEventListener("click", () => state.generated ? setSlot("a", state.generated.w, state.generated.plain) : say("generate a sample first"));
$("gen-b").addEventListener("click", () => state.generated ? setSlot("b", state.generated.w, state.generated.plain) : say("generate a sample first"));
for (const which of ["a", "b"]) {
  $(`seed-${which}-go`).addEventListener("click", () => guarded(async () => {
    const d = await generate($(`seed-${which}`).value); setSlot(which, d.w, d.plain);
  }));
}
function needPair() { if (!state.a || !state.b) throw new Error("fill both A and B first"); }
$("mix").addEventListener("click", () => guarded(async () => {
  needPair(); say("");
  const d = await call("/api/mix", { wa: state.a.w, wb: state.b.w });
  for (const k of ["coarse", "middle", "fine"]) show(`mix-${k}`, d[k]);
  latency("mix-ms", d);
}));
$("interpolate").addEventListener("click", () => guarded(async () => {
  needPair(); say("");
  const d = await call("/api/interpolate", { wa: state.a.w, wb: state.b.w, steps: Number($("steps").value) });
  const strip = $("strip"); strip.innerHTML = "";
  d.images.forEach((url, i) => {
    const f = document.createElement("figure");
    const t = d.images.length > 1 ? i / (d.images.length - 1) : 0;
    f.innerHTML = `<img alt="" id="interp-${i}"><figcaption>${i === 0 ? "A" : i === d.images.length - 1 ? "B" : "t " + t.toFixed(2)} <a class="dl" data-for="interp-${i}" download="interpolation-${i}.png">PNG</a></figcaption>`;
    strip.append(f); show(`interp-${i}`, url);
  });
  latency("interp-ms", d);
}));

$("message").addEventListener("click", () => say(""));
guarded(loadInfo);
