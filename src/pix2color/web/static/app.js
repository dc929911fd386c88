// pix2color's page: plain JavaScript, no build step. Every action is also a real HTML form that
// works without this file; here the forms are sent with fetch and the answers put in place.
"use strict";

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const form = document.getElementById("uploader");
  const input = document.getElementById("file-input");
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
      queue.push({ file, card });
    }
    pump();
  }

  async function pump() {
    if (pumping) return;
    pumping = true;
    while (queue.length) await upload(queue.shift());
    pumping = false;
  }

  async function upload({ file, card }) {
    const size = document.getElementById("size")?.value || "";
    const text = card.querySelector(".pending-text");
    for (let attempt = 0; ; attempt++) {
      text.textContent = "Colouring…";
      const body = new FormData();
      body.append("image", file, file.name || "pasted.png");
      body.append("size", size);
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
})();
