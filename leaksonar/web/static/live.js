// Live dashboard: new change events arrive from /api/events/stream (server-sent events) and are put
// at the top of the "Latest events" list. The page is complete without this script.
(function () {
  "use strict";
  var list = document.getElementById("events");
  var badge = document.getElementById("live");
  if (!list || !window.EventSource) return;
  var source = new EventSource("/api/events/stream?after=" + encodeURIComponent(list.dataset.after || "0"));

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function item(event) {
    var li = document.createElement("li");
    li.className = "event ev-" + event.type + " fresh";
    var time = document.createElement("time");
    time.dateTime = event.time;
    time.textContent = event.time.slice(0, 10) + " " + event.time.slice(11, 16) + " UTC";
    var link = document.createElement("a");
    link.href = "/event/" + encodeURIComponent(event.id);
    link.textContent = event.ip + ":" + event.port;
    li.append(time, " ", span("type", event.type.replace(/_/g, " ")), " ", link, " ");
    if (event.severity) {
      li.append(span("sev sev-" + event.severity, event.severity), " ");
    }
    li.append(span("summary", event.summary));
    return li;
  }

  source.onopen = function () { badge.hidden = false; };
  source.onerror = function () { badge.hidden = true; };
  source.onmessage = function (message) {
    var event = JSON.parse(message.data);
    list.insertBefore(item(event), list.firstChild);
    var empty = document.getElementById("no-events");
    if (empty) empty.remove();
    while (list.children.length > 50) list.removeChild(list.lastChild);
  };
})();
