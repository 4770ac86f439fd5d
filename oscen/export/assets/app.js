// The page of an oscen web export: loads the kernel, builds a control per value input, a keyboard
// and Web MIDI for patches with a MIDI input, a level meter and a scope, and plays through
// worklet.js. `?render=SECONDS` renders offline instead (for tests): window.oscenRender resolves to
// the channels as arrays of floats; `&params=` and `&events=` (JSON lists of [frame, id, value])
// schedule changes at exact frames.

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

async function load() {
  const [manifest, kernel, math, state] = await Promise.all([
    fetch("manifest.json").then((r) => r.json()),
    ...["kernel.wasm", "math.wasm", "state.bin"].map((f) =>
      fetch(f).then((r) => {
        if (!r.ok) throw new Error(`${f}: ${r.status}`);
        return r.arrayBuffer();
      })
    ),
  ]);
  return { manifest, kernel, math, state };
}

function schedule(manifest) {
  const items = [];
  const parse = (name) => {
    const text = query.get(name);
    if (!text) return [];
    const list = JSON.parse(text);
    if (!Array.isArray(list)) throw new Error(`${name} must be a JSON list of [frame, id, value]`);
    return list;
  };
  for (const [frame, id, value, ramp] of parse("params")) items.push({ type: "param", frame, id, value, ramp: ramp || 0 });
  for (const [frame, id, value] of parse("events")) items.push({ type: "event", frame, id, value });
  return items;
}

function processorOptions(bundle, extra) {
  // copies: the same buffers may be handed to several contexts
  return {
    manifest: bundle.manifest,
    kernel: bundle.kernel.slice(0),
    math: bundle.math.slice(0),
    state: bundle.state.slice(0),
    ...extra,
  };
}

async function renderOffline(bundle, seconds) {
  const m = bundle.manifest;
  const frames = Math.round(seconds * m.sample_rate);
  const ctx = new OfflineAudioContext({ numberOfChannels: m.channels, length: frames, sampleRate: m.sample_rate });
  await ctx.audioWorklet.addModule("worklet.js");
  const node = new AudioWorkletNode(ctx, "oscen-processor", {
    numberOfInputs: 0,
    outputChannelCount: [m.channels],
    processorOptions: processorOptions(bundle, { schedule: schedule(m) }),
  });
  window.oscenFaults = [];
  node.port.onmessage = (e) => {
    if (e.data.type === "fault" || e.data.type === "error") window.oscenFaults.push(e.data.message);
  };
  node.connect(ctx.destination);
  const t0 = performance.now();
  const buffer = await ctx.startRendering();
  window.oscenRenderWallSeconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 50)); // let the processor's last messages arrive
  const channels = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(Array.from(buffer.getChannelData(c)));
  return channels;
}

// ------------------------------------------------------------------------- the live page
function showFault(message) {
  const box = $("fault");
  box.textContent = `Fault: ${message} (the page keeps running; reload to reset the patch)`;
  box.style.display = "block";
}

function controlFor(p, send) {
  const row = document.createElement("div");
  row.className = "param";
  const label = document.createElement("label");
  label.textContent = p.id;
  label.title = p.id;
  const slider = document.createElement("input");
  slider.type = "range";
  slider.min = 0;
  slider.max = 1000;
  const out = document.createElement("output");
  const toValue = (x) => (p.log ? p.min * (p.max / p.min) ** (x / 1000) : p.min + ((p.max - p.min) * x) / 1000);
  const toSlider = (v) =>
    p.log ? (1000 * Math.log(v / p.min)) / Math.log(p.max / p.min) : (1000 * (v - p.min)) / (p.max - p.min);
  slider.value = Math.max(0, Math.min(1000, toSlider(p.default)));
  out.textContent = p.default.toPrecision(4);
  slider.addEventListener("input", () => {
    const v = toValue(+slider.value);
    out.textContent = v.toPrecision(4);
    send({ type: "param", id: p.id, value: v, ramp: 0.02 });
  });
  row.append(label, slider, out);
  return row;
}

