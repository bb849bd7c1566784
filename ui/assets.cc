#include "ui/assets.h"

#include <functional>
#include <string>

#include "absl/strings/str_cat.h"

namespace nasforge::ui {

const char kStyleCss[] = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { display: flex; gap: 1em; align-items: center; padding: .5em 1em; background: #263238; }
header a, header span { color: #eceff1; text-decoration: none; }
header .brand { font-weight: bold; }
header .viewer { margin-left: auto; }
header .logout button { font-size: 12px; }
main { padding: 0 1em 2em; }
h1 small { color: #777; font-weight: normal; font-size: 60%; }
.live-status { font-size: 12px; font-weight: normal; padding: 2px 6px; border-radius: 8px;
  background: #eee; vertical-align: middle; }
.live-status.on { background: #c8e6c9; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { color: #666; } dd { margin: 0; }
table { border-collapse: collapse; background: white; margin: .5em 0; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 3px 8px; text-align: left; white-space: nowrap; }
th a { color: inherit; text-decoration: none; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.front td { background: #fff3e0; }
.state.succeeded { color: #2e7d32; } .state.failed { color: #c62828; }
.state.stopped { color: #ef6c00; } .state.running { color: #1565c0; }
#plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1em;
  align-items: start; }
#plots form { grid-column: 1 / -1; }
.plot svg { max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
.error { color: #b71c1c; background: #ffebee; padding: .4em .8em; }
.filter, .axes { margin: .5em 0; }
.pager a { margin-right: 1em; }
.login input { font-family: monospace; }
)css";

const char kScriptJs[] = R"js('use strict';
(function () {
  // Selects that change what is plotted submit their form (a plain GET: the server renders).
  document.addEventListener('change', function (e) {
    if (e.target.matches && e.target.matches('select[data-autosubmit]')) e.target.form.submit();
  });
  var body = document.body;
  var status = document.getElementById('live-status');
  function say(text, on) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle('on', !!on);
  }
  // A refresh fetches this very page and swaps in its live sections (not one that holds the
  // focus: a filter being typed is left alone). At most one in flight, at most one a second.
  var inflight = false, again = false, timer = null;
  function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    fetch(location.href, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('.live').forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh && !el.contains(document.activeElement)) el.replaceWith(fresh);
        });
        body.dataset.refreshes = String(Number(body.dataset.refreshes || 0) + 1);
      })
      .catch(function (err) { say('update failed: ' + err.message, false); })
      .then(function () {
        inflight = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 1000);
  }
  var live = body.dataset.live;
  if (live && window.EventSource) {
    var es = new EventSource(live);
    // Closed when the page is left: a page kept in the back-forward cache must not hold one of
    // the browser's few connections to this server.
    window.addEventListener('pagehide', function () { es.close(); });
    window.addEventListener('pageshow', function (e) { if (e.persisted) location.reload(); });
    es.onopen = function () { say('live', true); };
    es.onerror = function () { say('reconnecting', false); };
    es.onmessage = function (m) {
      var ev = JSON.parse(m.data);
      body.dataset.events = String(Number(body.dataset.events || 0) + 1);
      if (ev.kind === 'snapshot') return;
      schedule();
    };
  }
  var poll = Number(body.dataset.poll || 0);
  if (poll > 0) setInterval(refresh, poll);
})();
)js";

const char* AssetVersion() {
  static const std::string v = absl::StrCat(
      "?v=", std::hash<std::string>{}(std::string(kStyleCss) + kScriptJs) % 1000000007);
  return v.c_str();
}

}  // namespace nasforge::ui
