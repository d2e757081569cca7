// Trace viewer of lit_videor2 (`lit_videor2 view`): renders the items embedded as JSON in #viewer-data.
// Model output is only ever set with textContent (never innerHTML), so it always renders as text.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("viewer-data").textContent);
  const ITEMS = DATA.items;
  const $ = (id) => document.getElementById(id);
  const state = { page: 0, shown: [] };

  // ---------------------------------------------------------------------------------------------- helpers

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function clock(t) {
    const s = Math.floor(t + 1e-6);
    const h = Math.floor(s / 3600);
    const base = (h ? pad2(h) + ":" : "") + pad2(Math.floor((s % 3600) / 60)) + ":" + pad2(s % 60);
    const tenth = Math.round((t - s) * 10);
    return tenth > 0 && tenth < 10 ? base + "." + tenth : base;
  }

  function num(x, digits) {
    return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
  }

  function mean(xs) {
    const v = xs.filter((x) => x !== null && x !== undefined);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  }

  function badge(text, kind) {
    return el("span", "badge" + (kind ? " " + kind : ""), text);
  }

  // ---------------------------------------------------------------------------------------------- filters

  const FLAG_IDS = ["f-wrong", "f-inconsistent", "f-lowvas", "f-unmatched"];

  function readFilters() {
    return {
      wrong: $("f-wrong").checked,
      inconsistent: $("f-inconsistent").checked,
      lowvas: $("f-lowvas").checked,
      vasMax: parseFloat($("f-vas-threshold").value),
      unmatched: $("f-unmatched").checked,
      benchmark: $("f-benchmark").value,
      ptype: $("f-ptype").value,
      step: $("f-step").value,
      run: $("f-run").value,
      query: $("search").value.trim().toLowerCase(),
    };
  }

  function entriesInScope(item, f) {
    return f.run ? item.entries.filter((e) => e.label === f.run) : item.entries;
  }

  function entryMatches(e, f) {
    if (f.wrong && !e.flags.wrong) return false;
    if (f.inconsistent && !e.flags.inconsistent) return false;
    if (f.lowvas && !(e.vas !== null && e.vas !== undefined && e.vas < f.vasMax)) return false;
    if (f.unmatched && e.flags.unmatched !== true) return false;
    return true;
  }

  function haystack(item) {
    if (item._hay === undefined) {
      item._hay = [item.key, item.question].concat(item.entries.map((e) => e.completion)).join("\n").toLowerCase();
    }
    return item._hay;
  }

  function itemMatches(item, f) {
    if (f.benchmark && String(item.benchmark) !== f.benchmark) return false;
    if (f.ptype && String(item.problem_type) !== f.ptype) return false;
    if (f.step && String(item.step) !== f.step) return false;
    if (f.query && haystack(item).indexOf(f.query) < 0) return false;
    return entriesInScope(item, f).some((e) => entryMatches(e, f));
  }

  function sortKey(item, how, f) {
    const es = entriesInScope(item, f);
    switch (how) {
      case "vas-asc":
      case "vas-desc":
        return mean(es.map((e) => e.vas));
      case "tar-asc":
        return mean(es.map((e) => e.tar));
      case "reward-desc":
        return mean(es.map((e) => e.reward));
      case "spread-desc": {
        const r = es.map((e) => e.reward).filter((x) => x !== null && x !== undefined);
        return r.length ? Math.max.apply(null, r) - Math.min.apply(null, r) : null;
      }
      case "tokens-desc":
        return mean(es.map((e) => e.num_tokens));
      default:
        return null;
    }
  }

  function sortItems(list, how, f) {
    if (how === "input") return list;
    if (how === "id") return list.slice().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const desc = how.endsWith("-desc");
    const keyed = list.map((it, i) => [sortKey(it, how, f), i, it]);
    keyed.sort((a, b) => {
      if (a[0] === null && b[0] === null) return a[1] - b[1];
      if (a[0] === null) return 1; // missing values last
      if (b[0] === null) return -1;
      return (desc ? b[0] - a[0] : a[0] - b[0]) || a[1] - b[1];
    });
    return keyed.map((k) => k[2]);
  }

  function apply(resetPage) {
    const f = readFilters();
    state.shown = sortItems(
      ITEMS.filter((it) => itemMatches(it, f)),
      $("sort").value,
      f
    );
    if (resetPage) state.page = 0;
    $("count-shown").textContent = String(state.shown.length);
    render();
  }

  // ---------------------------------------------------------------------------------------------- cards

  function frameView(frame) {
    const fig = el("figure", "frame" + (frame.sampled ? "" : " cited-only"));
    fig.dataset.t = String(frame.t);
    if (frame.src) {
      const img = el("img");
      img.loading = "lazy";
      img.alt = "frame at " + clock(frame.t);
      img.src = frame.src;
      fig.appendChild(img);
    } else {
      fig.appendChild(el("div", "noimg", "no frame"));
    }
    fig.appendChild(el("figcaption", null, clock(frame.t) + (frame.sampled ? "" : " (cited)")));
    fig.title = frame.sampled ? "sampled frame (the model saw it)" : "cited time, not among the sampled frames";
    return fig;
  }

  function stripView(strip, index, labels) {
    const box = el("div", "strip");
    box.dataset.strip = String(index);
    if (labels) box.appendChild(el("div", "strip-label", "frames of " + labels));
    if (strip.error) box.appendChild(el("div", "error", strip.error));
    const row = el("div", "frames");
    strip.frames.forEach((fr) => row.appendChild(frameView(fr)));
    box.appendChild(row);
    return box;
  }

  function timeLink(text, start, end) {
    const a = el("a", "ts", text);
    a.href = "#";
    a.dataset.start = String(start);
    a.dataset.end = String(end);
    a.title = "show the frames at " + clock(start) + (end !== start ? "–" + clock(end) : "");
    return a;
  }

  function completionView(entry) {
    const pre = el("div", "completion");
    entry.segments.forEach((seg) => {
      let node;
      if (seg.t) node = timeLink(seg.s, seg.t[0], seg.t[1]);
      else if (seg.m) node = el("span", null, seg.s);
      else node = document.createTextNode(seg.s);
      if (seg.m) seg.m.forEach((m) => node.classList.add("mark-" + m));
      pre.appendChild(node);
    });
    return pre;
  }

  function tacView(item, entry) {
    const box = el("div", "tac");
    box.appendChild(el("span", "label", "TAC: "));
    box.appendChild(document.createTextNode("reasoning concludes "));
    box.appendChild(el("span", "mark-concluded", entry.concluded === null || entry.concluded === undefined ? "nothing" : entry.concluded));
    box.appendChild(document.createTextNode(", the answer says "));
    box.appendChild(el("span", "mark-final", entry.answer_parsed === null || entry.answer_parsed === undefined ? "nothing" : entry.answer_parsed));
    box.appendChild(document.createTextNode(", truth "));
    box.appendChild(el("b", null, item.answer === null || item.answer === undefined ? "–" : item.answer));
    box.appendChild(document.createTextNode(" → "));
    if (entry.consistent === true) box.appendChild(badge("consistent", "good"));
    else if (entry.consistent === false) box.appendChild(badge("inconsistent", "bad"));
    if (entry.tac_a !== null && entry.tac_a !== undefined) {
      box.appendChild(badge("answer " + (entry.tac_a ? "right" : "wrong"), entry.tac_a ? "good" : "bad"));
      box.appendChild(badge("reasoning " + (entry.tac_t ? "right" : "wrong"), entry.tac_t ? "good" : "bad"));
    }
    const missing = [];
    if (!entry.spans.concluded) missing.push("no conclusion found in <think>");
    if (!entry.spans.final) missing.push("no <answer> block");
    if (missing.length) box.appendChild(el("span", "note", " (" + missing.join("; ") + ")"));
    return box;
  }

  function claimCell(claim) {
    const td = el("td", "claim");
    if (!claim) {
      td.textContent = "–";
      return td;
    }
    td.appendChild(timeLink(claim.key, claim.start, claim.end));
    td.appendChild(document.createTextNode(" " + claim.text));
    return td;
  }

  function pairingView(entry) {
    const p = entry.pairing;
    const box = el("div", "tar");
    if (!p) return box;
    const head = el("div", "tar-head");
    head.appendChild(el("span", "label", "TAR: "));
    if (p.pairs === null) {
      head.appendChild(document.createTextNode("pairing not computed (built with --no-tar); claims only"));
    } else {
      head.appendChild(
        document.createTextNode(
          num(p.score, 2) + " (" + p.pairs.length + " of " + p.pred.length + " predicted claims matched, " +
            p.ref.length + " reference claims; window ±" + p.pad_s + " s, cosine ≥ " + p.threshold + ")"
        )
      );
      const gate = entry.consistent === true ? 1 : entry.consistent === false ? 0 : null;
      if (gate !== null) {
        head.appendChild(badge("gate " + (gate ? "open" : "closed") + ": reward TAR × " + gate + " = " + num(gate * p.score, 2), gate ? "good" : "bad"));
      }
    }
    box.appendChild(head);
    const table = el("table", "pairs");
    const thead = el("tr");
    ["reference claim", "match", "predicted claim (reasoning)"].forEach((h) => thead.appendChild(el("th", null, h)));
    table.appendChild(thead);
    function row(ref, mid, pred, cls) {
      const tr = el("tr", cls);
      tr.appendChild(claimCell(ref));
      tr.appendChild(el("td", "sim", mid));
      tr.appendChild(claimCell(pred));
      table.appendChild(tr);
    }
    if (p.pairs === null) {
      const n = Math.max(p.ref.length, p.pred.length);
      for (let i = 0; i < n; i++) row(p.ref[i], "", p.pred[i], "plain");
    } else {
      p.pairs.forEach((x) => row(p.ref[x.r], "✓ cos " + num(x.sim, 2), p.pred[x.p], "matched"));
      p.unmatched_pred.forEach((x) => {
        const why = x.best
          ? "✗ best in window: " + p.ref[x.best.r].key + " cos " + num(x.best.sim, 2) + (x.best.used ? " (taken)" : "")
          : "✗ no reference claim within ±" + p.pad_s + " s";
        row(null, why, p.pred[x.p], "unmatched");
      });
      p.unmatched_ref.forEach((j) => row(p.ref[j], "✗ not claimed", null, "unmatched-ref"));
    }
    box.appendChild(table);
    return box;
  }

  function claimsView(entry) {
    const checks = entry.claims_checked;
    const box = el("div", "claims-check");
    if (!checks) return box;
    const n = checks.length;
    const nTrue = checks.filter((c) => c.verdict === "true").length;
    const head = el("div", "tar-head");
    head.appendChild(el("span", "label", "Claims checked: "));
    const win = n ? " (window ±" + num(checks[0].pad_s, 2) + " s)" : "";
    head.appendChild(document.createTextNode(n ? nTrue + " of " + n + " true" + win : "no timestamped claim in the reasoning"));
    box.appendChild(head);
    if (!n) return box;
    const table = el("table", "pairs");
    const thead = el("tr");
    ["claim (reasoning)", "verdict", "ground truth"].forEach((h) => thead.appendChild(el("th", null, h)));
    table.appendChild(thead);
    const cls = { true: "good", contradicted: "bad", unverifiable: "" };
    checks.forEach((c) => {
      const tr = el("tr", c.verdict === "true" ? "matched" : "unmatched");
      tr.appendChild(claimCell(c));
      const mid = el("td", "sim");
      mid.appendChild(badge(c.verdict, cls[c.verdict]));
      let note = "";
      if (c.verdict === "contradicted") note = " " + c.contradicted.join(", ");
      else if (c.verdict === "unverifiable") note = c.timed ? " nothing to compare" : " no ground truth in the window";
      else if (!c.complete) note = " (leaves out an attribute the truth states)";
      if (note) mid.appendChild(el("span", "note", note));
      tr.appendChild(mid);
      tr.appendChild(claimCell(c.truth));
      table.appendChild(tr);
    });
    box.appendChild(table);
    return box;
  }

  function entryView(item, entry) {
    const box = el("div", "entry");
    box.dataset.strip = String(entry.strip);
    box.dataset.label = entry.label;
    const head = el("div", "entry-head");
    head.appendChild(el("span", "entry-label", entry.label));
    if (entry.correct !== null && entry.correct !== undefined) {
      head.appendChild(badge(entry.flags.wrong ? "wrong (" + num(entry.correct, 2) + ")" : "correct", entry.flags.wrong ? "bad" : "good"));
    }
    head.appendChild(badge("VAS " + num(entry.vas, 1) + "/10"));
    if (entry.tar !== null && entry.tar !== undefined) head.appendChild(badge("TAR " + num(entry.tar, 2)));
    if (entry.reward !== undefined) head.appendChild(badge("reward " + num(entry.reward, 3), "reward"));
    if (entry.advantage !== undefined) {
      head.appendChild(badge("advantage " + num(entry.advantage, 3), entry.advantage > 0 ? "good" : entry.advantage < 0 ? "bad" : ""));
    }
    if (entry.components) {
      Object.keys(entry.components).forEach((k) => head.appendChild(badge(k + " " + num(entry.components[k], 2), "component")));
    }
    if (entry.num_tokens !== null && entry.num_tokens !== undefined) head.appendChild(badge(entry.num_tokens + " tokens"));
    box.appendChild(head);
    box.appendChild(completionView(entry));
    box.appendChild(tacView(item, entry));
    box.appendChild(pairingView(entry));
    box.appendChild(claimsView(entry));
    return box;
  }

  function optionsView(item) {
    const ul = el("ul", "options");
    const truth = item.answer === null || item.answer === undefined ? "" : String(item.answer).trim().toUpperCase();
    item.options.forEach((opt, i) => {
      const letter = String.fromCharCode(65 + i);
      const li = el("li", letter === truth ? "truth" : null, opt);
      const picks = item.entries.filter((e) => e.answer_parsed === letter).map((e) => e.label);
      if (picks.length) li.appendChild(el("span", "picked", " ← " + picks.join(", ")));
      ul.appendChild(li);
    });
    return ul;
  }

  function questionText(item) {
    // the question as shown to the model lists the options; they are listed below with the picks instead
    const opts = new Set(item.options.map((o) => o.trim()));
    const lines = (item.question || "").split("\n").filter((l) => !opts.has(l.trim()));
    while (lines.length && /^\s*(options:?)?\s*$/i.test(lines[lines.length - 1])) lines.pop();
    return lines.join("\n");
  }

  function card(item) {
    const box = el("article", "card");
    box.dataset.key = item.key;
    const head = el("div", "card-head");
    head.appendChild(el("span", "key", item.key));
    if (item.benchmark) head.appendChild(badge(item.benchmark));
    if (item.problem_type) head.appendChild(badge(item.problem_type));
    if (item.video) head.appendChild(el("span", "video", item.video));
    box.appendChild(head);
    item.strips.forEach((s, i) => {
      const labels = item.strips.length > 1 ? item.entries.filter((e) => e.strip === i).map((e) => e.label).join(", ") : null;
      box.appendChild(stripView(s, i, labels));
    });
    const q = el("div", "question");
    q.appendChild(el("div", "q-text", questionText(item) || "(question unknown: no training record for this id)"));
    if (item.options.length) q.appendChild(optionsView(item));
    else q.appendChild(el("div", "truth", "truth: " + (item.answer === null || item.answer === undefined ? "–" : item.answer)));
    box.appendChild(q);
    const entries = el("div", "entries" + (item.entries.length > 1 ? " many" : ""));
    item.entries.forEach((e) => entries.appendChild(entryView(item, e)));
    box.appendChild(entries);
    return box;
  }

  // ---------------------------------------------------------------------------------------------- paging

  function render() {
    const size = DATA.page_size || 25;
    const pages = Math.max(1, Math.ceil(state.shown.length / size));
    state.page = Math.min(Math.max(0, state.page), pages - 1);
    const list = $("list");
    list.replaceChildren();
    state.shown.slice(state.page * size, (state.page + 1) * size).forEach((it) => list.appendChild(card(it)));
    if (!state.shown.length) list.appendChild(el("p", "empty", "No sample matches the filters."));
    $("page-info").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }

  // ---------------------------------------------------------------------------------------------- highlight

  function highlight(link) {
    const cardEl = link.closest(".card");
    const entryEl = link.closest(".entry");
    if (!cardEl || !entryEl) return;
    const start = parseFloat(link.dataset.start);
    const end = parseFloat(link.dataset.end);
    const lo = Math.floor(start + 1e-6);
    const hi = Math.floor(end + 1e-6) + 1; // a claim "00:03" covers the second [3, 4)
    cardEl.querySelectorAll(".frame.hl, .frame.near").forEach((f) => f.classList.remove("hl", "near"));
    cardEl.querySelectorAll("a.ts.active").forEach((a) => a.classList.remove("active"));
    link.classList.add("active");
    const strip = cardEl.querySelector('.strip[data-strip="' + entryEl.dataset.strip + '"]');
    if (!strip) return;
    const frames = Array.prototype.slice.call(strip.querySelectorAll(".frame"));
    let hits = frames.filter((f) => {
      const t = parseFloat(f.dataset.t);
      return (t >= lo && t < hi) || (t >= start && t <= end);
    });
    if (!hits.length && frames.length) {
      // nothing in the cited second: show the nearest frame instead, marked as such
      let best = frames[0];
      frames.forEach((f) => {
        if (Math.abs(parseFloat(f.dataset.t) - start) < Math.abs(parseFloat(best.dataset.t) - start)) best = f;
      });
      best.classList.add("near");
      hits = [best];
    } else {
      hits.forEach((f) => f.classList.add("hl"));
    }
    if (hits[0].scrollIntoView) hits[0].scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  // ---------------------------------------------------------------------------------------------- setup

  function fillSelect(id, values) {
    const sel = $(id);
    values.forEach((v) => {
      const o = el("option", null, v);
      o.value = String(v);
      sel.appendChild(o);
    });
  }

  function setup() {
    $("count-total").textContent = String(ITEMS.length);
    $("f-vas-threshold").value = String(DATA.low_vas);
    fillSelect("f-benchmark", DATA.facets.benchmark);
    fillSelect("f-ptype", DATA.facets.problem_type);
    fillSelect("f-step", DATA.facets.step);
    fillSelect("f-run", DATA.facets.label);
    if (!DATA.facets.step.length) $("step-box").hidden = true;
    if (DATA.mode !== "compare") $("run-box").hidden = true;
    if (!DATA.tar) {
      $("f-unmatched").disabled = true;
      $("f-unmatched").parentElement.title = "built with --no-tar: no claim matching";
    }
    FLAG_IDS.concat(["f-benchmark", "f-ptype", "f-step", "f-run", "f-vas-threshold", "sort"]).forEach((id) =>
      $(id).addEventListener("change", () => apply(true))
    );
    $("search").addEventListener("input", () => apply(true));
    $("prev").addEventListener("click", () => {
      state.page -= 1;
      render();
      window.scrollTo(0, 0);
    });
    $("next").addEventListener("click", () => {
      state.page += 1;
      render();
      window.scrollTo(0, 0);
    });
    $("list").addEventListener("click", (ev) => {
      const link = ev.target.closest("a.ts");
      if (!link) return;
      ev.preventDefault();
      highlight(link);
    });
    apply(true);
  }

  setup();
})();
