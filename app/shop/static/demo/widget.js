/* The demo's chat widget: it listens to nudgeflow's server-sent interventions for the
 * tracker's customer (GET /v1/interventions/stream, contract §3) and, as each arrives,
 * opens a chat bubble with an offer of help, its kind and why, and reports what the
 * shopper did with it (POST /v1/feedback: "shown", then "accepted" or "dismissed").
 *
 *   <script src="https://collector.example/demo/widget.js" data-api-key="…" defer></script>
 *
 * A real chatbot would put its own words and a conversation behind the buttons.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = new URL(script.getAttribute("data-collector") || script.src, location.href).origin;
  var apiKey = script.getAttribute("data-api-key") || "";
  var HISTORY_KEY = "nf_widget_history"; // this tab's conversation, kept across pages
  var HISTORY_MAX = 20;
  var RECONNECT_MS = 5000; // after a refusal (503 while Redis is away): EventSource gives up

  var LINES = {
    rage_click: "That button doesn't seem to be responding. Can I help you get where you were going?",
    dead_click: "Nothing happened there? Tell me what you were after and I'll take you to it.",
    payment_failure: "Sorry, your payment didn't go through. I can help you try another card or another way to pay.",
    form_struggle: "This form seems to be giving you trouble. Want me to help you fill it in?",
    search_frustration: "Can't find what you're looking for? Tell me and I'll find it for you.",
    checkout_stall: "Anything holding you up? I can answer questions about delivery or payment.",
    step_loop: "Going back and forth? I can check the details with you.",
    error_burst: "Something on this page isn't working as it should. Can I help you finish here?",
  };
  var KIND_LINES = {
    assist: "Need a hand? I'm here to help.",
    offer: "Still deciding? I can show you similar things or answer any question.",
    reminder: "Your cart is still waiting for you. Want me to keep it for later?",
    reward: "Thank you! That helps other shoppers a lot.",
  };
  var ACCEPT = { assist: "Yes, help me", offer: "Show me options", reminder: "Keep my cart", reward: "You're welcome" };
  var REPLIES = {
    accepted: "Great, a member of our team is joining this chat now.",
    dismissed: "No problem. I'm right here if you need me.",
  };

  var root, panel, list, launcher, source, customer;
  var history = loadHistory();

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function loadHistory() {
    try {
      return JSON.parse(sessionStorage.getItem(HISTORY_KEY)) || [];
    } catch (e) {
      return [];
    }
  }

  function saveHistory() {
    history = history.slice(-HISTORY_MAX);
    try {
      sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
    } catch (e) { /* storage blocked: this page only */ }
  }

  function build() {
    var style = document.createElement("link");
    style.rel = "stylesheet";
    style.href = new URL("widget.css", script.src).href;
    document.head.appendChild(style);

    // data-nudgeflow-ignore: the tracker leaves the widget's own clicks and fields alone.
    root = el("div", "nfw");
    root.setAttribute("data-nudgeflow-ignore", "");
    root.setAttribute("data-stream", "closed");
    panel = el("section", "nfw-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", "Shop assistant");
    panel.hidden = true;
    var head = el("header", "nfw-head");
    head.appendChild(el("span", "nfw-avatar", "F"));
    var title = el("div", "nfw-title");
    title.appendChild(el("strong", "", "Fernhill assistant"));
    title.appendChild(el("small", "", "Here when you need us"));
    head.appendChild(title);
    var close = el("button", "nfw-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "Close the chat");
    close.addEventListener("click", function () { toggle(false); });
    head.appendChild(close);
    list = el("ol", "nfw-messages");
    list.setAttribute("aria-live", "polite");
    list.appendChild(el("li", "nfw-greeting", "Hi! Ask us anything about the shop."));
    panel.appendChild(head);
    panel.appendChild(list);
    launcher = el("button", "nfw-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-label", "Chat with us");
    launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 5h16v11H9l-5 4z"/></svg>';
    launcher.addEventListener("click", function () { toggle(panel.hidden); });
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(root);
    history.forEach(function (entry) { render(entry); });
  }

  function toggle(open) {
    panel.hidden = !open;
    root.classList.toggle("nfw-open", open);
  }

  function feedback(intervention, outcome) {
    var headers = { "Content-Type": "application/json" };
    if (apiKey) headers["X-Api-Key"] = apiKey;
    return fetch(origin + "/v1/feedback", {
      method: "POST", headers: headers, credentials: "omit", keepalive: true,
      body: JSON.stringify({
        intervention_id: intervention.intervention_id, customer_id: intervention.customer_id,
        outcome: outcome, ts: Date.now(),
      }),
    }).catch(function () { /* feedback is best effort: the chat goes on */ });
  }

  function render(entry) {
    var intervention = entry.intervention;
    var item = el("li", "nfw-message");
    item.setAttribute("data-kind", intervention.kind);
    item.setAttribute("data-reason", intervention.reason);
    item.setAttribute("data-intervention-id", intervention.intervention_id);
    item.appendChild(el("p", "nfw-text",
      LINES[intervention.reason] || KIND_LINES[intervention.kind] || KIND_LINES.assist));
    var why = el("p", "nfw-why");
    why.appendChild(el("span", "nfw-kind", intervention.kind));
    why.appendChild(document.createTextNode(" " + intervention.explanation));
    item.appendChild(why);
    var actions = el("div", "nfw-actions");
    var accept = el("button", "nfw-accept", ACCEPT[intervention.kind] || ACCEPT.assist);
    var dismiss = el("button", "nfw-dismiss", "No thanks");
    accept.type = dismiss.type = "button";
    actions.appendChild(accept);
    actions.appendChild(dismiss);
    item.appendChild(actions);
    list.appendChild(item);

    function answered(outcome) {
      accept.disabled = dismiss.disabled = true;
      item.setAttribute("data-outcome", outcome);
      list.appendChild(el("li", "nfw-you", (outcome === "accepted" ? accept : dismiss).textContent));
      list.appendChild(el("li", "nfw-reply", REPLIES[outcome]));
      list.scrollTop = list.scrollHeight;
    }
    function choose(outcome) {
      entry.outcome = outcome;
      saveHistory();
      answered(outcome);
      feedback(intervention, outcome);
    }
    accept.addEventListener("click", function () { choose("accepted"); });
    dismiss.addEventListener("click", function () { choose("dismissed"); });
    if (entry.outcome) answered(entry.outcome);
    list.scrollTop = list.scrollHeight;
  }

  function arrived(intervention) {
    var seen = history.some(function (entry) {
      return entry.intervention.intervention_id === intervention.intervention_id;
    });
    if (seen) return; // a redelivery carries the same id
    var entry = { intervention: intervention, outcome: null };
    history.push(entry);
    saveHistory();
    render(entry);
    toggle(true);
    feedback(intervention, "shown");
  }

  function lastIdKey(id) {
    return "nf_widget_last:" + id;
  }

  // One stream per customer; a new page resumes after the last entry this browser saw,
  // so an intervention that fired while the shopper changed page still arrives.
  function connect() {
    var id = window.nudgeflow && window.nudgeflow.customerId && window.nudgeflow.customerId();
    if (!id || (id === customer && source && source.readyState !== EventSource.CLOSED)) return;
    if (source) source.close();
    customer = id;
    var params = new URLSearchParams({ customer_id: id });
    var last = localStorage.getItem(lastIdKey(id));
    if (last) params.set("last_event_id", last);
    if (apiKey) params.set("api_key", apiKey);
    var stream = new EventSource(origin + "/v1/interventions/stream?" + params);
    source = stream;
    root.setAttribute("data-stream", "connecting");
    stream.onopen = function () { root.setAttribute("data-stream", "open"); };
    stream.onerror = function () {
      if (stream !== source) return;
      if (stream.readyState === EventSource.CLOSED) {
        root.setAttribute("data-stream", "closed");
        setTimeout(connect, RECONNECT_MS);
      } else {
        root.setAttribute("data-stream", "connecting"); // EventSource retries by itself
      }
    };
    stream.addEventListener("intervention", function (e) {
      if (e.lastEventId) localStorage.setItem(lastIdKey(id), e.lastEventId);
      var intervention;
      try {
        intervention = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      arrived(intervention);
    });
  }

  build();
  window.addEventListener("nudgeflow:ready", connect);
  window.addEventListener("nudgeflow:identify", connect);
  connect(); // the tracker may have loaded first
})();
