// The demo storefront's glue code. Settings come from the query string so that the browser test
// can point it at a collector: ?endpoint=...&key=...&batch=...&flush=...
(function () {
  var params = new URLSearchParams(location.search);
  var cs = window.clickstream;
  // What the browser test reads: every event id this page generated, and what was acknowledged.
  var state = (window.__cs = { ids: [], types: {}, accepted: [], rejected: [], dropped: [], reports: [] });
  var log = document.getElementById('log');
  function note(text) { log.textContent = text + '\n' + log.textContent; }
  function record(type, ids) {
    ids = [].concat(ids).filter(Boolean);
    ids.forEach(function (id) { state.ids.push(id); state.types[id] = type; });
    note(type + ' ' + ids.join(', '));
    return ids;
  }

  cs.init({
    writeKey: params.get('key') || 'dev-write-key',
    endpoint: params.get('endpoint') || location.origin,
    batchSize: Number(params.get('batch') || 20),
    flushIntervalMs: Number(params.get('flush') || 5000),
    retryBaseDelayMs: Number(params.get('retry') || 1000),
    app: { name: 'demo-storefront', version: '1.0.0' },
    onReport: function (r) {
      state.reports.push({ status: r.status, via: r.via, accepted: r.accepted.length, retrying: r.retrying.length });
      state.accepted.push.apply(state.accepted, r.accepted);
      state.rejected.push.apply(state.rejected, r.rejected);
      state.dropped.push.apply(state.dropped, r.dropped);
    },
  });
  record('page_view', cs.page());

  var cart = {};
  function product(card, quantity) {
    var d = card.dataset;
    return {
      product_id: d.productId, category_id: d.categoryId, category_code: d.categoryCode,
      brand: d.brand, price: d.price, currency: 'EUR', quantity: quantity || 1,
    };
  }
  function renderCart() {
    var ids = Object.keys(cart);
    document.getElementById('cart-lines').textContent = ids.length
      ? ids.map(function (id) { return id + ' × ' + cart[id].quantity; }).join(', ') : 'empty';
  }

  document.querySelectorAll('.card').forEach(function (card) {
    var id = card.dataset.productId;
    card.querySelector('.view').addEventListener('click', function () {
      record('product_view', cs.productView(product(card)));
    });
    card.querySelector('.add').addEventListener('click', function () {
      cart[id] = product(card, (cart[id] ? cart[id].quantity : 0) + 1);
      renderCart();
      record('add_to_cart', cs.addToCart(product(card, 1)));
    });
    card.querySelector('.remove').addEventListener('click', function () {
      if (!cart[id]) return;
      var removed = product(card, cart[id].quantity);
      delete cart[id];
      renderCart();
      record('remove_from_cart', cs.removeFromCart(removed));
    });
  });

  document.getElementById('search-form').addEventListener('submit', function (e) {
    e.preventDefault();
    record('search', cs.search(document.getElementById('q').value));
  });
  document.getElementById('sign-in').addEventListener('click', function () {
    cs.identify('user-42');
    document.getElementById('user').textContent = 'user-42';
  });
  document.getElementById('checkout').addEventListener('click', function () {
    record('begin_checkout', cs.beginCheckout({ properties: { lines: Object.keys(cart).length } }));
  });
  document.getElementById('purchase').addEventListener('click', function () {
    var lines = Object.keys(cart).map(function (id) { return { product: cart[id] }; });
    record('purchase', cs.purchase({ order_id: 'order-' + Date.now(), currency: 'EUR', lines: lines }));
    cart = {};
    renderCart();
  });
})();
