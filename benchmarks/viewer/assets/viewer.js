"use strict";
// hopgym trajectory viewer. Every value from the run is put in the page with textContent, never as HTML.
(function () {
  const t0 = performance.now();
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const EPISODES = DATA.episodes;
  const PASSAGES = DATA.passages;
  const ROW = 30;
  const $ = (id) => document.getElementById(id);
  const list = $("list"), spacer = $("spacer"), detail = $("detail");
  let shown = [];          // indices into EPISODES that pass the filters
  let selected = -1;       // index into EPISODES
  let haystacks = null;    // lower-cased searchable text per episode, built on the first text search
  const byKey = new Map();
  EPISODES.forEach((e, i) => byKey.set(e.k, i));

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(x) {
    if (typeof x !== "number") return String(x);
    return Number.isInteger(x) ? x.toLocaleString("en") : x.toFixed(3);
  }

  // Header: the run's metrics from summary.json.
  const summary = DATA.run.summary || {};
  const metrics = $("metrics");
  const headline = Object.assign({}, summary.metrics || {});
  for (const k of ["episodes", "failed", "mean_searches"]) if (typeof summary[k] === "number") headline[k] = summary[k];
  for (const [k, v] of Object.entries(headline)) if (typeof v === "number") metrics.appendChild(el("span", "metric", k + " " + fmt(v) + "  "));
  $("facts").textContent = (DATA.run.facts || []).map(([k, v]) => k + ": " + (typeof v === "object" ? JSON.stringify(v) : v)).join(" · ");

  // Filter choices come from the data.
  const datasets = [...new Set(EPISODES.map((e) => e.d).filter((d) => d))].sort();
  for (const d of datasets) { const o = el("option", null, d); o.value = d; $("f-dataset").appendChild(o); }
  const maxSearches = EPISODES.reduce((m, e) => Math.max(m, e.ns), 0);
  for (let n = 0; n <= maxSearches; n++) { const o = el("option", null, String(n)); o.value = String(n); $("f-searches").appendChild(o); }

  function haystack(e) {
    const parts = [e.k, e.q, e.a || "", (e.g || []).join(" "), e.err || ""];
    for (const t of e.t) { parts.push(t.x); if (t.qy) parts.push(t.qy); }
    return parts.join("\n").toLowerCase();
  }

  function readFilters() {
    return {
      correct: $("f-correct").checked, wrong: $("f-wrong").checked, failed: $("f-failed").checked,
      invalid: $("f-invalid").checked, dataset: $("f-dataset").value, searches: $("f-searches").value,
      text: $("f-text").value.trim().toLowerCase(),
    };
  }

  function applyFilters() {
    const f = readFilters();
    const ns = f.searches === "" ? -1 : Number(f.searches);
    if (f.text && haystacks === null) haystacks = EPISODES.map(haystack);
    shown = [];
    for (let i = 0; i < EPISODES.length; i++) {
      const e = EPISODES[i];
      if (!f[e.o]) continue;
      if (f.invalid && !e.ni) continue;
      if (f.dataset && e.d !== f.dataset) continue;
      if (ns >= 0 && e.ns !== ns) continue;
      if (f.text && haystacks[i].indexOf(f.text) === -1) continue;
      shown.push(i);
    }
    $("count").textContent = shown.length.toLocaleString("en") + " of " + EPISODES.length.toLocaleString("en") + " episodes";
    spacer.style.height = shown.length * ROW + "px";
    list.scrollTop = 0;
    renderRows();
    writeHash();
  }

  // Virtualised list: only the rows in view (plus a margin) exist in the DOM.
  function renderRows() {
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 10);
    const last = Math.min(shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 10);
    spacer.replaceChildren();
    for (let r = first; r < last; r++) {
      const i = shown[r], e = EPISODES[i];
      const row = el("div", "row" + (i === selected ? " selected" : ""));
      row.style.top = r * ROW + "px";
      row.dataset.index = String(i);
      row.dataset.key = e.k;
      row.appendChild(el("span", "badge " + e.o, e.o));
      row.appendChild(el("span", "key", e.k));
      row.appendChild(el("span", "q", e.q));
      if (e.ni) row.appendChild(el("span", "badge invalid", "invalid ×" + e.ni));
      row.appendChild(el("span", "ns", e.ns + " search" + (e.ns === 1 ? "" : "es")));
      spacer.appendChild(row);
    }
  }
  list.addEventListener("scroll", () => window.requestAnimationFrame(renderRows));
  spacer.addEventListener("click", (ev) => {
    const row = ev.target.closest(".row");
    if (row) select(Number(row.dataset.index));
  });
  list.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
    ev.preventDefault();
    const at = shown.indexOf(selected);
    const next = shown[Math.min(shown.length - 1, Math.max(0, at + (ev.key === "ArrowDown" ? 1 : -1)))];
    if (next !== undefined) { select(next); scrollIntoView(next); }
  });
  function scrollIntoView(i) {
    const r = shown.indexOf(i);
    if (r < 0) return;
    if (r * ROW < list.scrollTop || (r + 1) * ROW > list.scrollTop + list.clientHeight) list.scrollTop = Math.max(0, r * ROW - list.clientHeight / 2);
    renderRows();
  }

  function kvTable(pairs) {
    const table = el("table", "kv");
    for (const [k, v] of pairs) {
      const tr = el("tr");
      tr.appendChild(el("td", null, k));
      tr.appendChild(el("td", null, v));
      table.appendChild(tr);
    }
    return table;
  }

  function passageNode(id, text, supporting) {
    const box = el("details", "passage" + (supporting ? " supporting" : ""));
    const sum = el("summary");
    sum.appendChild(el("span", "pid", id));
    if (supporting) sum.appendChild(el("span", "support", " ★ supporting"));
    sum.appendChild(el("span", null, " " + text.slice(0, 90).replace(/\s+/g, " ") + (text.length > 90 ? "…" : "")));
    box.appendChild(sum);
    box.appendChild(el("pre", null, text));
    return box;
  }

  function turnNode(t, n, sup) {
    const box = el("div", "turn");
    const head = el("div", "head");
    head.appendChild(el("span", null, "turn " + n));
    head.appendChild(el("span", "badge kind", t.k));
    if (t.inv) head.appendChild(el("span", "badge invalid", "invalid"));
    if (t.fr) head.appendChild(el("span", null, "finish: " + t.fr));
    head.appendChild(el("span", null, "generate " + t.gs.toFixed(2) + " s · step " + t.ss.toFixed(3) + " s" + (t.nt !== undefined ? " · " + t.nt + " tokens" : "")));
    box.appendChild(head);
    if (t.x) box.appendChild(el("pre", "text", t.x));
    if (t.tc) box.appendChild(el("pre", "tool-calls", "tool calls: " + t.tc));
    if (t.qy !== undefined) { const q = el("div", null, "query: "); q.appendChild(el("span", "query", t.qy)); box.appendChild(q); }
    if (t.inv) box.appendChild(el("div", "invalid-reason", "invalid action: " + t.inv));
    if (t.an !== undefined) { const a = el("div", null, "answer: "); a.appendChild(el("span", "query", t.an)); box.appendChild(a); }
    if (t.pi) {
      const nsup = t.pi.filter((p) => sup.has(PASSAGES[p][0])).length;
      const d = el("details", "passages");
      d.appendChild(el("summary", null, t.pi.length + " passage" + (t.pi.length === 1 ? "" : "s") + " retrieved" + (sup.size ? " (" + nsup + " supporting)" : "")));
      for (const p of t.pi) d.appendChild(passageNode(PASSAGES[p][0], PASSAGES[p][1], sup.has(PASSAGES[p][0])));
      box.appendChild(d);
    } else if (t.ob !== undefined) {
      const d = el("details", "observation");
      let label = "observation";
      if (t.ids) {
        const nsup = t.ids.filter((p) => sup.has(p)).length;
        label += " (" + t.ids.length + " passages: " + t.ids.join(", ") + (sup.size ? "; " + nsup + " supporting" : "") + ")";
      }
      d.appendChild(el("summary", null, label));
      d.appendChild(el("pre", null, t.ob));
      box.appendChild(d);
    }
    return box;
  }

  function renderDetail(e) {
    const sup = new Set(e.sup || []);
    const out = [];
    const title = el("h2");
    title.appendChild(el("span", "badge " + e.o, e.o));
    title.appendChild(el("span", null, " " + e.k));
    out.push(title);
    out.push(el("div", "question", e.q));
    const answers = el("div", "answers");
    const mine = el("div"); mine.appendChild(el("div", "label", "answer")); mine.appendChild(el("div", "value", e.a === null || e.a === undefined ? "(no answer)" : e.a));
    const gold = el("div"); gold.appendChild(el("div", "label", "golden answers")); gold.appendChild(el("div", "value", e.g.length ? e.g.join(" | ") : "(unknown)"));
    answers.appendChild(mine); answers.appendChild(gold);
    out.push(answers);
    if (e.err) out.push(el("div", "error", "failed: " + e.err));
    const facts = [["termination", e.term], ["searches", e.ns], ["invalid actions", e.ni]];
    if (e.d) facts.push(["dataset", e.d]);
    if (e.h) facts.push(["hops", e.h]);
    if (e.ty) facts.push(["type", e.ty]);
    if (e.r !== undefined) facts.push(["reward", fmt(e.r)]);
    for (const [k, v] of Object.entries(e.m || {})) facts.push([k, fmt(v)]);
    for (const [k, v] of Object.entries(e.rc || {})) facts.push(["reward." + k, fmt(v)]);
    const gen = e.t.reduce((s, t) => s + t.gs, 0), step = e.t.reduce((s, t) => s + t.ss, 0);
    facts.push(["time", e.w.toFixed(2) + " s (generate " + gen.toFixed(2) + " s, env " + step.toFixed(3) + " s)"]);
    if (sup.size) facts.push(["supporting passages", [...sup].join(", ")]);
    out.push(kvTable(facts));
    e.t.forEach((t, n) => out.push(turnNode(t, n + 1, sup)));
    detail.replaceChildren(...out);
    detail.scrollTop = 0;
  }

  function select(i) {
    selected = i;
    renderDetail(EPISODES[i]);
    renderRows();
    writeHash();
  }

  // URL fragment <-> filters and the open episode, so a view can be linked (and opened from file://).
  function writeHash() {
    const f = readFilters(), p = new URLSearchParams();
    const outcomes = ["correct", "wrong", "failed"].filter((o) => f[o]);
    if (outcomes.length !== 3) p.set("outcome", outcomes.join(","));
    if (f.invalid) p.set("invalid", "1");
    if (f.dataset) p.set("dataset", f.dataset);
    if (f.searches) p.set("searches", f.searches);
    if ($("f-text").value.trim()) p.set("q", $("f-text").value.trim());
    if (selected >= 0) p.set("episode", EPISODES[selected].k);
    const hash = p.toString();
    if (hash !== location.hash.slice(1)) history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.has("outcome")) {
      const on = new Set(p.get("outcome").split(","));
      for (const o of ["correct", "wrong", "failed"]) $("f-" + o).checked = on.has(o);
    }
    $("f-invalid").checked = p.get("invalid") === "1";
    if (p.has("dataset")) $("f-dataset").value = p.get("dataset");
    if (p.has("searches")) $("f-searches").value = p.get("searches");
    if (p.has("q")) $("f-text").value = p.get("q");
    const key = p.get("episode");
    return key !== null && byKey.has(key) ? byKey.get(key) : -1;
  }

  for (const id of ["f-correct", "f-wrong", "f-failed", "f-invalid", "f-dataset", "f-searches"]) $(id).addEventListener("change", applyFilters);
  let debounce = 0;
  $("f-text").addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(applyFilters, 120); });

  const initial = readHash();
  applyFilters();
  if (initial >= 0) { select(initial); scrollIntoView(initial); }
  window.hopgymViewer = { loadMs: performance.now() - t0, episodes: EPISODES.length, shown: () => shown.length };
  document.body.dataset.ready = "1";
})();
