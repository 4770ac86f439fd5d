// oscen's AudioWorkletProcessor: runs an exported kernel, sample-accurately.
//
// The processor receives the kernel, the math library, the initial memory image and the manifest
// (the memory layout) in processorOptions. Parameter changes and events arrive on the port (or in
// processorOptions.schedule for offline renders) stamped with the kernel frame they belong to; a
// render quantum is split at every parameter change, and events go into the kernel's own queues,
// which dispatch them at their exact sample. Both go through the kernel's exported set_param and
// queue_event, the same functions oscen.jit.GraphState calls from Python.

const FRAME_LIMIT = 2 ** 53;

class OscenProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.m = o.manifest;
    this.failed = false;
    this.pending = []; // {frame, seq, kind: "param" | "event", ...}, kept sorted by (frame, seq)
    this.seq = 0;
    this.contextOrigin = null; // context frame of kernel frame 0, fixed at the first quantum
    try {
      this.math = new WebAssembly.Instance(new WebAssembly.Module(o.math), {});
      const imports = { math: {} };
      for (const name of this.m.math_imports) imports.math[name] = this.math.exports[name];
      this.kernel = new WebAssembly.Instance(new WebAssembly.Module(o.kernel), imports);
    } catch (err) {
      this.fail(`the kernel could not be loaded: ${err}`);
      return;
    }
    this.memory = this.kernel.exports.memory;
    new Uint8Array(this.memory.buffer).set(new Uint8Array(o.state));
    this.view = new DataView(this.memory.buffer);
    this.params = new Map(this.m.params.map((p) => [p.id, p]));
    this.events = new Map(this.m.events.map((e) => [e.id, e]));
    if (this.m.midi) this.events.set("midi", this.events.get(this.m.midi));
    this.outputs = this.m.outputs.map((addr) => new Float64Array(this.memory.buffer, addr, this.m.max_block));
    this.port.onmessage = (e) => this.receive(e.data);
    for (const item of o.schedule || []) this.receive(item);
  }

  // ----------------------------------------------------------------- messages from the page
  receive(msg) {
    if (msg.type === "param" || msg.type === "event") {
      const table = msg.type === "param" ? this.params : this.events;
      const target = table.get(msg.id);
      if (!target) {
        this.port.postMessage({ type: "error", message: `no ${msg.type === "param" ? "value" : "event"} input ${msg.id}` });
        return;
      }
      let frame = msg.frame;
      if (frame === undefined && msg.time !== undefined) frame = this.frameAt(msg.time);
      frame = Math.max(0, Math.min(FRAME_LIMIT, Math.round(frame ?? 0)));
      const item = { frame, seq: this.seq++, kind: msg.type, target, value: msg.value, ramp: msg.ramp || 0 };
      let i = this.pending.length;
      while (i > 0 && this.pending[i - 1].frame > frame) i--;
      this.pending.splice(i, 0, item);
    }
  }

  frameAt(time) {
    // context time (seconds) -> kernel frame; before the first quantum, frames count from now
    const contextFrame = Math.round(time * sampleRate);
    const origin = this.contextOrigin ?? currentFrame - this.kernelFrame();
    return contextFrame - origin;
  }

  // ----------------------------------------------------------------- the kernel's memory
  kernelFrame() {
    return Number(this.view.getBigInt64(this.m.header.frame, true));
  }

  // Parameters and events go through the kernel's own memory-protocol exports (set_param,
  // queue_event: oscen/jit/protocol.py), the very functions oscen.jit.GraphState calls from Python.
  setParam(p, value, rampSeconds) {
    this.kernel.exports.set_param(p.value, value, rampSeconds, this.m.sample_rate);
  }

  // Insert into a kernel queue, kept sorted by frame (after events of the same frame). Returns
  // false when the queue is full: the event then waits for the next quantum.
  queueEvent(q, frame, value) {
    const fields = Array.isArray(value) ? value : [value ?? 1.0];
    const f = [0, 1, 2, 3].map((k) => (k < fields.length ? +fields[k] : 0.0));
    return this.kernel.exports.queue_event(q.base, q.capacity, BigInt(frame), f[0], f[1], f[2], f[3]) !== 0;
  }

  // ----------------------------------------------------------------- faults
  faultMessage(err) {
    const v = this.view;
    const h = this.m.header;
    const f = this.m.faults;
    const siteId = v.getInt32(h.trap_site, true);
    const code = v.getInt32(h.trap_code, true);
    const segment = v.getInt32(h.segment, true);
    // NODE: the faulting node's base; a voice group member's node in the voice in LANE
    let nodeId = f.bases[v.getInt32(h.node, true)];
    const voices = nodeId === undefined ? undefined : f.voices[nodeId];
    const lane = v.getInt32(h.lane, true);
    if (voices && lane >= 0 && lane < voices.length) nodeId = voices[lane];
    const node = f.node_labels[nodeId] || (f.segments[segment] || []).map((n) => f.node_labels[n]).join(", ") || "a node";
    const site = (f.sites[nodeId] || {})[siteId];
    const where = site && site.where ? ` at ${site.where}` : "";
    if (!site || code === 0) return `compiled code of ${node} trapped: ${err.message || err}`;
    let kind, text;
    if (code === f.timeout_code) {
      return `TimeoutError in ${node}${where}: compiled node code looped more than ${this.m.loop_budget} times in one quantum (an endless loop?); the quantum was abandoned`;
    }
    if (code === f.math_code) {
      const mathCode = this.kernel.exports.math_error.value || this.math.exports.math_error.value;
      [kind, text] = f.math[mathCode] || ["ValueError", "math domain error"];
    } else {
      [kind, text] = f.codes[code] || ["RuntimeError", "trap"];
      text = text || site.detail;
    }
    return `${kind} in ${node}${where}: ${text}`;
  }

  fail(message) {
    this.failed = true;
    this.port.postMessage({ type: "fault", message });
  }

  // ----------------------------------------------------------------- the audio callback
  process(inputs, outputs) {
    const out = outputs[0];
    if (this.failed || !out || !out.length) {
      for (const ch of out || []) ch.fill(0);
      return true;
    }
    const n = out[0].length;
    const start = this.kernelFrame();
    if (this.contextOrigin === null) this.contextOrigin = currentFrame - start;
    let done = 0;
    while (done < n) {
      const now = start + done;
      // everything due up to now is applied; events up to the quantum's end go into the queues
      let next = start + n;
      const waiting = [];
      for (const item of this.pending) {
        if (item.kind === "param") {
          if (item.frame <= now) this.setParam(item.target, +item.value, item.ramp);
          else {
            next = Math.min(next, item.frame);
            waiting.push(item);
          }
        } else if (item.frame < start + n) {
          if (!this.queueEvent(item.target, Math.max(item.frame, now), item.value)) waiting.push(item);
        } else waiting.push(item);
      }
      this.pending = waiting;
      const k = Math.min(next, start + n) - now;
      try {
        this.view.setInt32(this.m.header.interrupt, this.m.loop_budget, true); // loops count it down
        this.kernel.exports.process(k);
      } catch (err) {
        this.fail(this.faultMessage(err));
        for (const ch of out) ch.fill(0, done);
        return true;
      }
      for (let c = 0; c < out.length; c++) {
        const src = this.outputs[Math.min(c, this.outputs.length - 1)];
        out[c].set(src.subarray(0, k), done);
      }
      done += k;
    }
    if ((this.blocks = (this.blocks || 0) + 1) % 32 === 0) {
      this.port.postMessage({ type: "frame", frame: this.kernelFrame() });
    }
    return true;
  }
}

registerProcessor("oscen-processor", OscenProcessor);
