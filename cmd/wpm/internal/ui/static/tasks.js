// The dashboard's task views (not built yet).
"use strict";

views.tasks = { show() {}, hide() {}, onEvent() {} };
views.task = { show() {}, hide() {}, onEvent() {} };
