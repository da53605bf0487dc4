// The dashboard's schedules view, /ui/schedules (not built yet).
"use strict";

views.schedules = {
  show() { $("view-schedules").replaceChildren(h("h2", {}, "Schedules")); },
  hide() {},
  onEvent() {},
};
