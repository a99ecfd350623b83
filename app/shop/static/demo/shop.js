/* Fernhill, nudgeflow's demo shop: a catalogue, a cart kept in localStorage, and what each
 * page does. It declares to the tracker what only the shop knows (product views, cart
 * changes, searches, checkout steps, payments) with nudgeflow.track, as any shop would.
 *
 * Deliberate friction, to see nudgeflow step in:
 *   - the "Claim 10% off" button on the home page (#broken-button) does nothing;
 *   - the card 4000 0000 0000 0002 is always declined;
 *   - the optional phone field refuses every number;
 *   - the search only knows product names: "cup" finds nothing.
 */
(function () {
  "use strict";

  var PRODUCTS = [
    { id: "mug", name: "Stoneware mug", price: 18, colour: "#c9704b",
      blurb: "Hand-thrown, with a glaze that pools at the rim. Holds 350 ml." },
    { id: "towel", name: "Linen tea towel", price: 14, colour: "#7d9a8a",
      blurb: "Stonewashed Lithuanian linen that gets softer with every wash." },
    { id: "board", name: "Oak serving board", price: 42, colour: "#b08a5a",
      blurb: "A single piece of European oak, oiled by hand. 45 × 20 cm." },
    { id: "lamp", name: "Brass desk lamp", price: 89, colour: "#d2a94b",
      blurb: "Solid brass on a weighted base, with a warm 2 700 K bulb." },
    { id: "throw", name: "Wool throw", price: 120, colour: "#8a6f9e",
      blurb: "Woven in Wales from undyed merino. 130 × 180 cm." },
    { id: "planter", name: "Ceramic planter", price: 26, colour: "#5f8fa8",
      blurb: "A matte planter with a drainage dish, for herbs on the sill." },
  ];
  // Simple line drawings, one per product (viewBox 0 0 64 64).
  var ART = {
    mug: '<rect x="16" y="20" width="26" height="30" rx="4"/><path d="M42 26h5a6 6 0 0 1 0 12h-5"/><path d="M22 12c0 3 3 3 3 6M30 12c0 3 3 3 3 6"/>',
    towel: '<rect x="18" y="12" width="28" height="40" rx="2"/><path d="M18 22h28M18 42h28M24 12v-4h16v4"/>',
    board: '<rect x="10" y="22" width="38" height="22" rx="6"/><path d="M48 33h8"/><circle cx="54" cy="33" r="2"/>',
    lamp: '<path d="M20 52h24M32 52V34l-8-10M24 24l10-10 8 8-10 10z"/>',
    throw: '<path d="M12 20h40v12H12zM12 32c0 8 6 12 20 12s20-4 20-12M16 44v6M24 46v6M32 46v6M40 46v6M48 44v6"/>',
    planter: '<path d="M20 34h24l-3 18H23zM32 34V20M32 26c-6 0-10-4-10-10 6 0 10 4 10 10zM32 22c6 0 10-4 10-10-6 0-10 4-10 10z"/>',
  };
  var DECLINED_CARD = "4000000000000002";
  var CART_KEY = "fernhill_cart";

  function track(type, fields) {
    (window.nudgeflow = window.nudgeflow || []).push(["track", type, fields || {}]);
  }

  function $(selector) {
    return document.querySelector(selector);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function money(amount) {
    return "€" + amount.toFixed(2);
  }

  function product(id) {
    return PRODUCTS.filter(function (p) { return p.id === id; })[0] || null;
  }

  function art(p) {
    return '<div class="art" style="--tint:' + p.colour + '"><svg viewBox="0 0 64 64" ' +
      'aria-hidden="true">' + ART[p.id] + "</svg></div>";
  }

  // --- the cart ----------------------------------------------------------------------------

  function cart() {
    try {
      return JSON.parse(localStorage.getItem(CART_KEY)) || {};
    } catch (e) {
      return {};
    }
  }

  function saveCart(items) {
    localStorage.setItem(CART_KEY, JSON.stringify(items));
    renderCartCount();
  }

  function cartLines() {
    var items = cart();
    return Object.keys(items).map(function (id) {
      return { product: product(id), quantity: items[id] };
    }).filter(function (line) { return line.product && line.quantity > 0; });
  }

  function cartTotal() {
    return cartLines().reduce(function (sum, line) {
      return sum + line.product.price * line.quantity;
    }, 0);
  }

  function renderCartCount() {
    var count = cartLines().reduce(function (n, line) { return n + line.quantity; }, 0);
    var badge = $(".cart-count");
    if (badge) badge.textContent = count;
  }

  // --- the frame of every page ---------------------------------------------------------------

  function renderHeader() {
    var query = new URLSearchParams(location.search).get("q") || "";
    $("#site-header").innerHTML =
      '<a class="logo" href="./">Fernhill<span>.</span></a>' +
      '<form class="search" action="search.html" role="search" name="search">' +
      '<input type="search" name="q" placeholder="Search the shop" aria-label="Search" value="' +
      escapeHtml(query) + '"><button class="button" type="submit">Search</button></form>' +
      '<a class="cart-link" href="cart.html">Cart <span class="cart-count">0</span></a>';
    renderCartCount();
  }

  function productCard(p) {
    return '<a class="card" href="product.html?id=' + p.id + '">' + art(p) +
      '<span class="card-name">' + escapeHtml(p.name) + '</span><span class="card-price">' +
      money(p.price) + "</span></a>";
  }

  // --- the pages -----------------------------------------------------------------------------

  var pages = {};

  pages.home = function () {
    $("#products").innerHTML = PRODUCTS.map(productCard).join("");
    // #broken-button has no handler at all: the friction is the point.
  };

  pages.product = function () {
    var p = product(new URLSearchParams(location.search).get("id"));
    var main = $("#product");
    if (!p) {
      main.innerHTML = '<p class="empty">That product does not exist. <a href="./">See all ' +
        "products</a>.</p>";
      return;
    }
    document.title = p.name + " — Fernhill";
    main.innerHTML = art(p) + '<div class="product-info"><h1>' + escapeHtml(p.name) + "</h1>" +
      '<p class="price">' + money(p.price) + "</p><p>" + escapeHtml(p.blurb) + "</p>" +
      '<button id="add-to-cart" class="button button-primary" type="button">Add to cart</button>' +
      '<p class="note" id="added" hidden>Added. <a href="cart.html">Go to your cart</a></p></div>';
    track("product_view", { product_id: p.id, value: p.price });
    $("#add-to-cart").addEventListener("click", function () {
      var items = cart();
      items[p.id] = (items[p.id] || 0) + 1;
      saveCart(items);
      track("add_to_cart", { product_id: p.id, value: p.price });
      $("#added").hidden = false;
    });
  };

  pages.cart = function () {
    var main = $("#cart");
    function render() {
      var lines = cartLines();
      if (!lines.length) {
        main.innerHTML = '<p class="empty">Your cart is empty. <a href="./">Find something ' +
          "nice</a>.</p>";
        return;
      }
      main.innerHTML = '<ul class="cart-lines">' + lines.map(function (line) {
        var p = line.product;
        return '<li data-id="' + p.id + '">' + art(p) + '<span class="line-name">' +
          escapeHtml(p.name) + '</span><span class="qty" data-nudgeflow-repeat>' +
          '<button class="qty-minus" type="button" aria-label="One less">−</button>' +
          "<span>" + line.quantity + "</span>" +
          '<button class="qty-plus" type="button" aria-label="One more">+</button></span>' +
          '<span class="line-price">' + money(p.price * line.quantity) + "</span>" +
          '<button class="link remove" type="button">Remove</button></li>';
      }).join("") + '</ul><p class="total">Total <strong>' + money(cartTotal()) +
        '</strong></p><a id="checkout-button" class="button button-primary" ' +
        'href="checkout.html">Checkout</a>';
    }
    main.addEventListener("click", function (e) {
      var button = e.target.closest("button");
      var line = e.target.closest("li[data-id]");
      if (!button || !line) return;
      var id = line.getAttribute("data-id");
      var items = cart();
      var price = product(id).price;
      if (button.classList.contains("qty-plus")) {
        items[id] += 1;
        track("add_to_cart", { product_id: id, value: price });
      } else {
        var all = button.classList.contains("remove");
        var removed = all ? items[id] : 1;
        items[id] -= removed;
        if (items[id] <= 0) delete items[id];
        track("remove_from_cart", { product_id: id, value: price * removed });
      }
      saveCart(items);
      render();
    });
    render();
    if (cartLines().length) track("checkout_step", { step: "cart", value: cartTotal() });
  };

  pages.search = function () {
    var query = (new URLSearchParams(location.search).get("q") || "").trim();
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    // Names only, no synonyms: "cup" does not find the mug (deliberately).
    var found = words.length ? PRODUCTS.filter(function (p) {
      return words.every(function (w) { return p.name.toLowerCase().indexOf(w) >= 0; });
    }) : [];
    $("#search-title").textContent = query ? "Results for “" + query + "”" : "Search";
    $("#results").innerHTML = found.length ? found.map(productCard).join("")
      : '<p class="empty" id="no-results">No results' + (query ? " for “" +
        escapeHtml(query) + "”" : "") + ". Try another word.</p>";
    if (query) track("search", { query: query, results: found.length });
  };

  pages.checkout = function () {
    var total = cartTotal();
    if (!total) {
      $("#checkout").innerHTML = '<p class="empty">Your cart is empty. <a href="./">Find ' +
        "something nice</a>.</p>";
      return;
    }
    $("#order-total").textContent = money(total);
    var shipping = $("#shipping-form");
    var payment = $("#payment-form");
    var phone = shipping.elements.phone;

    function showStep(step) {
      ["shipping", "payment", "done"].forEach(function (name) {
        $("#step-" + name).hidden = name !== step;
        var marker = $('.steps [data-step="' + name + '"]');
        if (marker) marker.classList.toggle("current", name === step);
      });
      if (step !== "done") track("checkout_step", { step: step, value: total });
    }

    // The bug: any phone number is refused. It is optional, so leaving it empty works.
    function checkPhone() {
      phone.setCustomValidity(phone.value.trim()
        ? "Enter the number in the format +44 20 7946 0000." : "");
    }
    var phoneError = $("#phone-error");
    phone.addEventListener("input", function () {
      checkPhone();
      phoneError.hidden = true;
    });
    // checkValidity fires ``invalid`` (the tracker's form_error) without trapping the focus.
    phone.addEventListener("blur", function () {
      checkPhone();
      phoneError.textContent = phone.validationMessage;
      phoneError.hidden = phone.checkValidity();
    });
    shipping.addEventListener("submit", function (e) {
      e.preventDefault();
      showStep("payment");
      payment.elements.card_name.value = shipping.elements.full_name.value;
    });

    var cardError = $("#card-error");
    var payError = $("#payment-error");
    payment.addEventListener("submit", function (e) {
      e.preventDefault();
      var digits = payment.elements.card_number.value.replace(/\D/g, "");
      cardError.hidden = payError.hidden = true;
      if (!luhn(digits)) {
        cardError.hidden = false;
        track("form_error", { field: "card_number", error: "card_number_invalid",
          props: { form: "payment" } });
        return;
      }
      var button = $("#pay-button");
      button.disabled = true;
      button.textContent = "Processing…";
      track("payment_attempt", { step: "payment", value: total });
      setTimeout(function () {
        button.disabled = false;
        button.textContent = "Pay " + money(total);
        if (digits === DECLINED_CARD) {
          track("payment_failed", { step: "payment", value: total, error: "card_declined" });
          payError.hidden = false;
          return;
        }
        track("purchase", { value: total, props: { items: cartLines().length } });
        saveCart({});
        showStep("done");
      }, 700);
    });
    $("#pay-button").textContent = "Pay " + money(total);
    showStep("shipping");
  };

  function luhn(digits) {
    if (!/^\d{12,19}$/.test(digits)) return false;
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return sum % 10 === 0;
  }

  renderHeader();
  var page = pages[document.body.getAttribute("data-page")];
  if (page) page();
})();
