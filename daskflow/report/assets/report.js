// daskflow run report: tooltips, a detail panel per task attempt, step highlighting, zoom.
// No libraries and no network: the page works from a file, offline.
(function () {
  "use strict";
  var dataNode = document.getElementById("df-data");
  var data = dataNode ? JSON.parse(dataNode.textContent) : [];
  var tip = document.getElementById("df-tip");
  var detail = document.getElementById("df-detail");
  var outcomes = { ok: "ok", failed: "failed", retried: "failed, then retried",
                   unfinished: "did not finish" };

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }

  function showTip(bar, event) {
    var d = data[+bar.getAttribute("data-i")];
    if (!d || !tip) { return; }
    tip.textContent = d.p + "  ·  attempt " + d.a + "  ·  " + (outcomes[d.o] || d.o) +
      "  ·  " + d.d + (d.c ? "  ·  cluster " + d.c : "");
    tip.hidden = false;
    var x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    var y = event.clientY + 16;
    if (y + tip.offsetHeight > window.innerHeight) { y = event.clientY - tip.offsetHeight - 10; }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function showDetail(bar) {
    var d = data[+bar.getAttribute("data-i")];
    if (!d || !detail) { return; }
    document.querySelectorAll(".tl-bar.df-picked").forEach(function (b) {
      b.classList.remove("df-picked");
    });
    bar.classList.add("df-picked");
    detail.textContent = "";
    var close = text("button", "\u00d7");
    close.setAttribute("aria-label", "close");
    close.onclick = function () { detail.hidden = true; bar.classList.remove("df-picked"); };
    detail.appendChild(close);
    detail.appendChild(text("h3", d.p));
    var dl = document.createElement("dl");
    var rows = [["attempt", d.a], ["outcome", outcomes[d.o] || d.o], ["started", d.st],
                ["finished", d.ft], ["duration", d.d], ["foreach index", d.i],
                ["cluster", d.c], ["worker", d.w], ["ran with", d.rs], ["chose", d.n],
                ["splits", d.k], ["reused from", d.r],
                ["cause", d.cz], ["error", d.e]];
    rows.forEach(function (r) {
      if (r[1] === undefined || r[1] === null || r[1] === "") { return; }
      dl.appendChild(text("dt", r[0]));
      dl.appendChild(text("dd", String(r[1]), r[0] === "error" || r[0] === "cause" ? "bad" : ""));
    });
    if (d.f) {
      dl.appendChild(text("dt", "traceback"));
      var dd = document.createElement("dd");
      var a = text("a", "show");
      a.href = "#" + d.f;
      a.onclick = function () {
        var target = document.getElementById(d.f);
        if (target) { target.open = true; }
      };
      dd.appendChild(a);
      dl.appendChild(dd);
    }
    if (d.pr) {
      dl.appendChild(text("dt", "performance"));
      var dd2 = document.createElement("dd");
      var link = text("a", "Dask performance report");
      link.href = d.pr;
      dd2.appendChild(link);
      dl.appendChild(dd2);
    }
    detail.appendChild(dl);
    (d.cd || []).forEach(function (c) {
      // A card is a whole page of its own: shown in a frame that may run nothing.
      var box = document.createElement("div");
      box.className = "df-card";
      var head = text("h4", "card " + (c.id || c.y) + (c.id ? " (" + c.y + ")" : ""));
      var open = text("a", "open");
      open.href = c.u;
      head.appendChild(document.createTextNode(" "));
      head.appendChild(open);
      box.appendChild(head);
      if (c.h !== undefined) {
        var frame = document.createElement("iframe");
        frame.setAttribute("sandbox", "");
        frame.setAttribute("title", "card " + (c.id || c.y) + " of " + d.p);
        frame.srcdoc = c.h;
        box.appendChild(frame);
      }
      detail.appendChild(box);
    });
    detail.hidden = false;
  }

  function selectStep(step, scroll) {
    document.querySelectorAll(".df-selected").forEach(function (el) {
      el.classList.remove("df-selected");
    });
    if (!step) { return; }
    document.querySelectorAll('[data-step="' + CSS.escape(step) + '"]').forEach(function (el) {
      if (el.classList.contains("df-node") || el.classList.contains("tl-row")) {
        el.classList.add("df-selected");
      }
    });
    var row = document.querySelector('.tl-row[data-step="' + CSS.escape(step) + '"]');
    if (row && scroll) { row.scrollIntoView({ block: "center", behavior: "smooth" }); }
  }

  document.addEventListener("mouseover", function (e) {
    var bar = e.target.closest && e.target.closest(".tl-bar");
    if (bar) { bar.removeAttribute("title"); showTip(bar, e); }
  });
  document.addEventListener("mousemove", function (e) {
    var bar = e.target.closest && e.target.closest(".tl-bar");
    if (bar) { showTip(bar, e); } else if (tip) { tip.hidden = true; }
  });
  document.addEventListener("click", function (e) {
    if (!e.target.closest) { return; }
    var bar = e.target.closest(".tl-bar");
    if (bar) { showDetail(bar); selectStep(bar.getAttribute("data-step"), false); return; }
    var node = e.target.closest(".df-node, tbody tr[data-step]");
    if (node) { selectStep(node.getAttribute("data-step"), true); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && detail) { detail.hidden = true; selectStep(null); }
  });
  var zoom = document.getElementById("df-zoom");
  var timeline = document.querySelector(".tl");
  if (zoom && timeline) {
    zoom.addEventListener("input", function () {
      timeline.style.setProperty("--zoom", zoom.value);
    });
  }
})();
