// lvg web page: vanilla JS, same-origin API calls only (see docs/serve-api.md).
"use strict";

// Seeds go up to 2^63 - 1, beyond JavaScript's exact integers (2^53): they stay decimal strings here, checked with
// BigInt, written into the request JSON as digits and read back from the response's seed_string.
const lvgSeeds = (function () {
  const MAX_SEED = BigInt("9223372036854775807"); // lvg.sampling.config.MAX_SEED

  // A typed seed: {seed: "digits"}, {seed: null} when empty (random), or {error}.
  function parseSeed(raw) {
    const text = String(raw === undefined || raw === null ? "" : raw).trim();
    if (text === "") return { seed: null };
    if (!/^[0-9]+$/.test(text)) return { error: "Seed must be a whole number ≥ 0 (or empty for random)." };
    const value = BigInt(text);
    if (value > MAX_SEED) return { error: "Seed must be at most " + MAX_SEED.toString() + " (2^63 − 1)." };
    return { seed: value.toString() };
  }

  // The request body as JSON text with "seed" written as exact digits (JSON.stringify cannot write a BigInt).
  function requestJson(body, seed) {
    const rest = JSON.stringify(body);
    return '{"seed":' + (seed === null ? "null" : seed) + (rest === "{}" ? "}" : "," + rest.slice(1));
  }

  // Each image's own seed as a string: seed_string when the server sends it, else the (possibly rounded) number.
  function imageSeeds(items) {
    return items.map((item) => {
      if (item && typeof item.seed_string === "string") return item.seed_string;
      return item && item.seed !== undefined && item.seed !== null ? String(item.seed) : "";
    });
  }

  return { parseSeed, requestJson, imageSeeds };
})();

if (typeof module !== "undefined" && module.exports) module.exports = lvgSeeds; // for tests run by node

