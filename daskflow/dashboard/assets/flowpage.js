/* The flow page: asks its scheduler for the runs (state.json, long-polled) and draws each.
   Everything shown goes in as text or checked attributes, never as markup, except each
   run's graph: an SVG that daskflow drew, parsed as SVG with scripts and handlers cut. */
(function () {
  "use strict";
  var viewer = Math.random().toString(36).slice(2, 12);
  var stateUrl = location.pathname.replace(/\/+$/, "") + "/state.json";
  var runsBox = document.getElementById("df-runs");
  var live = document.getElementById("df-live");
  var where = document.getElementById("df-where");
  var footer = document.getElementById("df-cost");
  var cards = new Map();
  var version = 0;
  var lastSeen = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function link(url, text) {
    var safe = null;
    try {
      var parsed = new URL(url, location.href);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") safe = parsed.href;
    } catch (e) { safe = null; }
    if (!safe) return el("span", {}, text);
    return el("a", {href: safe, target: "_blank", rel: "noopener"}, text);
  }

  function seconds(s) {
    if (s === null || s === undefined || isNaN(s)) return "—";
    if (s < 1) return Math.round(s * 1000) + "ms";
    if (s < 10) return s.toFixed(2) + "s";
    if (s < 60) return s.toFixed(1) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  }

  function clock(ts) {
    return ts ? new Date(ts * 1000).toLocaleTimeString() : "—";
  }

  function money(value, currency) {
    if (value === null || value === undefined) return "no price configured";
    return value.toFixed(4) + (currency ? " " + currency : "");
  }

  function fact(name, value) {
    var box = el("div", {"class": "fact", "data-fact": name});
    box.appendChild(el("span", {}, name));
    box.appendChild(el("b", {}, value));
    return box;
  }

  function newCard(run) {
    var card = el("article", {"data-run": run.key});
    var head = el("header");
    var h1 = el("h1", {}, run.flow + " ");
    h1.appendChild(el("span", {"class": "run-id"}, "run " + run.run_id));
    head.appendChild(h1);
    var badge = el("span", {"class": "badge", "data-status": ""});
    head.appendChild(badge);
    card.appendChild(head);
    var facts = el("div", {"class": "facts"});
    card.appendChild(facts);
    var body = el("div", {"class": "body"});
    var graph = el("div", {"class": "graph"});
    var side = el("div", {"class": "side"});
    body.appendChild(graph);
    body.appendChild(side);
    card.appendChild(body);
    runsBox.appendChild(card);
    var parts = {card: card, badge: badge, facts: facts, graph: graph, side: side};
    cards.set(run.key, parts);
    return parts;
  }

  function setGraph(parts, svgText) {
    var doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    var svg = doc.documentElement;
    if (!svg || svg.nodeName !== "svg") return;
    svg.querySelectorAll("script, foreignObject").forEach(function (n) { n.remove(); });
    svg.querySelectorAll("*").forEach(function (n) {
      Array.prototype.slice.call(n.attributes).forEach(function (a) {
        if (/^on/i.test(a.name) || /javascript:/i.test(a.value)) n.removeAttribute(a.name);
      });
    });
    parts.graph.replaceChildren(document.importNode(svg, true));
  }

  function stepClass(s) {
    if (s.failed > s.caught) return "st-failed";
    if (s.running > 0) return "st-running";
    if (s.queued > 0) return "st-queued";
    if (s.done + s.reused + s.caught > 0) return "st-ok";
    return "st-notrun";
  }

  function stepText(s) {
    var finished = s.done + s.reused;
    if (!finished && !s.running && !s.queued && !s.failed && !s.cancelled) return "—";
    var text = (s.total ? finished + "/" + s.total : String(finished)) + " done";
    if (s.running) text += " · " + s.running + " running";
    else if (s.queued) text += " · " + s.queued + " queued";
    if (s.failed) text += " · " + s.failed + " failed";
    if (s.cancelled) text += " · " + s.cancelled + " cancelled";
    return text;
  }

  function updateGraph(parts, steps) {
    steps.forEach(function (s) {
      var node = parts.graph.querySelector('g.df-node[data-step="' + CSS.escape(s.name) + '"]');
      if (!node) return;
      var stats = node.querySelector("text.df-stats");
      if (stats) stats.textContent = stepText(s);
      node.classList.remove("st-notrun", "st-queued", "st-running", "st-ok", "st-failed");
      node.classList.add(stepClass(s));
    });
  }

  function table(columns, rows) {
    var t = el("table");
    var head = el("tr");
    columns.forEach(function (c) { head.appendChild(el("th", {"class": c[2] || ""}, c[1])); });
    t.appendChild(el("thead")).appendChild(head);
    var body = t.appendChild(el("tbody"));
    rows.forEach(function (r) { body.appendChild(r); });
    return t;
  }

  function stepsTable(steps) {
    var cols = [["step", "step"], ["queued", "queued", "n"], ["running", "running", "n"],
                ["done", "done", "n"], ["failed", "failed", "n"], ["reused", "reused", "n"],
                ["total", "of", "n"]];
    return table(cols, steps.map(function (s) {
      var row = el("tr", {"data-step": s.name});
      cols.forEach(function (c) {
        var key = c[0];
        var value = key === "step" ? s.name : (s[key] === null ? "" : s[key]);
        var css = c[2] || "";
        if (key === "failed" && s.failed) css += " bad";
        if (key === "running" && s.running) css += " run";
        var cell = el("td", {"class": css.trim(), "data-col": key}, value);
        if (key === "failed" && s.caught) cell.title = s.caught + " caught by @catch";
        row.appendChild(cell);
      });
      return row;
    }));
  }

  function clustersTable(clusters, currency) {
    var cols = [["name", "cluster"], ["step", "step"], ["backend", "backend"],
                ["workers", "workers", "n"], ["held", "worker-s held", "n"],
                ["cost", "cost", "n"], ["links", "dashboard"]];
    return table(cols, clusters.map(function (c) {
      var row = el("tr", {"data-cluster": c.name});
      row.appendChild(el("td", {}, c.name + (c.up ? "" : " (closed)")));
      row.appendChild(el("td", {}, c.step || "(run)"));
      row.appendChild(el("td", {title: c.description || ""}, c.backend || ""));
      row.appendChild(el("td", {"class": "n"}, c.workers === null ? "" : c.workers));
      var used = c.held ? " (" + Math.round(100 * (c.used || 0) / c.held) + "% used)" : "";
      row.appendChild(el("td", {"class": "n"}, c.held === null ? "—" : c.held.toFixed(1) + used));
      row.appendChild(el("td", {"class": "n"}, money(c.cost, currency)));
      var links = el("td");
      if (c.dashboard && c.up) {
        links.appendChild(link(c.dashboard, "flow page"));
        links.appendChild(document.createTextNode(" · "));
        links.appendChild(link(c.dashboard.replace(/\/daskflow\/?$/, "/status"), "Dask"));
      } else {
        links.textContent = c.up ? "—" : "closed";
      }
      row.appendChild(links);
      return row;
    }));
  }

  function failures(list) {
    var box = el("div", {"class": "failures"});
    list.forEach(function (f) {
      var item = el("div", {"class": "failure", "data-pathspec": f.pathspec});
      item.appendChild(el("div", {}, "Task " + f.pathspec + " failed"));
      item.appendChild(el("div", {"class": "what"}, f.type + ": " + f.message));
      var logs = el("div", {}, "Its output: ");
      logs.appendChild(el("code", {"class": "logs-command"}, f.logs));
      item.appendChild(logs);
      box.appendChild(item);
    });
    return box;
  }

  function renderRun(run) {
    var parts = cards.get(run.key) || newCard(run);
    if (run.graph) setGraph(parts, run.graph);
    var status = run.status || "running";
    parts.badge.textContent = status;
    parts.badge.setAttribute("data-status", status);
    parts.badge.className = "badge s-" + status.replace(/[^a-z]+/g, "-");
    var end = run.finished_at || run.now;
    parts.facts.replaceChildren(
      fact("started", clock(run.started_at)),
      fact(run.finished_at ? "took" : "running for", seconds(end - run.started_at)),
      fact("worker-seconds", run.worker_seconds === null ? "—" : run.worker_seconds.toFixed(1)),
      fact("cost so far", money(run.cost, run.currency)),
      fact("driver's last word", clock(run.updated_at)));
    updateGraph(parts, run.steps);
    var side = [el("h2", {}, "Steps"), stepsTable(run.steps)];
    if (run.failures.length) side.push(el("h2", {}, "Failed"), failures(run.failures));
    side.push(el("h2", {}, "Clusters"), clustersTable(run.clusters, run.currency));
    var logs = el("p", {"class": "logs"}, "A task's output: ");
    logs.appendChild(el("code", {}, run.logs));
    side.push(logs);
    parts.side.replaceChildren.apply(parts.side, side);
  }

  function render(state) {
    var s = state.scheduler || {};
    where.textContent = (s.address || "") + " · " + s.workers + " workers, " +
      s.threads + " threads";
    state.runs.forEach(renderRun);
    state.runs.forEach(function (run) {   // running runs first, then the latest
      runsBox.appendChild(cards.get(run.key).card);
    });
    document.getElementById("df-none").hidden = state.runs.length > 0;
    var c = state.cost || {};
    footer.textContent = "Since " + clock(c.since) + " this scheduler took " + c.published +
      " updates from drivers and answered " + c.served + " page requests.";
  }

  function setLive(ok, problem) {
    if (ok) {
      lastSeen = new Date();
      live.className = "";
      live.textContent = "live · " + lastSeen.toLocaleTimeString();
    } else {
      live.className = "gone";
      live.textContent = "scheduler unreachable" + (lastSeen ? " since " +
        lastSeen.toLocaleTimeString() + ": what it said last" : "") +
        (problem ? " (" + problem + ")" : "");
    }
  }

  function poll() {
    fetch(stateUrl + "?after=" + version + "&viewer=" + viewer, {cache: "no-store"})
      .then(function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.json();
      })
      .then(function (state) {
        version = state.version;
        render(state);
        if (state.closing) {   // its cluster ends: nothing more will come
          live.className = "gone";
          live.textContent = "the scheduler closed at " + new Date().toLocaleTimeString() +
            ": what it said last";
          return;
        }
        setLive(true);
        setTimeout(poll, 150);
      })
      .catch(function (e) {
        setLive(false, e && e.message);
        setTimeout(poll, 1000);
      });
  }

  poll();
})();
