"use strict";
// PostQued publish card. Speaks the MCP Apps bridge (JSON-RPC over postMessage with the host).
// Every value from a tool result is inserted with textContent: nothing from data ever becomes HTML.
(function () {
  const card = document.getElementById("card");
  const pending = new Map();
  let nextId = 1;
  let toolArgs = null;
  let hostContext = {};

  // --- the bridge --------------------------------------------------------------------------------
  function send(message) {
    window.parent.postMessage(Object.assign({ jsonrpc: "2.0" }, message), "*");
  }
  function request(method, params) {
    const id = nextId++;
    return new Promise(function (resolve, reject) {
      pending.set(id, { resolve: resolve, reject: reject });
      send({ id: id, method: method, params: params });
    });
  }
  function notify(method, params) {
    send({ method: method, params: params || {} });
  }
  function callTool(name, args) {
    return request("tools/call", { name: name, arguments: args });
  }
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) return;
    const msg = event.data;
    if (!msg || msg.jsonrpc !== "2.0") return;
    if (msg.id !== undefined && !msg.method) {
      const waiting = pending.get(msg.id);
      if (!waiting) return;
      pending.delete(msg.id);
      if (msg.error) waiting.reject(new Error(String(msg.error.message || "request failed")));
      else waiting.resolve(msg.result);
      return;
    }
    const params = msg.params || {};
    if (msg.method === "ui/notifications/tool-input") toolArgs = params.arguments || {};
    else if (msg.method === "ui/notifications/tool-result") onResult(params);
    else if (msg.method === "ui/notifications/host-context-changed") applyContext(params);
    else if (msg.method === "ui/notifications/tool-cancelled") show([el("p", "muted", "The tool call was cancelled.")]);
    else if (msg.method === "ui/resource-teardown" && msg.id !== undefined) send({ id: msg.id, result: {} });
    else if (msg.method === "ping" && msg.id !== undefined) send({ id: msg.id, result: {} });
  });

  function applyContext(ctx) {
    hostContext = Object.assign(hostContext, ctx || {});
    if (ctx && (ctx.theme === "light" || ctx.theme === "dark")) document.documentElement.dataset.theme = ctx.theme;
    const vars = ctx && ctx.styles && ctx.styles.variables;
    if (vars && typeof vars === "object") {
      for (const key of Object.keys(vars)) {
        if (/^--[a-z0-9-]+$/.test(key) && typeof vars[key] === "string") {
          document.documentElement.style.setProperty(key, vars[key]);
        }
      }
    }
  }

  // --- building the page from text only ----------------------------------------------------------
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function add(parent, children) {
    for (const child of children) if (child) parent.appendChild(child);
    return parent;
  }
  function show(children) {
    card.replaceChildren();
    add(card, children);
  }
  function pairs(rows) {
    const dl = el("dl");
    for (const row of rows) {
      if (row[1] === null || row[1] === undefined || row[1] === "") continue;
      add(dl, [el("dt", null, row[0]), el("dd", null, row[1])]);
    }
    return dl;
  }

  // Characters a person cannot see (controls, bidi overrides and isolates, zero-width and other format characters,
  // line separators; as postqued/text.py judges them, line breaks and the emoji joiner aside) are shown as visible
  // U+XXXX marks, so the caption cannot look different from what is sent; hashtags and mentions are highlighted.
  const TOKEN = /([#\uFF03][\p{L}\p{N}\p{M}_]+|@[\p{L}\p{N}_.]+)|((?![\n\u200D])[\p{C}\p{Zl}\p{Zp}])/gu;
  function caption(text) {
    const box = el("div", "caption");
    box.setAttribute("dir", "ltr");
    let last = 0;
    for (const m of text.matchAll(TOKEN)) {
      if (m.index > last) box.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1]) box.appendChild(el("span", "tag", m[1]));
      else box.appendChild(el("span", "ctl", "U+" + m[2].codePointAt(0).toString(16).toUpperCase().padStart(4, "0")));
      last = m.index + m[0].length;
    }
    if (last < text.length) box.appendChild(document.createTextNode(text.slice(last)));
    return box;
  }

  function when(iso) {
    if (!iso) return ["As soon as it is approved", null];
    const d = new Date(iso);
    if (isNaN(d.getTime())) return [String(iso), null];
    const parts = { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    let local;
    try {
      const zone = typeof hostContext.timeZone === "string" ? hostContext.timeZone : undefined;
      const locale = typeof hostContext.locale === "string" ? hostContext.locale : undefined;
      local = new Intl.DateTimeFormat(locale, Object.assign({ timeZone: zone, timeZoneName: "short" }, parts)).format(d);
    } catch (e) {
      local = d.toString();
    }
    const utc = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC", hourCycle: "h23" }, parts)).format(d);
    return [local, utc + " UTC"];
  }
  function bytes(n) {
    if (typeof n !== "number") return null;
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + units[i];
  }
  function initial(name, platform) {
    const first = Array.from(String(name || platform || "?").replace(/^@/, ""))[0] || "?";
    return first.toUpperCase();
  }
  function errorText(result) {
    const block = (result && result.content || []).find(function (c) { return c && c.type === "text"; });
    return block ? String(block.text) : "The server reported an error.";
  }

  // --- results -----------------------------------------------------------------------------------
  function onResult(result) {
    const sc = result && result.structuredContent;
    if (result && result.isError) return show([el("h1", null, "PostQued"), el("p", "error-text", errorText(result))]);
    if (!sc || typeof sc !== "object") return show([el("p", "muted", "Nothing to show.")]);
    if (sc.dry_run === true) return onDryRun(sc);
    if (sc.dry_run === false) return showStatus({ publish_id: sc.publish_id, status: sc.status, targets: sc.targets, terminal: false }, "Sent");
    if (sc.publish_id) return showStatus(sc, "Publish status");
    show([el("p", "muted", "Nothing to show.")]);
  }

  function onDryRun(sc) {
    if (sc.valid && sc.plan_id && !toolArgs) {
      return show([el("h1", null, "Preview unavailable"), el("p", "muted", "The host did not pass the dry run's arguments; nothing was sent.")]);
    }
    if (!sc.valid || !sc.plan_id) {
      return show([
        el("h1", null, "This post cannot go out as it is"),
        el("p", "muted", "Nothing was sent."),
        issuesList(sc.issues || []),
      ]);
    }
    show([el("p", "muted", "Loading the preview…")]);
    const args = { plan_id: sc.plan_id, content_ids: toolArgs.content_ids || [], targets: toolArgs.targets || [] };
    if (toolArgs.workspace_id) args.workspace_id = toolArgs.workspace_id;
    callTool("preview_publish_plan", args).then(function (r) {
      if (r.isError) return show([el("h1", null, "Preview unavailable"), el("p", "error-text", errorText(r))]);
      showPreview(r.structuredContent, args);
    }, function (e) {
      show([el("h1", null, "Preview unavailable"), el("p", "error-text", e.message)]);
    });
  }

  function issuesList(issues) {
    if (!issues.length) return el("p", "ok", "All checks passed (local rules and PostQued's dry run).");
    const sorted = issues.slice().sort(function (a, b) { return (a.severity === "note") - (b.severity === "note"); });
    const ul = el("ul", "issues");
    for (const issue of sorted) {
      const li = el("li", issue.severity === "note" ? "note" : "error");
      add(li, [el("span", "code", issue.code), document.createTextNode(" "), el("span", null, issue.message)]);
      if (issue.path) add(li, [el("span", "muted", " (" + issue.path + ")")]);
      ul.appendChild(li);
    }
    return ul;
  }

  function targetBox(t) {
    const box = el("section", "target");
    const who = el("div", "who");
    const name = el("div");
    add(name, [el("div", "name", t.account_username ? "@" + String(t.account_username).replace(/^@/, "") : t.account_id),
      el("div", "muted", t.platform + " · " + (t.intent === "publish" ? "direct post" : "draft to the inbox"))]);
    add(who, [el("div", "avatar", initial(t.account_username, t.platform)), name]);
    const over = t.caption_length > t.caption_limit;
    const unit = t.caption_unit === "utf16" ? " (UTF-16 units)" : " characters";
    const schedule = when(t.dispatch_at);
    const rows = [["Privacy", t.privacy_level || "platform default"], ["When", schedule[0]], ["In UTC", schedule[1]]];
    for (const s of t.interactions || []) rows.push([s.label, s.value]);
    for (const s of t.options || []) rows.push([s.label, s.value]);
    add(box, [who, caption(String(t.caption)), el("div", "count" + (over ? " over" : ""), t.caption_length + " / " + t.caption_limit + unit), pairs(rows)]);
    return box;
  }

  function mediaBox(m) {
    const box = el("div", "media");
    if (typeof m.thumbnail === "string" && m.thumbnail.startsWith("data:image/png;base64,")) {
      const img = el("img", "thumb");
      img.alt = m.filename || "image";
      img.src = m.thumbnail;
      box.appendChild(img);
    } else {
      box.appendChild(el("div", "nothumb", m.media_type === "video" ? "video" : "no preview"));
    }
    const dims = m.width && m.height ? m.width + " × " + m.height : null;
    const secs = typeof m.duration_ms === "number" ? (m.duration_ms / 1000).toFixed(1) + " s" : null;
    add(box, [pairs([["File", m.filename || m.content_id], ["Type", m.mime_type || m.media_type], ["Dimensions", dims],
      ["Orientation", m.orientation], ["Duration", secs], ["Size", bytes(m.size)]])]);
    return box;
  }

  function showPreview(p, args) {
    const heading = el("h1", null, "Review before posting");
    if (p.sandbox) heading.appendChild(el("span", "badge", "sandbox"));
    const parts = [heading, el("p", "muted", "This is exactly what will be sent. Nothing can be changed here.")];
    parts.push(el("h2", null, "Checks"), issuesList(p.issues || []));
    parts.push(el("h2", null, p.targets.length === 1 ? "Where" : "Where (" + p.targets.length + ")"));
    for (const t of p.targets) parts.push(targetBox(t));
    if (p.media.length) {
      parts.push(el("h2", null, "Media"));
      for (const m of p.media) parts.push(mediaBox(m));
    }
    const approve = el("button", "primary", "Approve and post");
    const cancel = el("button", null, "Cancel");
    approve.id = "approve";
    cancel.id = "cancel";
    approve.disabled = !p.approvable;
    const status = el("span", "muted", p.asks_again ? "Your host will ask you to confirm once more." : "");
    status.id = "status";
    parts.push(add(el("div", "actions"), [approve, cancel, status]));
    show(parts);

    function busy(text) {
      approve.disabled = true;
      cancel.disabled = true;
      status.className = "muted";
      status.textContent = text;
    }
    approve.addEventListener("click", function () {
      busy("Posting…");
      callTool("approve_publish_plan", args).then(function (r) {
        if (r.isError) {
          status.className = "error-text";
          status.textContent = errorText(r);
          approve.disabled = !p.approvable;
          cancel.disabled = false;
          return;
        }
        const sc = r.structuredContent || {};
        tellModel("The user approved the plan " + p.plan_id + " on the preview card; publish_id " + sc.publish_id + ".");
        showStatus({ publish_id: sc.publish_id, status: sc.status, targets: sc.targets, terminal: false }, sc.replayed ? "Already sent earlier" : "Sent");
      }, function (e) {
        status.className = "error-text";
        status.textContent = e.message;
      });
    });
    cancel.addEventListener("click", function () {
      busy("Canceling…");
      callTool("decline_publish_plan", { plan_id: p.plan_id }).then(function (r) {
        status.className = r.isError ? "error-text" : "muted";
        status.textContent = r.isError ? errorText(r) : "Canceled. Nothing was posted.";
        if (!r.isError) tellModel("The user declined the plan " + p.plan_id + " on the preview card; nothing was posted.");
      }, function (e) {
        status.className = "error-text";
        status.textContent = e.message;
      });
    });
  }

  function tellModel(text) {
    request("ui/update-model-context", { content: [{ type: "text", text: text }] }).catch(function () {});
  }

  function showStatus(s, title) {
    const heading = el("h1", null, title);
    if (s.status) heading.appendChild(el("span", "badge" + (/fail|cancel/.test(String(s.status)) ? " warn" : ""), s.status));
    const parts = [heading, pairs([["Publish id", s.publish_id], ["Finished", s.terminal ? "yes" : "not yet"]])];
    if (s.timed_out && s.poll_after) parts.push(el("p", "muted", "Still processing; check again after " + when(s.poll_after)[0] + "."));
    const table = el("table");
    add(table, [add(el("tr"), [el("th", null, "Platform"), el("th", null, "Account"), el("th", null, "Status"), el("th", null, "Detail")])]);
    for (const t of s.targets || []) {
      const detail = t.error ? (typeof t.error === "string" ? t.error : JSON.stringify(t.error)) : t.published_at ? "published " + when(t.published_at)[0] : t.dispatch_at ? "at " + when(t.dispatch_at)[0] : "";
      add(table, [add(el("tr"), [el("td", null, t.platform), el("td", null, t.account_username || t.account_id), el("td", null, t.status), el("td", null, detail)])]);
    }
    parts.push(table);
    if (s.publish_id && !s.terminal) {
      const refresh = el("button", null, "Refresh status");
      refresh.addEventListener("click", function () {
        refresh.disabled = true;
        callTool("get_publish_status", { publish_id: s.publish_id }).then(function (r) {
          if (r.isError) return show([el("h1", null, title), el("p", "error-text", errorText(r))]);
          showStatus(r.structuredContent, "Publish status");
        }, function (e) {
          refresh.disabled = false;
          refresh.textContent = "Refresh failed: " + e.message;
        });
      });
      parts.push(add(el("div", "actions"), [refresh]));
    }
    show(parts);
  }

  // --- start -------------------------------------------------------------------------------------
  new ResizeObserver(function () {
    const r = document.documentElement.getBoundingClientRect();
    notify("ui/notifications/size-changed", { width: Math.ceil(r.width), height: Math.ceil(r.height) });
  }).observe(document.documentElement);

  request("ui/initialize", {
    appInfo: { name: "postqued-publish-card", version: "1" },
    appCapabilities: {},
    protocolVersion: "2026-01-26",
  }).then(function (result) {
    applyContext((result && result.hostContext) || {});
    notify("ui/notifications/initialized", {});
  }, function () {
    notify("ui/notifications/initialized", {});
  });
})();
