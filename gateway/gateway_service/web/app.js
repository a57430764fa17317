/* mp3converter's web page: log in, upload videos (resumable, tus), watch and fetch the results.
 *
 * Uses only the gateway's documented API (/openapi.json): POST /login, GET /formats, the tus
 * uploads at /uploads (tus-js-client, vendored in /web/vendor/), GET /jobs, GET /download,
 * DELETE /jobs/<fid>, POST /jobs/<fid>/cancel and /retry. The token lives in sessionStorage
 * (this tab only, gone when it closes; never a cookie). Every API error is shown as its
 * `message`. No inline script or style anywhere: the page's CSP allows none.
 */
"use strict";

(function () {
  /** Each PATCH carries at most this much: below any proxy's per-request limit (the ingress). */
  const CHUNK_BYTES = 8 * 1024 * 1024;
  /** Waits between tries of a failed request; after the last, the upload waits to be resumed. */
  const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];
  const JOBS_EVERY_MS = 1500;
  const TOKEN_KEY = "mp3converter.token";
  const EMAIL_KEY = "mp3converter.email";
  const LOUDNESS = [
    ["", "As it is"],
    ["-14", "-14 LUFS (music streaming)"],
    ["-16", "-16 LUFS (podcasts)"],
    ["-23", "-23 LUFS (EBU R128 broadcast)"],
  ];

  const $ = (selector, root) => (root || document).querySelector(selector);
  let token = sessionStorage.getItem(TOKEN_KEY);
  let catalog = null;
  let jobsTimer = null;
  const uploads = new Set();
  const jobRows = new Map();

  // --- messages ------------------------------------------------------------------------------

  function showError(message) {
    const box = $("#error");
    box.textContent = message;
    box.hidden = !message;
  }

  function notice(message) {
    $("#notice").textContent = message || "";
  }

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** The API's answer; ApiError carrying the body's `message` when it is not 2xx. */
  async function api(path, options) {
    // No cookies either way (the token is a header), and "omit" keeps the browser from
    // answering /login's 401 Basic challenge with its own password dialog.
    const init = Object.assign({ method: "GET", headers: {}, credentials: "omit" }, options || {});
    if (token) init.headers.Authorization = "Bearer " + token;
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError("The server cannot be reached; check your connection.", 0, null);
    }
    if (response.ok) return response;
    const body = await response.json().catch(() => null);
    const message = (body && body.message) || `The server answered ${response.status}.`;
    if (response.status === 401 && token && path !== "/login") {
      logout("Your session has ended; log in again.");
    }
    throw new ApiError(message, response.status, body);
  }

  function messageOf(err) {
    if (err instanceof ApiError) return err.message;
    const response = err && err.originalResponse;
    if (response) {
      try {
        const body = JSON.parse(response.getBody());
        if (body && body.message) return body.message;
      } catch (ignored) { /* not JSON */ }
      return `The server answered ${response.getStatus()}.`;
    }
    if (!navigator.onLine) return "The connection is down.";
    return "The connection to the server was lost.";
  }

  // --- logging in and out -----------------------------------------------------------------

  function basic(email, password) {
    const bytes = new TextEncoder().encode(email + ":" + password);
    let text = "";
    bytes.forEach((byte) => { text += String.fromCharCode(byte); });
    return "Basic " + btoa(text);
  }

  async function login(event) {
    event.preventDefault();
    showError("");
    const email = $("#email").value.trim();
    const password = $("#password").value;
    if (!email || !password) {
      showError("Enter your email and your password.");
      return;
    }
    $("#login-button").disabled = true;
    try {
      const response = await api("/login", {
        method: "POST", headers: { Authorization: basic(email, password) },
      });
      token = (await response.text()).trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(EMAIL_KEY, email);
      $("#password").value = "";
      await enter();
    } catch (err) {
      showError(messageOf(err));
    } finally {
      $("#login-button").disabled = false;
    }
  }

  /** A person who logs out leaves no upload addresses behind in this browser. */
  function forgetStoredUploads() {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith("tus::")) localStorage.removeItem(key);
    }
  }

  function logout(message) {
    for (const item of uploads) item.upload.abort();
    // An ended session keeps them: "an upload resumes when you add the same file" after login.
    if (typeof message !== "string") forgetStoredUploads();
    uploads.clear();
    $("#uploads").replaceChildren();
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(EMAIL_KEY);
    clearTimeout(jobsTimer);
    jobRows.clear();
    $("#jobs").replaceChildren();
    $("#app").hidden = true;
    $("#who").hidden = true;
    $("#login-section").hidden = false;
    showError(typeof message === "string" ? message : "");
    notice(typeof message === "string" ? "" : "You are logged out.");
    $("#email").focus();
  }

  async function enter() {
    $("#login-section").hidden = true;
    $("#app").hidden = false;
    $("#who").hidden = false;
    $("#who-email").textContent = "Logged in as " + (sessionStorage.getItem(EMAIL_KEY) || "");
    notice("Logged in.");
    $("#convert-title").focus({ preventScroll: true });
    if (!catalog) await loadFormats();
    refreshJobs();
  }

  // --- the options, from GET /formats ------------------------------------------------------

  function fill(select, entries, chosen) {
    select.replaceChildren(...entries.map(([value, label]) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      option.selected = value === chosen;
      return option;
    }));
  }

  function fillQualities() {
    const format = catalog.formats.find((f) => f.name === $("#opt-format").value);
    const select = $("#opt-quality");
    if (!format || format.lossless || !format.qualities.length) {
      fill(select, [["", "Lossless (no quality to choose)"]], "");
      select.disabled = true;
      return;
    }
    select.disabled = false;
    fill(select, format.qualities.map((q) => [q.name, `${q.name} — ${q.description}`]),
      format.default_quality);
  }

  async function loadFormats() {
    try {
      catalog = await (await api("/formats")).json();
    } catch (err) {
      showError(messageOf(err));
      return;
    }
    fill($("#opt-format"), catalog.formats.map((f) => [f.name, f.label]), catalog.default_format);
    fillQualities();
    fill($("#opt-normalize"), LOUDNESS, "");
    const channels = (catalog.options.channels && catalog.options.channels.values) || ["mono", "stereo"];
    fill($("#opt-channels"),
      [["", "As the source"], ...channels.map((c) => [c, c[0].toUpperCase() + c.slice(1)])], "");
  }

  /** The options chosen now, as upload metadata (what is left at its default is not sent). */
  function chosenOptions() {
    const options = {};
    for (const name of ["format", "quality", "start", "end", "normalize", "track", "channels"]) {
      const control = $("#opt-" + name);
      if (control && !control.disabled && control.value.trim()) options[name] = control.value.trim();
    }
    const format = catalog && catalog.formats.find((f) => f.name === options.format);
    if (format && options.quality === format.default_quality) delete options.quality;
    return options;
  }

  // --- uploads (tus) ----------------------------------------------------------------------------

  function bytes(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " GB";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
    return Math.max(1, Math.round(n / 1e3)) + " kB";
  }

  /**
   * tus-js-client's key for resuming: its own (the file and the endpoint) plus the account and
   * the options chosen. The same file added again after a reload with other options starts a
   * new upload (an upload's options are fixed when it is created); with the same ones it
   * resumes the earlier upload.
   */
  function fingerprint(file, options) {
    const chosen = Object.keys(options.metadata || {}).sort()
      .map((name) => encodeURIComponent(name) + "=" + encodeURIComponent(options.metadata[name]))
      .join("&");
    return Promise.resolve([
      "tus-br", file.name, file.type, file.size, file.lastModified, options.endpoint,
      sessionStorage.getItem(EMAIL_KEY) || "", chosen,
    ].join("-"));
  }

  function addFiles(files) {
    showError("");
    for (const file of files) startUpload(file, chosenOptions());
  }

  function startUpload(file, options) {
    const row = $("#upload-template").content.firstElementChild.cloneNode(true);
    const item = { file, row, state: "starting", upload: null };
    $(".name", row).textContent = file.name;
    $(".size", row).textContent = bytes(file.size);
    const progress = $(".bar-progress", row);
    progress.setAttribute("aria-label", "Upload of " + file.name);
    $(".pause", row).setAttribute("aria-label", "Pause the upload of " + file.name);
    $(".resume", row).setAttribute("aria-label", "Resume the upload of " + file.name);
    $(".remove", row).setAttribute("aria-label", "Cancel the upload of " + file.name);
    const status = (text) => { $(".status", row).textContent = text; };
    const buttons = (paused) => {
      $(".pause", row).hidden = paused;
      $(".resume", row).hidden = !paused;
    };

    item.upload = new tus.Upload(file, {
      endpoint: "/uploads",
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      metadata: Object.assign({ filename: file.name }, options),
      fingerprint,
      removeFingerprintOnSuccess: true,
      onBeforeRequest(request) {
        request.setHeader("Authorization", "Bearer " + token);
      },
      onShouldRetry(err) {
        // Offline: no point trying now; the upload waits for the browser's `online` event.
        const code = err.originalResponse ? err.originalResponse.getStatus() : 0;
        return navigator.onLine && (code === 0 || code >= 500 || code === 409 || code === 423);
      },
      onProgress(sent, total) {
        const percent = total ? Math.floor((sent / total) * 100) : 0;
        progress.value = percent;
        if (item.state === "uploading" || item.state === "starting") {
          item.state = "uploading";
          status(`Uploading: ${percent} % (${bytes(sent)} of ${bytes(total)})`);
        }
      },
      onSuccess() {
        item.state = "done";
        progress.value = 100;
        status("Uploaded; converting (see Your files below).");
        $(".pause", row).hidden = true;
        $(".resume", row).hidden = true;
        $(".remove", row).hidden = true;
        uploads.delete(item);
        refreshJobs();
        setTimeout(() => row.remove(), 4000);
      },
      onError(err) {
        const code = err.originalResponse ? err.originalResponse.getStatus() : 0;
        if (item.state === "paused" || item.state === "removed") return;
        if (code === 0) {
          item.state = "offline";
          buttons(true);
          status("Connection lost: the upload resumes by itself when it is back (or press Resume).");
          return;
        }
        if (code === 401) {
          logout("Your session has ended; log in again (an upload resumes when you add the same file).");
          return;
        }
        item.state = "failed";
        buttons(true);
        $(".resume", row).hidden = true;
        $(".remove", row).textContent = "Dismiss";
        $(".remove", row).setAttribute("aria-label", "Dismiss the upload of " + file.name);
        status("Not uploaded: " + messageOf(err));
        showError(`${file.name}: ${messageOf(err)}`);
        uploads.delete(item);
      },
    });

    $(".pause", row).addEventListener("click", () => {
      item.state = "paused";
      item.upload.abort();
      buttons(true);
      status(`Paused at ${progress.value} %.`);
      $(".resume", row).focus();
    });
    $(".resume", row).addEventListener("click", () => {
      resume(item);
      $(".pause", row).focus();
    });
    $(".remove", row).addEventListener("click", () => {
      const failed = item.state === "failed";
      item.state = "removed";
      uploads.delete(item);
      const neighbours = [row.nextElementSibling, row.previousElementSibling];
      row.remove();
      if (!neighbours.some(focusIn)) $("#choose").focus();
      if (failed) return;  // the server keeps nothing of it already
      item.upload.abort(true).catch(() => {});
      notice(`The upload of ${file.name} was cancelled.`);
    });

    $("#uploads").append(row);
    uploads.add(item);
    status("Starting…");
    item.upload.findPreviousUploads().then((previous) => {
      if (previous.length) item.upload.resumeFromPreviousUpload(previous[0]);
      item.upload.start();
    });
  }

  function resume(item) {
    item.state = "uploading";
    $(".pause", item.row).hidden = false;
    $(".resume", item.row).hidden = true;
    $(".status", item.row).textContent = "Resuming…";
    item.upload.start();
  }

  window.addEventListener("online", () => {
    for (const item of uploads) if (item.state === "offline") resume(item);
  });

  function setUpDrop() {
    const drop = $("#drop");
    const input = $("#file-input");
    $("#choose").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      addFiles(Array.from(input.files));
      input.value = "";
    });
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (event) => {
        event.preventDefault();
        drop.classList.add("over");
      });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      addFiles(Array.from(event.dataTransfer.files));
    });
  }

  // --- the jobs list -----------------------------------------------------------------------

  function duration(seconds) {
    if (seconds == null) return "";
    const s = Math.round(seconds);
    return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
  }

  function describeOptions(options) {
    if (!options) return "";
    const parts = [options.format.toUpperCase() + (options.quality ? " " + options.quality : "")];
    if (options.start != null || options.end != null) {
      parts.push(`${options.start || 0}–${options.end != null ? options.end : "end"} s`);
    }
    if (options.normalize != null) parts.push(`${options.normalize} LUFS`);
    if (options.track != null) parts.push(`track ${options.track}`);
    if (options.channels) parts.push(options.channels);
    return parts.join(", ");
  }

  function jobRow(job) {
    let row = jobRows.get(job.fid);
    if (row) return row;
    row = $("#job-template").content.firstElementChild.cloneNode(true);
    row.dataset.fid = job.fid;
    const name = job.filename || job.fid;
    $(".name", row).textContent = name;
    $(".bar-progress", row).setAttribute("aria-label", "Conversion of " + name);
    for (const [cls, verb] of [["download", "Download"], ["cancel", "Cancel"],
      ["retry", "Retry"], ["delete", "Delete"]]) {
      $("." + cls, row).setAttribute("aria-label", `${verb} ${name}`);
    }
    $(".download", row).addEventListener("click", () => download(job.fid, name));
    $(".cancel", row).addEventListener("click", (event) => act("POST", `/jobs/${job.fid}/cancel`, `${name}: cancelled.`, event.currentTarget));
    $(".retry", row).addEventListener("click", (event) => act("POST", `/jobs/${job.fid}/retry`, `${name}: queued again.`, event.currentTarget));
    $(".delete", row).addEventListener("click", (event) => {
      if (window.confirm(`Delete ${name} and its converted file?`)) {
        act("DELETE", `/jobs/${job.fid}`, `${name}: deleted.`, event.currentTarget);
      }
    });
    jobRows.set(job.fid, row);
    return row;
  }

  function renderJob(job) {
    const row = jobRow(job);
    const state = $(".state", row);
    state.textContent = job.state;
    state.className = "state badge state-" + job.state;
    const progress = $(".bar-progress", row);
    progress.value = job.progress == null ? 0 : job.progress;
    progress.hidden = !["queued", "converting", "done"].includes(job.state);
    $(".eta", row).textContent = job.state === "converting"
      ? `${Math.round(job.progress || 0)} %` + (job.eta_seconds != null ? `, about ${duration(job.eta_seconds)} left` : "")
      : (job.state === "done" && job.duration_seconds ? "length " + duration(job.duration_seconds) : "");
    $(".job-options", row).textContent = describeOptions(job.options);
    $(".expires", row).textContent = job.expires_at
      ? (job.expired ? "expired" : "kept until " + new Date(job.expires_at).toLocaleString())
      : "";
    const warning = $(".warning", row);
    warning.textContent = job.warning ? "Warning: " + job.warning : "";
    warning.hidden = !job.warning;
    const reason = $(".reason", row);
    reason.textContent = job.reason || "";
    reason.hidden = !(job.reason && ["failed", "cancelled"].includes(job.state));
    $(".download", row).hidden = !(job.state === "done" && !job.expired);
    $(".cancel", row).hidden = !["queued", "converting"].includes(job.state);
    $(".retry", row).hidden = !(["failed", "cancelled"].includes(job.state) && !job.expired);
    return row;
  }

  async function refreshJobs() {
    clearTimeout(jobsTimer);
    if (!token) return;
    try {
      const page = await (await api("/jobs?per_page=50")).json();
      const list = $("#jobs");
      const seen = new Set();
      page.jobs.forEach((job, index) => {
        seen.add(job.fid);
        const row = renderJob(job);
        if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
      });
      for (const [fid, row] of jobRows) {
        if (!seen.has(fid)) {
          row.remove();
          jobRows.delete(fid);
        }
      }
      $("#jobs-empty").hidden = page.jobs.length > 0;
    } catch (err) {
      if (token) showError(messageOf(err));
    }
    if (token) jobsTimer = setTimeout(refreshJobs, JOBS_EVERY_MS);
  }

  /** Focus the first visible button of `row`, if it is still on the page; whether it did. */
  function focusIn(row) {
    const button = row && row.isConnected
      ? [...row.querySelectorAll(".actions button")].find((b) => !b.hidden)
      : null;
    if (button) button.focus();
    return Boolean(button);
  }

  /**
   * Do a job's action; when it hid the pressed button (Cancel, Retry) or removed its row
   * (Delete), focus goes to the row's next button, else a neighbouring row's, else the list's
   * heading, not to the page's start.
   */
  async function act(method, path, done, pressed) {
    const row = pressed.closest("li");
    const neighbours = [row, row.nextElementSibling, row.previousElementSibling];
    showError("");
    try {
      await api(path, { method });
      notice(done);
    } catch (err) {
      showError(messageOf(err));
    }
    await refreshJobs();
    if (pressed.isConnected && !pressed.hidden) return;
    const focused = document.activeElement;  // moved on meanwhile: leave it be
    if (focused && focused !== pressed && focused !== document.body) return;
    if (!neighbours.some(focusIn)) $("#jobs-title").focus();
  }


  function filenameOf(response, fallback) {
    const header = response.headers.get("Content-Disposition") || "";
    const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
    if (star) return decodeURIComponent(star[1]);
    const plain = /filename="?([^";]+)"?/i.exec(header);
    return plain ? plain[1] : fallback;
  }

  async function download(fid, name) {
    showError("");
    try {
      const response = await api(`/download?fid=${encodeURIComponent(fid)}`);
      const blob = await response.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = filenameOf(response, name.replace(/\.[^.]*$/, "") + ".mp3");
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      notice(`${link.download} downloaded.`);
    } catch (err) {
      showError(messageOf(err));
    }
  }

  // --- start ---------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#login-form").addEventListener("submit", login);
    $("#logout").addEventListener("click", () => logout());
    $("#opt-format").addEventListener("change", fillQualities);
    setUpDrop();
    if (token) enter();
    else $("#email").focus();
  });
})();