if (typeof document !== "undefined") (function () {
  const KEY_STORAGE = "lvg.apiKey";
  const CLIENT_TIMEOUT_MS = 180000; // above the server's request deadline, which answers 504 first

  const $ = (id) => document.getElementById(id);
  const els = {
    error: $("error"),
    apiKey: $("api-key"),
    apiKeyClear: $("api-key-clear"),
    apiKeyStatus: $("api-key-status"),
    modelPicker: $("model-picker"),
    model: $("model"),
    genForm: $("generate-form"),
    prompt: $("prompt"),
    numImages: $("num-images"),
    seed: $("seed"),
    size: $("size"),
    guidance: $("guidance"),
    temperature: $("temperature"),
    topK: $("top-k"),
    topP: $("top-p"),
    labelTemperature: $("label-temperature"),
    refusalThreshold: $("refusal-threshold"),
    painterTemperature: $("painter-temperature"),
    painterSteps: $("painter-steps"),
    allowUnsupported: $("allow-unsupported"),
    generate: $("generate"),
    busy: $("busy"),
    genMeta: $("gen-meta"),
    results: $("results"),
    resultsEmpty: $("results-empty"),
    capForm: $("caption-form"),
    capFile: $("caption-file"),
    capLang: $("caption-lang"),
    capButton: $("caption-button"),
    capBusy: $("caption-busy"),
    capOutput: $("caption-output"),
    capPreview: $("caption-preview"),
    capPreviewEmpty: $("caption-preview-empty"),
    editForm: $("edit-form"),
    editFile: $("edit-file"),
    editPrompt: $("edit-prompt"),
    editButton: $("edit-button"),
    editBusy: $("edit-busy"),
    editResult: $("edit-result"),
    editEmpty: $("edit-empty"),
  };

  // ---------- API key (sessionStorage: survives reloads, not new tabs) ----------
  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return "";
    }
  }
  function setKey(value) {
    const key = value.trim();
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      /* storage disabled: the key still works for this page view */
    }
    els.apiKeyStatus.textContent = key
      ? "Key set: sent as an Authorization: Bearer header with each request."
      : "No key set: requests are sent without authorization.";
  }
  function authHeaders() {
    const key = (els.apiKey.value || "").trim();
    return key ? { Authorization: "Bearer " + key } : {};
  }
  els.apiKey.value = storedKey();
  setKey(els.apiKey.value);
  els.apiKey.addEventListener("input", () => setKey(els.apiKey.value));
  els.apiKeyClear.addEventListener("click", () => {
    els.apiKey.value = "";
    setKey("");
    els.apiKey.focus();
  });

  // ---------- errors ----------
  const STATUS_TITLES = {
    400: "Request refused",
    401: "Unauthorized: set a valid API key",
    403: "Forbidden",
    404: "Not found",
    413: "Too large",
    415: "Unsupported file type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
    503: "Server not ready",
    504: "Timed out",
  };

  function showError(title, message) {
    els.error.textContent = "";
    const strong = document.createElement("strong");
    strong.textContent = title;
    els.error.appendChild(strong);
    if (message) els.error.appendChild(document.createTextNode(message));
    els.error.hidden = false;
    els.error.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  function clearError() {
    els.error.hidden = true;
    els.error.textContent = "";
  }

  // Turn any error body the server may send into one readable message.
  function messageFrom(data, text) {
    if (data && typeof data === "object") {
      const err = data.error;
      if (typeof err === "string") return err;
      if (err && typeof err === "object" && err.message) return String(err.message);
      const detail = data.detail;
      if (typeof detail === "string") return detail;
      if (Array.isArray(detail)) {
        return detail
          .map((d) => {
            if (!d || typeof d !== "object") return String(d);
            const loc = Array.isArray(d.loc) ? d.loc.filter((x) => x !== "body").join(".") : "";
            return loc ? loc + ": " + (d.msg || "") : String(d.msg || JSON.stringify(d));
          })
          .join("\n");
      }
      if (detail) return JSON.stringify(detail);
      if (data.message) return String(data.message);
    }
    return (text || "").trim().slice(0, 500);
  }

  async function apiError(resp) {
    let text = "";
    let data = null;
    try {
      text = await resp.text();
      data = JSON.parse(text);
    } catch (_) {
      /* not JSON */
    }
    let title = (STATUS_TITLES[resp.status] || "Request failed") + " (HTTP " + resp.status + ")";
    if (data && data.error && data.error.type === "content_policy") {
      title = "Blocked by the content policy (HTTP " + resp.status + ")";
    }
    if (data && data.error && data.error.code === "unsupported_prompt") {
      title = "This model cannot do that (HTTP " + resp.status + ")";
    }
    let message = messageFrom(data, text) || resp.statusText || "";
    const retry = resp.headers.get("Retry-After");
    if (retry && (resp.status === 429 || resp.status === 503)) {
      message += (message ? " " : "") + "Retry after " + retry + " s.";
    }
    return { title: title + (message ? ":" : ""), message: message ? " " + message : "" };
  }

  async function request(url, options) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), CLIENT_TIMEOUT_MS);
    try {
      return await fetch(url, { ...options, signal: ctrl.signal, credentials: "same-origin", cache: "no-store" });
    } finally {
      clearTimeout(timer);
    }
  }

  function networkError(err) {
    if (err && err.name === "AbortError") {
      showError("Timed out:", " no answer from the server in " + CLIENT_TIMEOUT_MS / 1000 + " s.");
    } else {
      showError("Network error:", " could not reach the server (" + (err && err.message ? err.message : err) + ").");
    }
  }

  function setBusy(button, indicator, busy) {
    button.disabled = busy;
    indicator.hidden = !busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // ---------- models (GET /v1/models): a picker when the server serves more than one ----------
  // Until the list arrives (or when it cannot be read, e.g. before an API key is set) requests name no model and
  // the server uses its default one.
  async function loadModels() {
    let ids;
    try {
      const resp = await request("/v1/models", { headers: { Accept: "application/json", ...authHeaders() } });
      if (!resp.ok) return;
      const data = await resp.json();
      ids = (data && Array.isArray(data.data) ? data.data : []).map((m) => m && m.id).filter((id) => typeof id === "string");
    } catch (_) {
      return; /* unreachable or not JSON: keep what the picker has */
    }
    const previous = els.model.value;
    els.model.textContent = "";
    ids.forEach((id, i) => {
      const option = document.createElement("option");
      option.value = id;
      option.textContent = i === 0 ? id + " (default)" : id;
      els.model.appendChild(option);
    });
    if (ids.includes(previous)) els.model.value = previous;
    els.modelPicker.hidden = ids.length < 2;
  }
  function selectedModel() {
    return els.model.options.length ? els.model.value : null;
  }
  els.apiKey.addEventListener("change", loadModels);
  els.apiKeyClear.addEventListener("click", loadModels);
  loadModels();

  // ---------- generation ----------
  document.querySelectorAll(".chip[data-prompt]").forEach((chip) => {
    chip.addEventListener("click", () => {
      els.prompt.value = chip.dataset.prompt;
      els.prompt.focus();
    });
  });
  els.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      els.genForm.requestSubmit();
    }
  });

  function numberOr(input, fallback, parse) {
    const raw = (input.value || "").trim();
    if (raw === "") return fallback;
    const v = parse(raw);
    return Number.isFinite(v) ? v : NaN;
  }

  function readGenerationParams() {
    const prompt = els.prompt.value.trim();
    if (!prompt) return { error: "Enter a prompt (English or Chinese)." };
    const n = numberOr(els.numImages, 1, Number);
    if (!Number.isInteger(n) || n < 1 || n > 8) return { error: "Number of images must be a whole number from 1 to 8." };
    const seed = lvgSeeds.parseSeed(els.seed.value);
    if (seed.error) return { error: seed.error };
    return {
      seed: seed.seed, // exact digits or null; written into the JSON by lvgSeeds.requestJson
      body: {
        prompt,
        model: selectedModel(), // null: the server's default model
        n,
        response_format: "b64_json",
        size: els.size.value,
        // empty fields send null: the server then uses the served model's own settings
        guidance_scale: numberOr(els.guidance, null, Number),
        temperature: numberOr(els.temperature, null, Number),
        label_temperature: numberOr(els.labelTemperature, null, Number),
        refusal_threshold: numberOr(els.refusalThreshold, null, Number),
        top_k: numberOr(els.topK, null, Number),
        top_p: numberOr(els.topP, null, Number),
        painter_temperature: numberOr(els.painterTemperature, null, Number),
        painter_steps: numberOr(els.painterSteps, null, Number),
        allow_unsupported: els.allowUnsupported.checked, // false: a prompt the model cannot draw is refused (422)
      },
    };
  }

  function renderResults(data, prompt) {
    els.results.textContent = "";
    const items = (data && Array.isArray(data.data) && data.data) || [];
    const seeds = lvgSeeds.imageSeeds(items);
    items.forEach((item, i) => {
      const src = "data:image/png;base64," + item.b64_json;
      const seed = seeds[i] || "x" + i;
      const fig = document.createElement("figure");
      fig.className = "tile";
      const img = document.createElement("img");
      img.className = "pixel";
      img.src = src;
      img.alt = "Generated image " + (i + 1) + " for “" + prompt + "” (seed " + seed + ")";
      img.decoding = "async";
      const cap = document.createElement("figcaption");
      const label = document.createElement("span");
      label.textContent = "seed " + seed;
      const link = document.createElement("a");
      link.href = src;
      link.download = "lvg-" + seed + ".png";
      link.textContent = "Download";
      link.setAttribute("aria-label", "Download image " + (i + 1) + " (seed " + seed + ") as PNG");
      cap.append(label, link);
      fig.append(img, cap);
      els.results.appendChild(fig);
    });
    els.resultsEmpty.hidden = items.length > 0;
    return items.length;
  }

  els.genForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (els.generate.disabled) return;
    clearError();
    const params = readGenerationParams();
    if (params.error) {
      showError("Invalid input:", " " + params.error);
      return;
    }
    setBusy(els.generate, els.busy, true);
    els.results.setAttribute("aria-busy", "true");
    els.genMeta.textContent = "";
    const started = performance.now();
    try {
      const resp = await request("/v1/images/generations", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders() },
        body: lvgSeeds.requestJson(params.body, params.seed),
      });
      if (!resp.ok) {
        const err = await apiError(resp);
        showError(err.title, err.message);
        return;
      }
      const data = await resp.json();
      const count = renderResults(data, params.body.prompt);
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      const by = params.body.model && !els.modelPicker.hidden ? " (" + params.body.model + ")" : "";
      els.genMeta.textContent = count + (count === 1 ? " image" : " images") + " in " + secs + " s" + by;
    } catch (err) {
      networkError(err);
    } finally {
      setBusy(els.generate, els.busy, false);
      els.results.setAttribute("aria-busy", "false");
    }
  });

  // POST a multipart form (with the selected model) while `button` shows `busy`; the JSON answer, or null after
  // showing the error.
  async function postForm(url, form, button, busy) {
    const model = selectedModel();
    if (model) form.append("model", model);
    setBusy(button, busy, true);
    try {
      const resp = await request(url, {
        method: "POST",
        headers: { Accept: "application/json", ...authHeaders() },
        body: form,
      });
      if (!resp.ok) {
        const err = await apiError(resp);
        showError(err.title, err.message);
        return null;
      }
      return await resp.json();
    } catch (err) {
      networkError(err);
      return null;
    } finally {
      setBusy(button, busy, false);
    }
  }

  // ---------- captioning ----------
  let previewUrl = null;
  els.capFile.addEventListener("change", () => {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    const file = els.capFile.files && els.capFile.files[0];
    els.capOutput.textContent = "";
    if (file && file.type.startsWith("image/")) {
      previewUrl = URL.createObjectURL(file);
      els.capPreview.src = previewUrl;
      els.capPreview.hidden = false;
      els.capPreviewEmpty.hidden = true;
    } else {
      els.capPreview.removeAttribute("src");
      els.capPreview.hidden = true;
      els.capPreviewEmpty.hidden = false;
    }
  });

  els.capForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (els.capButton.disabled) return;
    clearError();
    const file = els.capFile.files && els.capFile.files[0];
    if (!file) {
      showError("Invalid input:", " choose an image file to caption.");
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name || "image.png");
    form.append("lang", els.capLang.value);
    els.capOutput.textContent = "";
    const data = await postForm("/v1/captions", form, els.capButton, els.capBusy);
    if (data) {
      els.capOutput.lang = data.lang === "zh" ? "zh-CN" : "en";
      els.capOutput.textContent = data.caption || "(empty caption)";
    }
  });

  // ---------- editing ----------
  els.editForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (els.editButton.disabled) return;
    clearError();
    const file = els.editFile.files && els.editFile.files[0];
    const prompt = els.editPrompt.value.trim();
    if (!file || !prompt) {
      showError("Invalid input:", " choose an image and write an instruction.");
      return;
    }
    const form = new FormData();
    form.append("image", file, file.name || "image.png");
    form.append("prompt", prompt);
    const data = await postForm("/v1/images/edits", form, els.editButton, els.editBusy);
    const item = data && Array.isArray(data.data) && data.data[0];
    if (item) {
      els.editResult.src = "data:image/png;base64," + item.b64_json;
      els.editResult.hidden = false;
      els.editEmpty.hidden = true;
    }
  });
})();