function keyboard(send, status) {
  const kb = $("keyboard");
  const low = 48;
  const whites = [0, 2, 4, 5, 7, 9, 11];
  const keys = new Map();
  let whiteIndex = 0;
  const totalWhites = 15;
  for (let note = low; note <= low + 24; note++) {
    const pc = note % 12;
    const key = document.createElement("div");
    const black = !whites.includes(pc);
    key.className = black ? "key black" : "key";
    if (black) key.style.left = `${(whiteIndex / totalWhites) * 100 - 2.25}%`;
    else whiteIndex++;
    const on = (e) => {
      e.preventDefault();
      send({ type: "event", id: "midi", value: [144, note, 100] });
      key.classList.add("down");
    };
    const off = () => {
      if (!key.classList.contains("down")) return;
      send({ type: "event", id: "midi", value: [128, note, 0] });
      key.classList.remove("down");
    };
    key.addEventListener("pointerdown", on);
    key.addEventListener("pointerup", off);
    key.addEventListener("pointerleave", off);
    kb.append(key);
    keys.set(note, key);
  }
  const map = "awsedftgyhujk";
  document.addEventListener("keydown", (e) => {
    const i = map.indexOf(e.key);
    if (i < 0 || e.repeat) return;
    send({ type: "event", id: "midi", value: [144, 60 + i, 100] });
    keys.get(60 + i)?.classList.add("down");
  });
  document.addEventListener("keyup", (e) => {
    const i = map.indexOf(e.key);
    if (i < 0) return;
    send({ type: "event", id: "midi", value: [128, 60 + i, 0] });
    keys.get(60 + i)?.classList.remove("down");
  });
  if (navigator.requestMIDIAccess) {
    navigator.requestMIDIAccess().then(
      (access) => {
        const connect = () => {
          const inputs = [...access.inputs.values()];
          status.textContent = inputs.length ? `MIDI: ${inputs.map((i) => i.name).join(", ")}` : "no MIDI input connected";
          for (const input of inputs) {
            input.onmidimessage = (msg) => {
              const [s, d1 = 0, d2 = 0] = msg.data;
              if (s >= 0x80 && s < 0xf0) send({ type: "event", id: "midi", value: [s, d1, d2] });
            };
          }
        };
        access.onstatechange = connect;
        connect();
      },
      () => (status.textContent = "Web MIDI not allowed")
    );
  } else status.textContent = "this browser has no Web MIDI";
}

function drawScope(analyser) {
  const canvas = $("scope");
  const g = canvas.getContext("2d");
  const data = new Float32Array(analyser.fftSize);
  const bar = $("meter").firstElementChild;
  const frame = () => {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const x of data) peak = Math.max(peak, Math.abs(x));
    const db = 20 * Math.log10(Math.max(peak, 1e-6));
    bar.style.width = `${Math.max(0, Math.min(100, ((db + 60) / 60) * 100))}%`;
    g.fillStyle = "#1a202c";
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.strokeStyle = "#63b3ed";
    g.beginPath();
    for (let i = 0; i < data.length; i++) {
      const x = (i / data.length) * canvas.width;
      const y = (0.5 - data[i] * 0.45) * canvas.height;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    }
    g.stroke();
    requestAnimationFrame(frame);
  };
  frame();
}

async function livePage(bundle) {
  const m = bundle.manifest;
  document.title = m.title;
  $("title").textContent = m.title;
  $("info").textContent = `${m.params.length} parameters, ${m.channels} channel${m.channels > 1 ? "s" : ""}, ${m.sample_rate} Hz`;
  let node = null;
  let ctx = null;
  const backlog = [];
  const send = (msg) => {
    if (!node) return backlog.push(msg);
    // stamped a little ahead so that it lands on its exact frame inside a later quantum
    node.port.postMessage({ ...msg, time: ctx.currentTime + 0.01 });
  };
  // The patch's own controls first: inputs of nodes it named, not driven by a signal (for a
  // polysynth, not every voice's oscillator); the rest behind "all parameters".
  const main = m.params.filter((p) => p.named && !p.driven);
  const shown = main.length ? main : m.params.filter((p) => !p.driven);
  for (const p of shown) $("params").append(controlFor(p, send));
  const rest = m.params.filter((p) => !shown.includes(p));
  if (rest.length) {
    const more = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = `all parameters (${rest.length} more)`;
    more.append(summary);
    for (const p of rest) more.append(controlFor(p, send));
    $("params").append(more);
  }
  // Trigger buttons for the event inputs the patch leaves to its player (not driven by another node)
  for (const e of m.events.filter((e) => !e.driven && e.id !== m.midi)) {
    const b = document.createElement("button");
    b.className = "off";
    b.textContent = `${e.id} ▶`;
    b.title = "send an event with value 1 (a trigger or a note-on at full velocity)";
    b.addEventListener("click", () => send({ type: "event", id: e.id, value: 1.0 }));
    $("events").append(b);
  }
  if (m.midi) {
    $("midi-section").hidden = false;
    keyboard(send, $("midi-status"));
  }
  $("start").addEventListener("click", async () => {
    if (ctx) {
      if (ctx.state === "running") {
        await ctx.suspend();
        $("start").textContent = "Resume audio";
      } else {
        await ctx.resume();
        $("start").textContent = "Pause audio";
      }
      return;
    }
    ctx = new AudioContext({ sampleRate: m.sample_rate, latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("worklet.js");
    node = new AudioWorkletNode(ctx, "oscen-processor", {
      numberOfInputs: 0,
      outputChannelCount: [m.channels],
      processorOptions: processorOptions(bundle, {}),
    });
    node.port.onmessage = (e) => {
      if (e.data.type === "fault" || e.data.type === "error") showFault(e.data.message);
    };
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    node.connect(analyser);
    analyser.connect(ctx.destination);
    drawScope(analyser);
    for (const msg of backlog.splice(0)) send(msg);
    $("start").textContent = "Pause audio";
    $("start").classList.remove("off");
  });
}

const bundle = load();
if (query.has("render")) {
  window.oscenRender = bundle.then((b) => renderOffline(b, parseFloat(query.get("render"))));
  window.oscenRender.catch((err) => (window.oscenRenderError = String(err)));
} else {
  bundle.then(livePage, (err) => showFault(`could not load the patch: ${err}`));
}
