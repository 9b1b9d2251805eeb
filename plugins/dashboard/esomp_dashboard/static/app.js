// E-SOMP dashboard: live updates by server-sent events, the job monitor's tree, search, and operator actions.
"use strict";
(function () {
  const COLOURS = {pending: "grey", waiting: "grey", running: "blue", succeeded: "green", failed: "red",
                   paused: "amber", cancelled: "grey", skipped: "amber"};
  const body = document.body;
  const operator = body.dataset.role === "operator";

  function csrf() { return document.querySelector('meta[name="csrf-token"]').content; }

  async function post(url, payload) {
    const response = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}, body: JSON.stringify(payload || {})});
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value; else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function stateBadge(state) { return el("span", {class: "state " + (COLOURS[state] || "grey"), text: state}); }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
  }

  function size(bytes) {
    if (!bytes) return "0";
    const units = ["B", "KB", "MB", "GB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
  }

  // --- live updates: one EventSource; pages say what to do on "change" ---------------------------------------
  function live(onChange) {
    const holder = document.querySelector("[data-live]");
    if (!holder || !window.EventSource) return;
    const date = holder.dataset.live;
    const source = new EventSource("/events" + (date ? "?date=" + encodeURIComponent(date) : ""));
    source.addEventListener("change", onChange);
    source.addEventListener("logout", () => {  // the session ended (logout, removal, role change): log in again
      source.close();
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    });
  }

  async function refreshFragment(holder) {
    const active = document.activeElement;
    if (holder.contains(active) && active.matches("input, textarea")) return; // do not wipe what is being typed
    if ([...holder.querySelectorAll("input")].some((input) => input.value)) return;
    const response = await fetch(holder.dataset.fragment, {credentials: "same-origin"});
    if (response.ok) { holder.innerHTML = await response.text(); decorate(holder); }
  }

  function decorate(root) {
    for (const timeline of root.querySelectorAll(".timeline")) placeTimeline(timeline);
  }

  function placeTimeline(timeline) {
    const start = Date.parse(timeline.dataset.start), end = Date.parse(timeline.dataset.end || timeline.dataset.now);
    const span = Math.max(end - start, 1);
    for (const bar of timeline.querySelectorAll(".tl-bar")) {
      const a = Date.parse(bar.dataset.start), b = bar.dataset.end ? Date.parse(bar.dataset.end) : end;
      bar.style.left = (100 * (a - start) / span).toFixed(2) + "%";
      bar.style.width = Math.max(0.5, 100 * (b - a) / span).toFixed(2) + "%";
    }
  }

  // --- job monitor ------------------------------------------------------------------------------------------
  function monitor(root) {
    const date = root.dataset.live;
    const tbody = root.querySelector("#tree tbody");
    const search = root.querySelector("#search"), list = root.querySelector("#suggestions");
    const categorySelect = root.querySelector("#filter-category"), stateSelect = root.querySelector("#filter-state");
    const note = root.querySelector("#filter-note");
    const expanded = new Set(), collapsed = new Set();
    const filter = {job: null, product: null};
    let tree = null, picked = null;

    async function load() {
      const response = await fetch("/api/tree?date=" + encodeURIComponent(date), {credentials: "same-origin"});
      if (!response.ok) return;
      tree = await response.json();
      render();
    }

    function jobMatches(job) {
      if (filter.job && job.name !== filter.job) return false;
      if (filter.product && !job.products.includes(filter.product)) return false;
      if (categorySelect.value && job.category !== categorySelect.value) return false;
      if (stateSelect.value && job.state !== stateSelect.value) return false;
      return true;
    }

    function toggle(key, open) {
      return el("button", {type: "button", class: "toggle", "data-key": key, "aria-expanded": String(open),
                           text: open ? "▾" : "▸"});
    }

    function counts(states) {
      return Object.entries(states).map(([state, n]) => `${state} ${n}`).join(" · ");
    }

    function render() {
      if (!tree) return;
      renderBatchButtons();
      const known = new Set([...categorySelect.options].map((o) => o.value));
      for (const category of tree.categories) if (!known.has(category)) categorySelect.append(el("option", {value: category, text: category}));
      const rows = [];
      let shown = 0;
      for (const bt of tree.business_types) {
        const btKey = "bt:" + bt.name, btOpen = !collapsed.has(btKey);
        const batchRows = [];
        for (const batch of bt.batches) {
          const jobs = batch.jobs.filter(jobMatches);
          if (!jobs.length) continue;
          const bKey = `b:${bt.name}:${batch.batch}`, bOpen = !collapsed.has(bKey);
          batchRows.push(el("tr", {class: "level-2 batch-row" + (batch.paused ? " is-paused" : ""), "data-batch": batch.batch},
            el("td", {}, toggle(bKey, bOpen), batch.batch ? ` 批次 batch ${batch.batch}` : " 无批次 no batch"),
            el("td", {}, stateBadge(batch.paused && batch.state !== "running" ? "paused" : batch.state)),
            el("td", {colspan: 7, class: "muted", text: counts(batch.states)})));
          if (!bOpen) continue;
          for (const job of jobs) {
            shown += 1;
            const jKey = "j:" + job.id, jOpen = expanded.has(jKey) || (filter.product !== null);
            const link = el("a", {href: `/jobs/${job.id}`, text: job.name});
            batchRows.push(el("tr", {class: "level-3 job-row" + (picked === job.name ? " picked" : ""), "data-job": job.name,
                                     "data-job-id": job.id, "data-state": job.state},
              el("td", {}, job.products.length ? toggle(jKey, jOpen) : el("span", {class: "toggle-space"}), " ", link),
              el("td", {}, stateBadge(job.state)), el("td", {text: job.category}),
              el("td", {text: (job.started_at || "").slice(11, 19)}), el("td", {text: duration(job.seconds)}),
              el("td", {text: job.files}), el("td", {text: job.records}), el("td", {text: size(job.bytes)}),
              el("td", {class: job.error ? "error" : "", text: job.error || (job.attempts > 1 ? `attempt ${job.attempts}` : "")})));
            if (!jOpen) continue;
            for (const product of job.products) {
              if (filter.product && product !== filter.product) continue;
              batchRows.push(el("tr", {class: "level-4 product-row", "data-product": product},
                el("td", {text: product}), el("td", {}, stateBadge(job.state)), el("td", {colspan: 7})));
            }
          }
        }
        if (!batchRows.length) continue;
        rows.push(el("tr", {class: "level-1 type-row"}, el("td", {}, toggle(btKey, btOpen), " " + bt.name),
          el("td", {}, stateBadge(bt.state)), el("td", {colspan: 7, class: "muted", text: counts(bt.states)})));
        if (btOpen) rows.push(...batchRows);
      }
      tbody.replaceChildren(...rows);
      const parts = [];
      if (filter.job) parts.push("job " + filter.job);
      if (filter.product) parts.push("product " + filter.product);
      note.textContent = parts.length ? "showing " + parts.join(", ") + ` (${shown} jobs)` : "";
    }

    function renderBatchButtons() {
      const holder = root.querySelector("#batch-buttons");
      const paused = new Set(tree.paused_batches);
      holder.replaceChildren(...tree.batches.map((batch) => {
        const isPaused = paused.has(batch);
        if (!operator) return el("span", {class: "batch-status", text: `批次 ${batch}: ${isPaused ? "paused" : "active"}`});
        return el("button", {type: "button", class: "batch-action " + (isPaused ? "resume" : "pause"),
                             id: `${isPaused ? "resume" : "pause"}-batch-${batch}`, "data-batch": batch,
                             "data-action": isPaused ? "resume" : "pause",
                             text: `${isPaused ? "▶ Resume 启动" : "⏸ Pause 暂停"} 批次 ${batch}`});
      }));
    }

    root.addEventListener("click", async (event) => {
      const toggleButton = event.target.closest("button.toggle");
      if (toggleButton) {
        const key = toggleButton.dataset.key;
        if (key.startsWith("j:")) { expanded.has(key) ? expanded.delete(key) : expanded.add(key); }
        else { collapsed.has(key) ? collapsed.delete(key) : collapsed.add(key); }
        render();
        return;
      }
      const action = event.target.closest("button.batch-action");
      if (action) {
        action.disabled = true;
        try { await post(`/api/batches/${action.dataset.batch}/${action.dataset.action}`, {date}); }
        catch (error) { alert(error.message); }
        await load();
      }
    });
    categorySelect.addEventListener("change", render);
    stateSelect.addEventListener("change", render);
    root.querySelector("#clear-filters").addEventListener("click", () => {
      filter.job = filter.product = picked = null; categorySelect.value = stateSelect.value = ""; search.value = "";
      render();
    });

    // search: "/" focuses it; suggestions as you type; picking one filters the tree to it
    document.addEventListener("keydown", (event) => {
      if (event.key === "/" && !event.target.matches("input, textarea, select")) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    });
    let timer = null, active = -1;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(suggest, 120);
    });
    async function suggest() {
      const q = search.value.trim();
      if (!q) { list.hidden = true; return; }
      const response = await fetch(`/api/suggest?date=${encodeURIComponent(date)}&q=${encodeURIComponent(q)}`,
                                   {credentials: "same-origin"});
      if (!response.ok || search.value.trim() !== q) return;
      const found = await response.json();
      active = -1;
      list.replaceChildren(...found.map((item) => el("li", {role: "option", class: "suggestion kind-" + item.kind,
        "data-kind": item.kind, "data-value": item.value},
        el("span", {class: "kind", text: item.kind}), " " + item.label)));
      if (!found.length) list.append(el("li", {class: "muted", text: "nothing matches"}));
      list.hidden = false;
    }
    search.addEventListener("keydown", (event) => {
      const items = [...list.querySelectorAll("li.suggestion")];
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        active = Math.max(0, Math.min(items.length - 1, active + (event.key === "ArrowDown" ? 1 : -1)));
        items.forEach((item, i) => item.classList.toggle("active", i === active));
      } else if (event.key === "Enter" && items.length) {
        event.preventDefault();
        pick(items[Math.max(active, 0)]);
      } else if (event.key === "Escape") {
        list.hidden = true;
      }
    });
    list.addEventListener("mousedown", (event) => {
      const item = event.target.closest("li.suggestion");
      if (item) { event.preventDefault(); pick(item); }
    });
    search.addEventListener("blur", () => setTimeout(() => { list.hidden = true; }, 150));

    function pick(item) {
      const {kind, value} = item.dataset;
      filter.job = filter.product = picked = null;
      if (kind === "job") { filter.job = picked = value; }
      else if (kind === "product") { filter.product = value; }
      else if (kind === "category") { categorySelect.value = value; }
      search.value = value;
      list.hidden = true;
      search.blur(); // "/" searches again
      render();
      const first = tbody.querySelector("tr.job-row");
      if (first) first.scrollIntoView({block: "center"});
    }

    load();
    live(load);
  }

  // --- pages built on server-rendered fragments --------------------------------------------------------------
  function fragments() {
    const holder = document.querySelector("[data-fragment]");
    if (!holder) return;
    decorate(holder);
    live(() => refreshFragment(holder));
    holder.addEventListener("submit", async (event) => {
      const form = event.target.closest("form.ack");
      if (!form) return;
      event.preventDefault();
      const comment = form.elements.comment.value.trim();
      if (!comment) return;
      try {
        await post(`/api/alerts/${form.dataset.alert}/acknowledge`, {comment});
        form.elements.comment.value = "";
        form.elements.comment.blur();
        await refreshFragment(holder);
      } catch (error) { alert(error.message); }
    });
    holder.addEventListener("click", async (event) => {
      const button = event.target.closest("button.rerun");
      if (!button) return;
      button.disabled = true;
      const noteEl = document.querySelector("#action-note"); // outside the fragment: survives its refresh
      try {
        const result = await post(`/api/jobs/${button.dataset.job}/rerun`);
        noteEl.textContent = `rerun: ${result.jobs.length} job(s) reset; engine ${result.engine}`;
      } catch (error) { noteEl.textContent = error.message; button.disabled = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const dateSelect = document.querySelector("#date-select");
    if (dateSelect) dateSelect.addEventListener("change", () => {
      // a job belongs to one day: from its page, another date means that day's monitor
      const url = new URL(/^\/jobs\/\d+/.test(location.pathname) ? "/jobs" : location.pathname, location.origin);
      url.searchParams.set("date", dateSelect.value);
      window.location.assign(url.toString());
    });
    const root = document.querySelector("#monitor");
    if (root) monitor(root); else fragments();
  });
})();
