/*! nudgeflow browser tracker: sends what a shopper does as contract events (§1) to the
 * collector this script is loaded from. One line on every page:
 *
 *   <script src="https://collector.example/v1/tracker.js" data-api-key="…" async></script>
 *
 * data-api-key       sent as X-Api-Key (when the deployment requires keys)
 * data-respect-dnt   "true": send nothing when the browser asks for Do-Not-Track or
 *                    Global Privacy Control
 *
 * Page API (calls made before the script loads are queued:
 * (window.nudgeflow = window.nudgeflow || []).push(["track", "search", {query, results}])):
 *   nudgeflow.track(type, fields)   an event the page declares (search, add_to_cart, ...)
 *   nudgeflow.identify(id)          a logged-in customer; nudgeflow.reset() on log-out
 *   nudgeflow.customerId(), nudgeflow.sessionId()
 * Elements inside [data-nudgeflow-ignore] are not tracked; clicks inside
 * [data-nudgeflow-repeat] are repeated by design (steppers) and never rage clicks.
 * Form fields are reported by name only: never a value.
 */
(function () {
  "use strict";
  var queued = window.nudgeflow;
  if (queued && queued.version) return; // the snippet is on the page twice

  var TYPES = new Set([
    "page_view", "product_view", "click", "scroll", "search", "add_to_cart",
    "remove_from_cart", "form_focus", "form_input", "form_blur", "form_submit",
    "form_error", "checkout_step", "payment_attempt", "payment_failed", "purchase",
    "error", "back", "session_end",
  ]);
  // Contract §1 limits: longer strings are cut, so an event is never refused for length.
  var STRING_LIMITS = {
    page: 2048, product_id: 128, element: 256, field: 128, step: 64, query: 512, error: 512,
  };
  var NUMBERS = new Set(["x", "y", "scroll_pct", "value"]);
  var OWN_FIELDS = new Set(["event_id", "customer_id", "session_id", "type", "ts"]);
  var PROPS_MAX_BYTES = 4096;
  var ID_MAX = 128;
  var SESSION_IDLE_MS = 30 * 60 * 1000; // the contract's default session rule
  // A batch leaves this long after its first event: a rage click (3 clicks in a second)
  // reaches the collector well within the second, at a few requests per busy second.
  var FLUSH_DELAY_MS = 150;
  var FLUSH_EVENTS = 20;
  var REQUEST_EVENTS = 100; // contract: at most 500 per request
  var QUEUE_MAX = 500; // beyond this (collector unreachable) the oldest events go
  var KEEPALIVE_MAX_BYTES = 60000; // browsers refuse keepalive bodies over 64 KiB in flight
  var BACKOFF_MS = 1000;
  var BACKOFF_MAX_MS = 60000;
  var INPUT_DEBOUNCE_MS = 1000;
  var SCROLL_CHECK_MS = 250;
  var SCROLL_DEPTHS = [25, 50, 75, 90, 100];
  var ERRORS_PER_PAGE = 20; // an error in a loop must not flood the collector
  // Selector paths leave out state classes: a button that turns "active" when clicked
  // must keep its selector, or repeated clicks on it would look like clicks on many.
  var STATE_CLASS = /(^|-)(active|hover|focus|focused|open|opened|selected|disabled|loading|visible|hidden|show|shown|is-.*|has-.*)$|\d{3,}/;
  var TARGET = "a, button, input, select, textarea, label, summary, [role=button], [role=link], [onclick]";

  var script = document.currentScript || document.querySelector('script[src*="/v1/tracker.js"]');
  if (!script || !script.src) {
    console.warn("nudgeflow: load the tracker with <script src=\".../v1/tracker.js\">");
    return;
  }
  var endpoint = new URL("/v1/events", script.src).href;
  var apiKey = script.getAttribute("data-api-key") || "";
  var sameOrigin = new URL(endpoint).origin === location.origin;

  var optedOut = script.getAttribute("data-respect-dnt") === "true" && (
    navigator.doNotTrack === "1" || window.doNotTrack === "1" ||
    navigator.globalPrivacyControl === true
  );

  function noop() { return null; }
  var api = {
    version: "1",
    enabled: !optedOut,
    track: noop, identify: noop, reset: noop, customerId: noop, sessionId: noop,
    push: function (call) {
      var method = call && api[call[0]];
      if (typeof method === "function") method.apply(api, Array.prototype.slice.call(call, 1));
    },
  };
  window.nudgeflow = api;
  if (optedOut) {
    window.dispatchEvent(new CustomEvent("nudgeflow:ready"));
    return;
  }

  // --- identity: first-party storage, a cookie where localStorage is unavailable ----------

  function load(key) {
    try {
      var value = localStorage.getItem(key);
      if (value) return value;
    } catch (e) { /* storage blocked: the cookie below */ }
    var match = document.cookie.match(new RegExp("(?:^|; )" + key + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : null;
  }

  function save(key, value) {
    try {
      localStorage.setItem(key, value);
      return;
    } catch (e) { /* storage blocked */ }
    document.cookie = key + "=" + encodeURIComponent(value) + "; Max-Age=34560000; Path=/" +
      "; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }

  function randomId() {
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  var customerId = load("nf_cid");
  if (!customerId) {
    customerId = "anon-" + randomId();
    save("nf_cid", customerId);
  }

  // The visit: a new one after 30 minutes without an event (in every tab of the shop).
  function session(now, touch) {
    var stored = (load("nf_sid") || "").split(".");
    var id = stored[0] && now - Number(stored[1]) < SESSION_IDLE_MS ? stored[0] : randomId();
    if (touch || id !== stored[0]) save("nf_sid", id + "." + now);
    return id;
  }

  // --- events --------------------------------------------------------------------------

  function cut(value, max) {
    return String(value).slice(0, max);
  }

  function currentPage() {
    return cut(location.pathname + location.search, STRING_LIMITS.page);
  }

  function byteLength(text) {
    return new Blob([text]).size;
  }

  function track(type, fields) {
    if (!TYPES.has(type)) {
      console.warn("nudgeflow: unknown event type", type);
      return false;
    }
    var now = Date.now();
    var event = {
      event_id: randomId(), customer_id: customerId, session_id: session(now, true),
      type: type, ts: now, page: currentPage(),
    };
    var props = {};
    Object.keys(fields || {}).forEach(function (name) {
      var value = fields[name];
      if (value === null || value === undefined || OWN_FIELDS.has(name)) return;
      if (name in STRING_LIMITS) {
        event[name] = cut(value, STRING_LIMITS[name]);
      } else if (NUMBERS.has(name)) {
        var number = Number(value);
        if (isFinite(number)) {
          event[name] = name === "scroll_pct" ? Math.min(100, Math.max(0, number)) : number;
        }
      } else if (name === "results") {
        var count = Math.floor(Number(value));
        if (count >= 0 && isFinite(count)) event.results = count;
      } else if (name === "props" && typeof value === "object") {
        Object.assign(props, value);
      } else {
        props[name] = value;
      }
    });
    if (Object.keys(props).length) {
      var json = null;
      try { json = JSON.stringify(props); } catch (e) { /* a cycle: left out */ }
      if (json !== null && byteLength(json) <= PROPS_MAX_BYTES) event.props = props;
      else console.warn("nudgeflow: props left out (not JSON, or over 4 KiB)", type);
    }
    enqueue(event);
    return true;
  }

  // --- sending: batches, keepalive, backoff, beacon on page hide ------------------------

  var queue = [];
  var timer = 0;
  var sending = false;
  var failures = 0;
  var retryAt = 0;

  function enqueue(event) {
    queue.push(event);
    if (queue.length > QUEUE_MAX) queue.splice(0, queue.length - QUEUE_MAX);
    if (queue.length >= FLUSH_EVENTS) flush();
    else schedule(FLUSH_DELAY_MS);
  }

  function schedule(delayMs) {
    if (!timer) timer = setTimeout(flush, delayMs);
  }

  function headers() {
    var h = { "Content-Type": "application/json" };
    if (apiKey) h["X-Api-Key"] = apiKey;
    return h;
  }

  function backoff(retryAfterS) {
    failures += 1;
    var delay = retryAfterS > 0
      ? retryAfterS * 1000
      : Math.min(BACKOFF_MAX_MS, BACKOFF_MS * Math.pow(2, failures - 1)) * (0.5 + Math.random() / 2);
    retryAt = Date.now() + delay;
  }

  function flush() {
    clearTimeout(timer);
    timer = 0;
    if (sending || !queue.length) return;
    if (Date.now() < retryAt) return schedule(retryAt - Date.now());
    var batch = queue.splice(0, REQUEST_EVENTS);
    var body = JSON.stringify({ events: batch });
    sending = true;
    fetch(endpoint, {
      method: "POST", headers: headers(), body: body, credentials: "omit",
      keepalive: byteLength(body) <= KEEPALIVE_MAX_BYTES,
    }).then(function (response) {
      if (response.status === 429 || response.status >= 500) {
        requeue(batch);
        backoff(Number(response.headers.get("Retry-After")) || 0);
        return;
      }
      // 202 (some events may be refused: a bug of the page's fields), 400, 401, 413:
      // the same body would be refused again.
      if (response.status >= 300) console.warn("nudgeflow: collector answered", response.status);
      failures = 0;
    }, function () { // offline, or the collector unreachable
      requeue(batch);
      backoff(0);
    }).then(function () {
      sending = false;
      if (queue.length) schedule(Math.max(0, retryAt - Date.now()));
    });
  }

  function requeue(batch) {
    queue = batch.concat(queue).slice(-QUEUE_MAX);
  }

  // The page may be gone in a moment: hand everything to the browser now. A beacon
  // cannot carry X-Api-Key and, cross-origin, is a credentialed request the collector's
  // CORS does not allow: it is used same-origin without a key, a keepalive fetch otherwise.
  function flushNow() {
    clearTimeout(timer);
    timer = 0;
    while (queue.length) {
      var body = JSON.stringify({ events: queue.splice(0, REQUEST_EVENTS) });
      var blob = new Blob([body], { type: "application/json" });
      if (sameOrigin && !apiKey && navigator.sendBeacon && navigator.sendBeacon(endpoint, blob)) {
        continue;
      }
      fetch(endpoint, {
        method: "POST", headers: headers(), body: body, credentials: "omit", keepalive: true,
      }).catch(noop);
    }
  }

  window.addEventListener("pagehide", flushNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flushNow();
  });

  // --- what the page does ----------------------------------------------------------------

  function ignored(element) {
    return !element || !!element.closest("[data-nudgeflow-ignore]");
  }

  // A selector that stays the same across clicks and page loads: the id, else a test or
  // tracking attribute, else a short path of tags, classes and positions.
  function selector(element) {
    if (element.id) return cut("#" + CSS.escape(element.id), STRING_LIMITS.element);
    var tag = element.tagName.toLowerCase();
    var attrs = ["data-testid", "data-test", "data-cy", "data-qa", "data-track", "name"];
    for (var i = 0; i < attrs.length; i++) {
      var value = element.getAttribute(attrs[i]);
      if (value) {
        return cut(tag + "[" + attrs[i] + '="' + value.replace(/["\\]/g, "\\$&") + '"]',
          STRING_LIMITS.element);
      }
    }
    var parts = [];
    for (var node = element; node && node !== document.body && parts.length < 4;
      node = node.parentElement) {
      if (node.id) {
        parts.unshift("#" + CSS.escape(node.id));
        break;
      }
      var part = node.tagName.toLowerCase();
      var classes = Array.prototype.filter.call(node.classList, function (c) {
        return !STATE_CLASS.test(c);
      }).slice(0, 2);
      if (classes.length) part += "." + classes.map(CSS.escape).join(".");
      var parent = node.parentElement;
      var twins = parent ? Array.prototype.filter.call(parent.children, function (c) {
        return c.tagName === node.tagName;
      }) : [];
      if (twins.length > 1) part += ":nth-of-type(" + (twins.indexOf(node) + 1) + ")";
      parts.unshift(part);
    }
    var path = parts.join(" > ");
    while (path.length > STRING_LIMITS.element && parts.length > 1) {
      parts.shift();
      path = parts.join(" > ");
    }
    return cut(path, STRING_LIMITS.element);
  }

  document.addEventListener("click", function (e) {
    var target = e.target instanceof Element ? e.target : null;
    if (ignored(target)) return;
    var element = target.closest(TARGET) || target;
    // A click into a text field is its form_focus: a second event at the same instant
    // would read as no think time (the bot rule), and the click rules skip fields anyway.
    var field = element.control || element; // a label stands for its field
    if (isField(field) && !/^(checkbox|radio|file|range|color)$/.test(field.type)) return;
    // What the detectors need to tell frustration from ordinary use (app/detect/clicks.py).
    var props = { tag: element.tagName.toLowerCase() };
    var selection = window.getSelection();
    if (e.detail >= 2 && selection && !selection.isCollapsed) props.selection = true;
    if (element.isContentEditable) props.contenteditable = true;
    if (element.hasAttribute("download")) props.download = true;
    if (element.getAttribute("target")) props.target = element.getAttribute("target");
    if (element.closest("[data-nudgeflow-repeat]")) props.repeat_click = true;
    track("click", {
      element: selector(element), x: Math.round(e.clientX), y: Math.round(e.clientY), props: props,
    });
  }, true);

  var scrollDepth = 0;
  var scrollTimer = 0;
  window.addEventListener("scroll", function () {
    if (scrollTimer) return;
    scrollTimer = setTimeout(function () {
      scrollTimer = 0;
      var scrollable = document.documentElement.scrollHeight - window.innerHeight;
      if (scrollable <= 0) return;
      var pct = Math.min(100, (window.scrollY / scrollable) * 100);
      var reached = SCROLL_DEPTHS.filter(function (d) { return d <= pct + 0.5; }).pop() || 0;
      if (reached > scrollDepth) {
        scrollDepth = reached;
        track("scroll", { scroll_pct: reached });
      }
    }, SCROLL_CHECK_MS);
  }, { passive: true });

  function isField(element) {
    return element instanceof Element && element.matches("input, select, textarea") &&
      !/^(hidden|submit|button|reset|image)$/.test(element.type) && !ignored(element);
  }

  function fieldName(element) {
    return element.name || element.id || element.getAttribute("aria-label") ||
      element.tagName.toLowerCase();
  }

  function formProps(form) {
    var name = form && (form.getAttribute("name") || form.id);
    return name ? { form: name } : {};
  }

  // form_input: once per pause in typing. A field left before the pause ends gets no
  // form_input at the very instant of its form_blur (no think time, for the bot rule):
  // the blur says "changed" instead.
  var typing = new Map(); // field element -> debounce timer of its form_input

  function typed(element) {
    typing.delete(element);
    track("form_input", { field: fieldName(element), props: formProps(element.form) });
  }

  document.addEventListener("focusin", function (e) {
    if (isField(e.target)) {
      track("form_focus", { field: fieldName(e.target), props: formProps(e.target.form) });
    }
  });
  document.addEventListener("input", function (e) {
    var element = e.target;
    if (!isField(element)) return;
    clearTimeout(typing.get(element));
    typing.set(element, setTimeout(function () { typed(element); }, INPUT_DEBOUNCE_MS));
  });
  document.addEventListener("focusout", function (e) {
    var element = e.target;
    if (!isField(element)) return;
    var props = formProps(element.form);
    if (typing.has(element)) {
      clearTimeout(typing.get(element));
      typing.delete(element);
      props.changed = true;
    }
    track("form_blur", { field: fieldName(element), props: props });
  });
  document.addEventListener("submit", function (e) {
    if (!ignored(e.target)) track("form_submit", { props: formProps(e.target) });
  }, true);
  // ``invalid`` does not bubble: caught on the way down. The error is the kind of
  // problem (valueMissing, patternMismatch, customError, ...), never what was typed.
  document.addEventListener("invalid", function (e) {
    var element = e.target;
    if (!isField(element)) return;
    var validity = element.validity;
    var problem = "invalid";
    for (var key in validity) {
      if (key !== "valid" && validity[key] === true) {
        problem = key;
        break;
      }
    }
    track("form_error", { field: fieldName(element), error: problem, props: formProps(element.form) });
  }, true);

  var errorsSent = 0;
  function reportError(message, props) {
    if (errorsSent >= ERRORS_PER_PAGE) return;
    errorsSent += 1;
    track("error", { error: message || "unknown error", props: props });
  }
  window.addEventListener("error", function (e) {
    if (!(e instanceof ErrorEvent)) return; // a resource that failed to load
    var source = "";
    try { source = new URL(e.filename).pathname; } catch (err) { /* inline script */ }
    reportError(e.message, { source: source, line: e.lineno, column: e.colno });
  });
  window.addEventListener("unhandledrejection", function (e) {
    var reason = e.reason;
    reportError("Unhandled rejection: " + (reason && reason.message ? reason.message : String(reason)), {});
  });

  // Single-page shops change the page without loading one.
  var lastPage = currentPage();
  function navigated() {
    if (currentPage() === lastPage) return;
    lastPage = currentPage();
    scrollDepth = 0;
    track("page_view");
  }
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      navigated();
      return result;
    };
  });
  window.addEventListener("popstate", navigated);

  // --- the page API ----------------------------------------------------------------------

  function announce(name) {
    window.dispatchEvent(new CustomEvent(name, { detail: { customerId: customerId } }));
  }

  api.track = track;
  api.customerId = function () { return customerId; };
  api.sessionId = function () { return session(Date.now(), false); };
  api.identify = function (id) {
    if (typeof id !== "string" || !id || id.length > ID_MAX) {
      console.warn("nudgeflow: identify() needs a string of 1 to 128 characters");
      return;
    }
    if (id === customerId) return;
    flushNow(); // what came before belongs to the previous id
    customerId = id;
    save("nf_cid", id);
    announce("nudgeflow:identify");
  };
  api.reset = function () { // log-out: the next person on this device is someone else
    flushNow();
    customerId = "anon-" + randomId();
    save("nf_cid", customerId);
    save("nf_sid", "");
    announce("nudgeflow:identify");
  };

  track("page_view");
  if (Array.isArray(queued)) queued.forEach(api.push);
  announce("nudgeflow:ready");
})();
