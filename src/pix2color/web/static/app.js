// pix2color's page: plain JavaScript, no build step. Every action is also a real HTML form that
// works without this file; here the forms are sent with fetch and the answers put in place.
"use strict";

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const form = document.getElementById("uploader");
  const input = document.getElementById("file-input");
  const referenceInput = document.getElementById("reference-input");
  const dropzone = document.getElementById("dropzone");
  const results = document.getElementById("results");
  const toolbar = document.getElementById("toolbar");
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // the paste hint names the keys of this computer (it is hidden on phones and tablets)
  if (/Mac|iPhone|iPad/.test(navigator.userAgentData?.platform || navigator.platform || "")) {
    for (const key of document.querySelectorAll(".paste-key")) key.textContent = "⌘V";
  }

  async function send(url, body) {
    let res;
    try {
      res = await fetch(url, {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      });
    } catch (err) {
      return { ok: false, status: 0, data: { error: "the server cannot be reached; check your connection and try again" } };
    }
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = { error: `the server answered ${res.status} ${res.statusText}` };
    }
    return { ok: res.ok, status: res.status, data, retryAfter: Number(res.headers.get("Retry-After")) || 5 };
  }

  // "the server is busy" -> "The server is busy"; "notes.png: ..." keeps the file's own name
  function capitalise(text) {
    return /^[a-z]+[ ,]/.test(text || "") ? text[0].toUpperCase() + text.slice(1) : text;
  }

  function megabytes(bytes) {
    return bytes < 1048576 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
  }

  function fromHTML(html) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------ uploads, one at a time
  const queue = [];
  let pumping = false;

  function pendingCard(file) {
    const card = el("article", "card pending");
    const head = el("header", "card-head");
    const title = el("div", "card-title");
    title.append(el("h2", "", file.name || "pasted photo"), el("p", "meta", megabytes(file.size)));
    head.append(title);
    const body = el("div", "pending-body");
    const thumb = el("img", "pending-thumb");
    thumb.alt = "";
    thumb.src = URL.createObjectURL(file);
    thumb.addEventListener("load", () => URL.revokeObjectURL(thumb.src));
    thumb.addEventListener("error", () => thumb.remove()); // a TIFF, say: no preview
    const text = el("p", "pending-text", "Waiting…");
    body.append(thumb, el("span", "spinner"), text);
    card.append(head, body);
    return card;
  }

  function fail(card, message) {
    card.classList.remove("pending");
    card.classList.add("failed");
    card.querySelector(".pending-body")?.remove();
    const row = el("div", "judge");
    row.append(el("p", "error-message", capitalise(message)));
    const dismiss = el("button", "btn small ghost", "Dismiss");
    dismiss.type = "button";
    dismiss.addEventListener("click", () => { card.remove(); updateToolbar(); });
    row.append(dismiss);
    card.append(row);
  }

  function addFiles(files) {
    const maxBytes = Number(form?.dataset.maxBytes) || Infinity;
    for (const file of files) {
      const card = pendingCard(file);
      results.prepend(card);
      if (file.size > maxBytes) {
        fail(card, `${file.name}: ${(file.size / 1048576).toFixed(0)} MB is over this server's limit of ${(maxBytes / 1048576).toFixed(0)} MB; send a smaller file`);
        continue;
      }
      // the reference chosen now goes with these photos, whatever is chosen later
      queue.push({ file, card, reference: referenceInput?.files[0] || null });
    }
    pump();
  }

  async function pump() {
    if (pumping) return;
    pumping = true;
    while (queue.length) await upload(queue.shift());
    pumping = false;
  }

  async function upload({ file, card, reference }) {
    const size = document.getElementById("size")?.value || "";
    const text = card.querySelector(".pending-text");
    for (let attempt = 0; ; attempt++) {
      text.textContent = "Colouring…";
      const body = new FormData();
      body.append("image", file, file.name || "pasted.png");
      body.append("size", size);
      if (reference) body.append("reference", reference, reference.name || "reference.png");
      const res = await send(form.action, body);
      if (res.ok) {
        const done = fromHTML(res.data.html);
        card.replaceWith(done);
        updateToolbar();
        return;
      }
      if ((res.status === 503 || res.status === 429) && attempt < 6) {
        const wait = Math.min(60, res.retryAfter);
        text.textContent = `${res.status === 429 ? "Many photos at once" : "The server is busy"}: trying again in ${wait} s…`;
        await sleep(wait * 1000);
        continue;
      }
      fail(card, res.data?.error || "the photo could not be coloured");
      return;
    }
  }

  // a reference over the size limit is refused here, before any photo is sent with it
  referenceInput?.addEventListener("change", () => {
    const file = referenceInput.files[0];
    const maxBytes = Number(form?.dataset.maxBytes) || Infinity;
    if (file && file.size > maxBytes) {
      alert(`${file.name}: ${(file.size / 1048576).toFixed(0)} MB is over this server's limit of ${(maxBytes / 1048576).toFixed(0)} MB; choose a smaller reference photo`);
      referenceInput.value = "";
    }
  });
  document.getElementById("reference-clear")?.addEventListener("click", () => {
    if (referenceInput) referenceInput.value = "";
  });

  if (form && input && dropzone) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.files.length) addFiles([...input.files]);
    });
    input.addEventListener("change", () => {
      addFiles([...input.files]);
      input.value = "";
    });
    let depth = 0;
    document.addEventListener("dragenter", (event) => {
      if ([...(event.dataTransfer?.types || [])].includes("Files")) { depth++; dropzone.classList.add("is-over"); }
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) dropzone.classList.remove("is-over");
    });
    document.addEventListener("dragover", (event) => event.preventDefault());
    document.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      dropzone.classList.remove("is-over");
      const files = [...(event.dataTransfer?.files || [])];
      if (files.length) addFiles(files);
    });
    document.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
      if (files.length) {
        event.preventDefault();
        addFiles(files);
      }
    });
  }

  // ------------------------------------------------------------ download all
  function updateToolbar() {
    if (!toolbar) return;
    const jobs = [...results.querySelectorAll(".card[data-job]")].map((c) => c.dataset.job);
    toolbar.hidden = jobs.length === 0;
    const count = document.getElementById("toolbar-count");
    count.textContent = `${jobs.length} photo${jobs.length === 1 ? "" : "s"} coloured`;
    const format = document.getElementById("zip-format").value;
    const link = document.getElementById("zip-link");
    link.href = `${toolbar.dataset.zipUrl}?format=${encodeURIComponent(format)}&jobs=${jobs.map(encodeURIComponent).join(",")}`;
  }
  document.getElementById("zip-format")?.addEventListener("change", updateToolbar);
  updateToolbar(); // the session's photos the server listed

  // ------------------------------------------------------------ the cards
  document.addEventListener("input", (event) => {
    const range = event.target.closest?.(".compare-range");
    if (range) range.parentElement.style.setProperty("--pos", `${range.value}%`);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest?.(".js-fullsize");
    if (!button) return;
    const figure = button.closest(".result").querySelector(".compare");
    const full = figure.classList.toggle("is-full");
    // the page shows thumbnails; the full-resolution images are loaded only now, when asked
    if (full) {
      for (const img of figure.querySelectorAll("img[data-full]")) {
        if (img.getAttribute("src") !== img.dataset.full) img.src = img.dataset.full;
      }
    }
    button.setAttribute("aria-pressed", String(full));
    button.textContent = full ? "Fit to width" : "Full size";
  });

  function setStatus(card, message, isError) {
    const status = card.querySelector(".status");
    status.textContent = capitalise(message);
    status.classList.toggle("error-message", Boolean(isError));
  }

  function showJudgement(card, data) {
    for (const result of card.querySelectorAll(".result")) {
      const label = result.dataset.label;
      result.classList.toggle("is-best", data.best === label);
      const name = result.querySelector(".model-name");
      if (name && data.reveal) name.textContent = data.reveal[label] || "";
    }
    const names = data.reveal && Object.keys(data.reveal).length > 1
      ? " " + Object.entries(data.reveal).map(([label, model]) => `${label} is ${model}`).join(", ") + "."
      : "";
    setStatus(card, data.message + names);
  }

  // a star click saves at once
  document.addEventListener("change", async (event) => {
    const star = event.target.closest?.(".stars input");
    if (!star) return;
    const ratingForm = star.closest("form");
    const card = ratingForm.closest(".card");
    const res = await send(ratingForm.action, new FormData(ratingForm));
    if (res.ok) showJudgement(card, res.data);
    else setStatus(card, res.data?.error || "the rating was not saved", true);
  });

  document.addEventListener("submit", async (event) => {
    const target = event.target;
    const card = target.closest(".card");
    if (!card || target.id === "uploader") return;
    event.preventDefault();
    if (target.classList.contains("pick") || target.classList.contains("rating")) {
      const res = await send(target.action, new FormData(target));
      if (res.ok) showJudgement(card, res.data);
      else setStatus(card, res.data?.error || "not saved", true);
      return;
    }
    if (target.classList.contains("rerun")) {
      card.classList.add("is-working");
      setStatus(card, `Colouring again at ${target.elements.size.value} px…`);
      for (let attempt = 0; ; attempt++) {
        const res = await send(target.action, new FormData(target));
        if (res.ok) {
          // the new colouring goes beside the old one (newest first, as a reload lists
          // them); both are kept, and both go into the zip
          card.classList.remove("is-working");
          setStatus(card, "");
          card.before(fromHTML(res.data.html));
          updateToolbar();
          return;
        }
        if ((res.status === 503 || res.status === 429) && attempt < 6) {
          setStatus(card, `The server is busy: trying again in ${res.retryAfter} s…`);
          await sleep(res.retryAfter * 1000);
          continue;
        }
        card.classList.remove("is-working");
        setStatus(card, res.data?.error || "could not colour again", true);
        return;
      }
    }
  });

  // ------------------------------------------------------------ colour points
  // A point is {x, y, color, radius} in the photo's own pixels, whatever the display scale: the
  // layer over the photo maps a click through its own box (fit to width or full size alike).
  // Each change sends the whole list; the server re-colours the result with it (propagation
  // and the join, without the network) and keeps it; one request per result at a time.
  const POINT_RADIUS = 3;

  function srgbToLinear(v) { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }
  function linearToSrgb(v) {
    const s = v <= 0.0031308 ? 12.92 * v : 1.055 * v ** (1 / 2.4) - 0.055;
    return Math.round(255 * s);
  }
  // sRGB (0-255) <-> CIE Lab (D65), as pix2color.color does it in Python
  function rgbToLab([r, g, b]) {
    const [R, G, B] = [r, g, b].map(srgbToLinear);
    const f = (t) => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
    const x = f((0.4124564 * R + 0.3575761 * G + 0.1804375 * B) / 0.95047);
    const y = f(0.2126729 * R + 0.7151522 * G + 0.072175 * B);
    const z = f((0.0193339 * R + 0.119192 * G + 0.9503041 * B) / 1.08883);
    return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
  }
  function labToRgb([L, a, b]) {
    const fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
    const inv = (t) => (t ** 3 > 216 / 24389 ? t ** 3 : (116 * t - 16) / (24389 / 27));
    const X = inv(fx) * 0.95047, Y = inv(fy), Z = inv(fz) * 1.08883;
    const lin = [
      3.2404542 * X - 1.5371385 * Y - 0.4985314 * Z,
      -0.969266 * X + 1.8760108 * Y + 0.041556 * Z,
      0.0556434 * X - 0.2040259 * Y + 1.0572252 * Z,
    ];
    if (lin.some((v) => v < -0.001 || v > 1.001)) return null; // outside the screen's colours
    return lin.map((v) => linearToSrgb(Math.min(1, Math.max(0, v))));
  }
  const hex = (rgb) => "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
  const rgbOf = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));

  // the same hue at a higher chroma, as far as the screen can show it. Only a point's chroma
  // counts (the photo keeps its lightness), so a swatch is shown at a lightness of 45-75, where
  // its hue can be seen even when the spot is nearly black or white.
  function bolder(rgb, factor) {
    const [L0, a, b] = rgbToLab(rgb);
    const L = Math.min(75, Math.max(45, L0));
    for (let k = factor; k > 0.5; k -= 0.1) {
      const out = labToRgb([L, a * k, b * k]);
      if (out) return out;
    }
    return labToRgb([L, 0, 0]);
  }

  // the colour the result has now around (x, y): a 5x5 mean of the displayed image
  function colourAt(result, x, y) {
    const img = result.querySelector(".compare-after");
    const card = result.closest(".card");
    const W = Number(card.dataset.width), H = Number(card.dataset.height);
    if (!img.complete || !img.naturalWidth) return null;
    const canvas = document.createElement("canvas");
    canvas.width = 5;
    canvas.height = 5;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const sx = img.naturalWidth / W, sy = img.naturalHeight / H;
    ctx.drawImage(img, (x + 0.5) * sx - 2.5, (y + 0.5) * sy - 2.5, 5, 5, 0, 0, 5, 5);
    const d = ctx.getImageData(0, 0, 5, 5).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += d[i + c];
    return sum.map((v) => Math.round(v / 25));
  }

  const COMMON = [
    ["#5b8fd6", "sky blue"], ["#3f7f3a", "foliage green"], ["#d9a38a", "skin"],
    ["#b23a2e", "brick red"], ["#d8b43a", "straw yellow"], ["#6b4a2f", "wood brown"],
  ];

  const editors = new WeakMap();

  function editor(result) {
    let ed = editors.get(result);
    if (ed) return ed;
    const card = result.closest(".card");
    ed = {
      result,
      W: Number(card.dataset.width),
      H: Number(card.dataset.height),
      points: JSON.parse(result.dataset.points || "[]"),
      selected: -1,
      suggested: [],
      note: ["", false],
      busy: false,
      again: false,
      timer: 0,
      layer: result.querySelector(".points-layer"),
      panel: result.querySelector(".points-panel"),
    };
    editors.set(result, ed);
    return ed;
  }

  function render(ed) {
    ed.layer.replaceChildren();
    ed.points.forEach((p, i) => {
      const dot = el("button", "point" + (i === ed.selected ? " is-selected" : ""));
      dot.type = "button";
      dot.dataset.index = String(i);
      dot.style.left = `${((p.x + 0.5) / ed.W) * 100}%`;
      dot.style.top = `${((p.y + 0.5) / ed.H) * 100}%`;
      dot.style.setProperty("--c", p.color);
      dot.setAttribute("aria-label", `Point ${i + 1} at ${p.x}, ${p.y}, colour ${p.color}`);
      ed.layer.append(dot);
    });
    const n = ed.points.length;
    ed.panel.querySelector(".points-count").textContent = `${n} point${n === 1 ? "" : "s"}`;
    ed.panel.querySelector(".js-clear-points").disabled = n === 0;
    const toggle = ed.result.querySelector(".js-points");
    toggle.textContent = n ? `Colour points (${n})` : "Colour points";
    const editing = ed.selected >= 0 && ed.selected < n;
    ed.panel.querySelector(".points-editor").hidden = !editing;
    if (editing) {
      ed.panel.querySelector(".point-color").value = ed.points[ed.selected].color;
      const swatches = ed.panel.querySelector(".swatches");
      swatches.replaceChildren();
      const all = [...ed.suggested.map(([c, name, kind]) => [c, name, kind || "photo"]), ...COMMON];
      for (const [c, name, kind] of all) {
        const on = c === ed.points[ed.selected].color;
        const cls = kind === "likely" ? " from-photo likely" : kind ? " from-photo" : "";
        const b = el("button", `swatch${cls}${on ? " is-on" : ""}`);
        b.type = "button";
        b.dataset.color = c;
        b.title = `${name} (${c})`;
        b.setAttribute("aria-label", `${name} ${c}`);
        b.style.setProperty("--c", c);
        swatches.append(b);
      }
      const note = ed.panel.querySelector(".swatch-note");
      note.textContent = ed.note[0];
      note.classList.toggle("is-error", ed.note[1]);
    }
  }

  // the swatches for a spot: the colour there now, then the colours the server's suggestions
  // model finds most likely there ("likely here", GET /jobs/<id>/suggest). Until it answers,
  // and if it cannot, bolder versions of the colour there now, computed here, with a note
  // that says so. Returns the new point's first colour (the "much bolder" one, at once).
  function suggest(ed, x, y) {
    const now = colourAt(ed.result, x, y);
    const local = now ? [
      [hex(bolder(now, 1)), "the colour here now"],
      [hex(bolder(now, 1.6)), "bolder"],
      [hex(bolder(now, 2.4)), "much bolder"],
      [hex(bolder(now, 3.5)), "boldest"],
    ] : [];
    ed.suggested = local;
    ed.note = ["Asking which colours are likely here…", false];
    askLikely(ed, x, y, local.slice(0, 1));
    return local.length ? local[2][0] : null;
  }

  async function askLikely(ed, x, y, keep) {
    const asked = (ed.asked = (ed.asked || 0) + 1);
    const url = ed.result.closest(".card").dataset.suggestUrl;
    const spot = `x=${Math.min(ed.W - 1, Math.round(x))}&y=${Math.min(ed.H - 1, Math.round(y))}`;
    let res = null, data = null;
    try {
      res = await fetch(`${url}?${spot}`, {
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      });
      data = await res.json();
    } catch (err) {
      data = null;
    }
    if (asked !== ed.asked) return; // a newer spot was asked for meanwhile
    if (res && res.ok && data && Array.isArray(data.suggestions) && data.suggestions.length) {
      const likely = data.suggestions.map((s) => [s.color, `likely here (${Math.round(100 * s.probability)} %)`, "likely"]);
      ed.suggested = [...keep, ...likely];
      ed.note = ["Dotted: likely here, by the suggestions model (the first is the colour here now)", false];
      ed.result.dataset.suggested = JSON.stringify(data.suggestions.map((s) => s.color));
    } else {
      const why = data?.error || (res ? `the server answered ${res.status}` : "the server cannot be reached");
      ed.note = [`No “likely here” colours (${why}); these are bolder versions of the colour here now.`, true];
      ed.result.dataset.suggested = "[]";
    }
    render(ed);
  }

  function photoXY(ed, event) {
    const box = ed.layer.getBoundingClientRect();
    const fx = (event.clientX - box.left) / box.width, fy = (event.clientY - box.top) / box.height;
    return [
      Math.min(ed.W - 1, Math.max(0, Math.floor(fx * ed.W))),
      Math.min(ed.H - 1, Math.max(0, Math.floor(fy * ed.H))),
    ];
  }

  function setPointsStatus(ed, text, isError) {
    const status = ed.panel.querySelector(".points-status");
    status.textContent = capitalise(text);
    status.classList.toggle("is-error", Boolean(isError));
  }

  // send the points now, or right after the request in flight (only the newest list matters)
  async function recolour(ed) {
    clearTimeout(ed.timer);
    if (ed.busy) { ed.again = true; return; }
    ed.busy = true;
    ed.result.classList.add("is-recolouring");
    setPointsStatus(ed, "Colouring…");
    const started = performance.now();
    const body = new FormData();
    body.append("points", JSON.stringify({ points: ed.points }));
    let res;
    for (let attempt = 0; ; attempt++) {
      res = await send(ed.result.dataset.pointsUrl, body);
      if ((res.status === 503 || res.status === 429) && attempt < 6 && !ed.again) {
        setPointsStatus(ed, `The server is busy: trying again in ${res.retryAfter} s…`);
        await sleep(res.retryAfter * 1000);
        continue;
      }
      break;
    }
    if (res.ok && !ed.again) {
      const figure = ed.result.querySelector(".compare");
      const img = ed.result.querySelector(".compare-after");
      img.dataset.full = res.data.image;
      const src = figure.classList.contains("is-full") ? res.data.image : res.data.thumb;
      await new Promise((resolve) => {
        img.addEventListener("load", resolve, { once: true });
        img.addEventListener("error", resolve, { once: true });
        img.src = src;
      });
      const ms = Math.round(performance.now() - started);
      ed.result.dataset.recolourMs = String(ms);
      ed.result.dataset.points = JSON.stringify(res.data.points);
      const n = res.data.points.length;
      setPointsStatus(ed, n ? `Re-coloured with ${n} point${n === 1 ? "" : "s"} in ${(ms / 1000).toFixed(2)} s` : "Automatic colour again");
    } else if (!res.ok) {
      setPointsStatus(ed, res.data?.error || "could not colour again", true);
    }
    ed.busy = false;
    ed.result.classList.remove("is-recolouring");
    if (ed.again) { ed.again = false; recolour(ed); }
  }

  function recolourSoon(ed, ms = 250) {
    clearTimeout(ed.timer);
    ed.timer = setTimeout(() => recolour(ed), ms);
  }

  document.addEventListener("click", (event) => {
    const toggle = event.target.closest?.(".js-points");
    if (toggle) {
      const result = toggle.closest(".result");
      const ed = editor(result);
      const figure = result.querySelector(".compare");
      const on = figure.classList.toggle("is-pointing");
      ed.layer.hidden = !on;
      ed.panel.hidden = !on;
      toggle.setAttribute("aria-pressed", String(on));
      if (!on) ed.selected = -1;
      render(ed);
      return;
    }
    const result = event.target.closest?.(".result");
    if (!result || !editors.has(result)) return;
    const ed = editor(result);
    const swatch = event.target.closest(".swatch");
    if (swatch && ed.selected >= 0) {
      ed.points[ed.selected].color = swatch.dataset.color;
      render(ed);
      recolour(ed);
    } else if (event.target.closest(".js-delete-point") && ed.selected >= 0) {
      ed.points.splice(ed.selected, 1);
      ed.selected = -1;
      render(ed);
      recolour(ed);
    } else if (event.target.closest(".js-clear-points") && ed.points.length) {
      ed.points = [];
      ed.selected = -1;
      render(ed);
      recolour(ed);
    }
  });

  // a press on the photo adds a point; on a point, selects it and drags it
  document.addEventListener("pointerdown", (event) => {
    const layer = event.target.closest?.(".points-layer");
    if (!layer || event.button !== 0) return;
    event.preventDefault();
    const ed = editor(layer.closest(".result"));
    const dot = event.target.closest(".point");
    let index;
    if (dot) {
      index = Number(dot.dataset.index);
      const p = ed.points[index];
      suggest(ed, p.x, p.y);
    } else {
      const [x, y] = photoXY(ed, event);
      const color = suggest(ed, x, y) || ed.panel.querySelector(".point-color").value;
      ed.points.push({ x, y, color, radius: POINT_RADIUS });
      index = ed.points.length - 1;
    }
    ed.selected = index;
    render(ed);
    const moving = ed.layer.querySelector(`.point[data-index="${index}"]`);
    moving.focus({ preventScroll: true });
    layer.setPointerCapture(event.pointerId);
    let moved = false;
    const move = (e) => {
      const [x, y] = photoXY(ed, e);
      const p = ed.points[index];
      if (x === p.x && y === p.y) return;
      moved = true;
      p.x = x;
      p.y = y;
      moving.style.left = `${((x + 0.5) / ed.W) * 100}%`;
      moving.style.top = `${((y + 0.5) / ed.H) * 100}%`;
    };
    const up = () => {
      layer.removeEventListener("pointermove", move);
      layer.removeEventListener("pointerup", up);
      layer.removeEventListener("pointercancel", up);
      if (moved) render(ed);
      if (!dot || moved) recolour(ed); // a new point, or one moved: colour again
    };
    layer.addEventListener("pointermove", move);
    layer.addEventListener("pointerup", up);
    layer.addEventListener("pointercancel", up);
  });

  // the picker: the marker follows at once, the photo a moment later (and on closing it)
  document.addEventListener("input", (event) => {
    const picker = event.target.closest?.(".point-color");
    if (!picker) return;
    const ed = editor(picker.closest(".result"));
    if (ed.selected < 0) return;
    ed.points[ed.selected].color = picker.value;
    ed.layer.querySelector(`.point[data-index="${ed.selected}"]`)?.style.setProperty("--c", picker.value);
    for (const b of ed.panel.querySelectorAll(".swatch")) b.classList.toggle("is-on", b.dataset.color === picker.value);
    recolourSoon(ed, 400);
  });
  document.addEventListener("change", (event) => {
    const picker = event.target.closest?.(".point-color");
    if (picker && editors.has(picker.closest(".result"))) recolour(editor(picker.closest(".result")));
  });

  // Delete or Backspace removes the selected point; arrows nudge it by a photo pixel
  document.addEventListener("keydown", (event) => {
    const dot = event.target.closest?.(".point");
    if (!dot) return;
    const ed = editor(dot.closest(".result"));
    const i = Number(dot.dataset.index);
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      ed.points.splice(i, 1);
      ed.selected = -1;
      render(ed);
      recolour(ed);
    } else if (steps[event.key]) {
      event.preventDefault();
      const p = ed.points[i];
      p.x = Math.min(ed.W - 1, Math.max(0, p.x + steps[event.key][0]));
      p.y = Math.min(ed.H - 1, Math.max(0, p.y + steps[event.key][1]));
      ed.selected = i;
      render(ed);
      ed.layer.querySelector(`.point[data-index="${i}"]`)?.focus();
      recolourSoon(ed, 400);
    }
  });
})();
