/* clickstream dashboard: fetches /api/* for the selected date range and renders the tiles.
 *
 * Every tile root has data-tile=<name> and, once rendered, data-state="ready" and
 * data-rows=<rows rendered> ("empty" with data-rows=0 when the range has no data,
 * "error" when its request failed). The browser test relies on these attributes.
 */
(() => {
  "use strict";

  const PALETTE = ["#4f46e5", "#0d9488", "#f59e0b", "#e11d48", "#0284c7", "#7c3aed", "#65a30d", "#64748b"];
  const STEP_SHORT = { none: "No product", product_view: "Viewed", add_to_cart: "Carted", begin_checkout: "Checkout", purchase: "Purchased" };
  const STEP_LABELS = {
    none: "No product viewed", product_view: "Viewed product", add_to_cart: "Added to cart",
    begin_checkout: "Began checkout", purchase: "Purchased",
  };
  const CHANNEL_LABELS = {
    direct: "Direct", organic_search: "Organic search", paid_search: "Paid search", paid_social: "Paid social",
    social: "Social", email: "Email", affiliate: "Affiliate", display: "Display",
    other_campaign: "Other campaign", referral: "Referral",
  };

  const state = { min: null, max: null, from: null, to: null, level: "top", metric: "revenue",
    currency: "EUR", seq: 0, data: {} };
  const charts = new Map();

  // ------------------------------------------------------------------ formatting
  const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  const fmtInt = (v) => (v == null ? "–" : intFmt.format(v));
  const fmtPct = (v, digits = 1) => (v == null ? "–" : (v * 100).toFixed(digits) + "%");
  const fmtMoney = (v, compact = false) => {
    if (v == null) return "–";
    try {
      return new Intl.NumberFormat("en-US", {
        style: "currency", currency: state.currency || "EUR",
        notation: compact && Math.abs(v) >= 10000 ? "compact" : "standard",
        minimumFractionDigits: 0,
        maximumFractionDigits: compact || Math.abs(v) >= 100 || Number.isInteger(v) ? 0 : 2,
      }).format(v);
    } catch (_) {
      return intFmt.format(v);
    }
  };
  const fmtDuration = (s) => {
    if (s == null) return "–";
    s = Math.round(s);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    return m < 60 ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
  };
  const fmtHour = (h) => `${String(h).padStart(2, "0")}:00`;
  const fmtDate = (iso) => {
    const d = new Date(iso + "T00:00:00Z");
    return d.toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
  };
  const fmtDateLong = (iso) => new Date(iso + "T00:00:00Z")
    .toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const addDays = (iso, n) => {
    const d = new Date(iso + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  };
  const rateCell = (v) => {
    const alpha = v == null ? 0 : Math.min(0.08 + v * 0.5, 0.55);
    return `<span class="rate" style="background: rgba(79,70,229,${alpha.toFixed(2)})">${fmtPct(v)}</span>`;
  };

  // ------------------------------------------------------------------ helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const tile = (name) => $(`[data-tile="${name}"]`);

  function setTileState(name, st, rows = 0, message = "") {
    const el = tile(name);
    el.dataset.state = st;
    el.dataset.rows = String(rows);
    if (message) el.dataset.message = message; else delete el.dataset.message;
  }

  function chart(el) {
    if (!charts.has(el)) charts.set(el, window.echarts.init(el, null, { renderer: "svg" }));
    return charts.get(el);
  }

  function baseOption() {
    return {
      color: PALETTE,
      animationDuration: 300,
      textStyle: { fontFamily: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", color: "#172033" },
      grid: { left: 8, right: 12, top: 36, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", backgroundColor: "#fff", borderColor: "#e3e8f0", textStyle: { color: "#172033", fontSize: 12 } },
      legend: { top: 0, left: 0, itemWidth: 12, itemHeight: 8, textStyle: { color: "#64708a", fontSize: 11 } },
    };
  }
  const axisStyle = {
    axisLine: { lineStyle: { color: "#cfd6e2" } },
    axisLabel: { color: "#64708a", fontSize: 11 },
    splitLine: { lineStyle: { color: "#eef1f6" } },
  };

  async function api(path, params = {}) {
    const q = new URLSearchParams({ from: state.from, to: state.to, ...params });
    const res = await fetch(`${path}?${q}`, { headers: { Accept: "application/json" } });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) {
      const err = new Error(body.error || `HTTP ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  function showBanner(message) {
    const b = $("#banner");
    if (message) { b.textContent = message; b.hidden = false; } else { b.hidden = true; b.textContent = ""; }
  }

  // ------------------------------------------------------------------ KPIs
  function renderKpis(summary) {
    const k = summary.kpis;
    const p = summary.previous.kpis;
    state.currency = k.currency || p.currency || state.currency;
    const formats = {
      events: fmtInt, sessions: fmtInt, visitors: fmtInt, orders: fmtInt,
      revenue: (v) => fmtMoney(v), conversion_rate: (v) => fmtPct(v, 2),
    };
    for (const [key, fmt] of Object.entries(formats)) {
      const el = $(`[data-kpi="${key}"]`);
      const value = k[key];
      const valueEl = $(".kpi-value", el);
      valueEl.textContent = fmt(value);
      el.dataset.value = value == null ? "" : String(value);
      const prev = p[key];
      const deltaEl = $(".kpi-delta", el);
      if (value == null || prev == null || prev === 0 || p.days_with_data === 0) {
        deltaEl.innerHTML = `<span>no data in previous ${esc(periodLabel())}</span>`;
      } else {
        const change = key === "conversion_rate" ? (value - prev) * 100 : ((value - prev) / prev) * 100;
        const unit = key === "conversion_rate" ? " pp" : "%";
        const cls = change >= 0 ? "up" : "down";
        deltaEl.innerHTML = `<span class="${cls}">${change >= 0 ? "▲" : "▼"} ${Math.abs(change).toFixed(1)}${unit}</span> vs previous ${esc(periodLabel())}`;
      }
    }
    $('[data-kpi="visitors"]').title = "Unique visitors with a session started in the range";
    $('[data-kpi="conversion_rate"]').title = "Sessions with a purchase / all sessions";
    $('[data-kpi="orders"] h3').textContent = "Orders";
    const aov = k.average_order_value;
    $('[data-kpi="revenue"]').title = aov == null ? "" : `Average order value ${fmtMoney(aov)}`;
  }

  function periodLabel() {
    const days = Math.round((Date.parse(state.to) - Date.parse(state.from)) / 86400000) + 1;
    return days === 1 ? "day" : `${days} days`;
  }

  // ------------------------------------------------------------------ traffic
  function renderTraffic(t) {
    const el = tile("traffic");
    if (!t.daily.length) return setTileState("traffic", "empty", 0, "No traffic in this date range");
    const days = t.daily.map((d) => d.event_date);
    const dailyChart = chart($('[data-chart="daily"]', el));
    const busiest = t.daily.reduce((a, b) => (b.events > a.events ? b : a));
    dailyChart.setOption({
      ...baseOption(),
      tooltip: {
        ...baseOption().tooltip,
        formatter: (ps) => {
          const d = t.daily[ps[0].dataIndex];
          return `<b>${esc(fmtDateLong(d.event_date))}</b><br>` +
            ps.map((p) => `${p.marker} ${esc(p.seriesName)}: <b>${fmtInt(p.value)}</b>`).join("<br>") +
            `<br>Peak hour: <b>${d.peak_hour_of_day == null ? "–" : fmtHour(d.peak_hour_of_day)}</b> (${fmtInt(d.peak_hour_events)} events)` +
            `<br>Orders: <b>${fmtInt(d.orders)}</b> · Revenue: <b>${fmtMoney(d.revenue)}</b>`;
        },
      },
      xAxis: { type: "category", data: days, ...axisStyle, axisLabel: { ...axisStyle.axisLabel, formatter: fmtDate } },
      yAxis: [{ type: "value", ...axisStyle }, { type: "value", ...axisStyle, splitLine: { show: false } }],
      series: [
        { name: "Events", type: "bar", data: t.daily.map((d) => d.events), barMaxWidth: 28, itemStyle: { borderRadius: [3, 3, 0, 0] },
          markPoint: { symbolSize: 38, label: { fontSize: 10 }, data: [{ type: "max", name: "Busiest day" }] } },
        { name: "Sessions", type: "line", yAxisIndex: 1, smooth: true, symbolSize: 5, data: t.daily.map((d) => d.sessions) },
        { name: "Page views", type: "line", yAxisIndex: 0, smooth: true, symbolSize: 4, lineStyle: { type: "dashed" }, data: t.daily.map((d) => d.page_views) },
      ],
    }, true);

    const peak = t.peak_hour_of_day;
    const hourlyChart = chart($('[data-chart="hourly"]', el));
    hourlyChart.setOption({
      ...baseOption(),
      legend: { show: false },
      title: { text: "Events by hour of day (UTC)", left: 0, top: 0, textStyle: { fontSize: 12, fontWeight: 500, color: "#64708a" } },
      tooltip: { ...baseOption().tooltip, formatter: (ps) => `<b>${fmtHour(ps[0].dataIndex)}–${fmtHour((ps[0].dataIndex + 1) % 24)}</b><br>Events: <b>${fmtInt(ps[0].value)}</b><br>Active sessions: <b>${fmtInt(t.hourly[ps[0].dataIndex].active_sessions)}</b>` },
      xAxis: { type: "category", data: t.hourly.map((h) => String(h.hour_of_day).padStart(2, "0")), ...axisStyle, axisLabel: { ...axisStyle.axisLabel, interval: 2 } },
      yAxis: { type: "value", ...axisStyle },
      series: [{
        name: "Events", type: "bar", barCategoryGap: "20%",
        data: t.hourly.map((h) => ({
          value: h.events,
          itemStyle: { color: h.hour_of_day === peak ? "#e11d48" : "#a5b4fc", borderRadius: [2, 2, 0, 0] },
        })),
        markPoint: peak == null ? undefined : {
          symbol: "pin", symbolSize: 44, itemStyle: { color: "#e11d48" },
          label: { formatter: () => "Peak", fontSize: 10 },
          data: [{ name: "Peak hour", coord: [peak, t.hourly[peak].events] }],
        },
      }],
    }, true);

    const p = t.peak_hour;
    $('[data-role="meta"]', el).innerHTML = p
      ? `Peak hour <strong>${fmtHour(peak)}</strong> UTC<br><span>busiest: ${esc(fmtDate(p.event_date))} ${fmtHour(p.hour_of_day)} · ${fmtInt(p.events)} events</span>`
      : "";
    $('[data-role="event-types"]', el).innerHTML = t.event_types
      .map((e) => `<span class="chip">${esc(e.event_type.replace(/_/g, " "))} <b>${fmtInt(e.events)}</b></span>`).join("");
    el.dataset.peakHour = peak == null ? "" : String(peak);
    setTileState("traffic", "ready", t.daily.length);
  }

  // ------------------------------------------------------------------ funnel
  function renderFunnel(f) {
    const el = tile("funnel");
    const steps = f.steps;
    if (!steps[0].sessions) return setTileState("funnel", "empty", 0, "No sessions in this date range");
    const funnelSteps = steps.filter((s) => s.step !== "sessions");
    chart($('[data-chart="funnel"]', el)).setOption({
      ...baseOption(),
      legend: { show: false },
      tooltip: { trigger: "item", formatter: (p) => { const s = funnelSteps[p.dataIndex]; return `<b>${esc(s.label)}</b><br>Sessions: <b>${fmtInt(s.sessions)}</b> (${fmtPct(s.share_of_sessions)} of all)<br>Step conversion: <b>${fmtPct(s.step_conversion)}</b>`; } },
      series: [{
        // Labels beside the funnel, not inside it: inside, the narrow lower steps cut them off.
        type: "funnel", left: 8, width: "52%", top: 8, bottom: 8, sort: "none", gap: 3, minSize: "12%",
        label: { position: "right", color: "#172033", fontSize: 11, lineHeight: 15,
          formatter: (p) => `${funnelSteps[p.dataIndex].label}\n{n|${fmtInt(p.value)}}`, rich: { n: { fontWeight: 600, fontSize: 12 } } },
        labelLine: { length: 8, lineStyle: { color: "#cfd6e2" } },
        data: funnelSteps.map((s, i) => ({ name: s.label, value: s.sessions, itemStyle: { color: ["#4f46e5", "#6366f1", "#818cf8", "#0d9488"][i] } })),
      }],
    }, true);
    $('[data-role="funnel-table"] tbody', el).innerHTML = steps.map((s) => `
      <tr data-step="${esc(s.step)}"><td>${esc(s.label)}</td><td class="num">${fmtInt(s.sessions)}</td>
      <td class="num">${s.step_conversion == null ? "" : fmtPct(s.step_conversion)}</td>
      <td class="num">${s.drop_off == null ? "" : `<span style="color:#dc2626">${fmtPct(s.drop_off)}</span>`}</td></tr>`).join("") +
      `<tr><td><b>Orders</b> · revenue</td><td class="num"><b>${fmtInt(f.orders)}</b></td><td class="num" colspan="2">${fmtMoney(f.revenue)}</td></tr>`;
    setTileState("funnel", "ready", steps.length);
  }

  // ------------------------------------------------------------------ conversion
  function renderConversion(categories, products) {
    const el = tile("conversion");
    if (!categories.rows.length && !products.rows.length) {
      return setTileState("conversion", "empty", 0, "No product activity in this date range");
    }
    const cats = categories.rows.slice(0, 10);
    chart($('[data-chart="categories"]', el)).setOption({
      ...baseOption(),
      tooltip: { ...baseOption().tooltip, valueFormatter: (v) => fmtPct(v) },
      xAxis: { type: "category", data: cats.map((c) => c.category), ...axisStyle,
        axisLabel: { ...axisStyle.axisLabel, interval: 0, formatter: (v) => (v.length > 18 ? v.slice(0, 17) + "…" : v) } },
      yAxis: { type: "value", max: (v) => Math.min(1, Math.ceil(v.max * 10 + 0.5) / 10), ...axisStyle, axisLabel: { ...axisStyle.axisLabel, formatter: (v) => `${Math.round(v * 100)}%` } },
      series: [
        { name: "View → cart", type: "bar", data: cats.map((c) => c.session_view_to_cart_rate), barMaxWidth: 22 },
        { name: "Cart → purchase", type: "bar", data: cats.map((c) => c.session_cart_to_purchase_rate), barMaxWidth: 22 },
        { name: "View → purchase", type: "line", symbolSize: 7, lineStyle: { width: 0 }, data: cats.map((c) => c.conversion_rate) },
      ],
    }, true);
    const rows = [...products.rows].sort((a, b) => b.view_sessions - a.view_sessions || (a.product_id < b.product_id ? -1 : 1));
    $('[data-role="product-conversion"] tbody', el).innerHTML = rows.map((p) => `
      <tr data-product="${esc(p.product_id)}"><td>${esc(p.product_id)}</td><td class="sub">${esc(p.category_code || "–")}</td>
      <td class="num">${fmtInt(p.view_sessions)}</td><td class="num">${rateCell(p.session_view_to_cart_rate)}</td>
      <td class="num">${rateCell(p.session_cart_to_purchase_rate)}</td><td class="num">${rateCell(p.conversion_rate)}</td></tr>`).join("");
    el.dataset.source = products.source;
    setTileState("conversion", "ready", categories.rows.length + products.rows.length);
  }

  // ------------------------------------------------------------------ top products & brands
  function renderTop(products, brands) {
    const el = tile("top");
    if (!products.rows.length) return setTileState("top", "empty", 0, "No product activity in this date range");
    const metric = state.metric;
    const fmt = metric === "revenue" ? (v) => fmtMoney(v) : fmtInt;
    const label = metric === "revenue" ? "Revenue" : "Product views";
    const ranked = [...products.rows].sort((a, b) => b[metric] - a[metric] || b.product_views - a.product_views).slice(0, 8);
    const max = Math.max(1, ...ranked.map((p) => p[metric]));
    $('[data-role="metric-head"]', el).textContent = label;
    $('[data-role="top-subtitle"]', el).textContent = `Ranked by ${label.toLowerCase()} · top 8 products, top brands`;
    $('[data-role="top-products"] tbody', el).innerHTML = ranked.map((p, i) => `
      <tr data-product="${esc(p.product_id)}"><td class="sub">${i + 1}</td>
      <td>${esc(p.product_id)}<div class="sub">${esc(p.category_code || "")}</div></td>
      <td>${esc(p.brand || "–")}</td><td class="num">${fmt(p[metric])}</td>
      <td><div class="bar" style="width:${((p[metric] / max) * 100).toFixed(1)}%"></div></td></tr>`).join("");
    const topBrands = [...brands.rows].sort((a, b) => b[metric] - a[metric]).slice(0, 8).reverse();
    chart($('[data-chart="brands"]', el)).setOption({
      ...baseOption(),
      legend: { show: false },
      title: { text: `Brands by ${label.toLowerCase()}`, left: 0, top: 0, textStyle: { fontSize: 12, fontWeight: 500, color: "#64708a" } },
      grid: { left: 8, right: 56, top: 26, bottom: 0, containLabel: true },
      tooltip: { ...baseOption().tooltip, formatter: (ps) => { const b = topBrands[ps[0].dataIndex]; return `<b>${esc(b.brand)}</b><br>Revenue: <b>${fmtMoney(b.revenue)}</b><br>Views: <b>${fmtInt(b.product_views)}</b><br>Conversion: <b>${fmtPct(b.conversion_rate)}</b>`; } },
      xAxis: { type: "value", ...axisStyle, axisLabel: { show: false } },
      yAxis: { type: "category", data: topBrands.map((b) => b.brand), ...axisStyle },
      series: [{ type: "bar", data: topBrands.map((b) => b[metric]), barMaxWidth: 14, itemStyle: { color: "#0d9488", borderRadius: [0, 3, 3, 0] },
        label: { show: true, position: "right", fontSize: 11, color: "#64708a", formatter: (p) => (metric === "revenue" ? fmtMoney(p.value, true) : fmtInt(p.value)) } }],
    }, true);
    setTileState("top", "ready", ranked.length + topBrands.length);
  }

  // ------------------------------------------------------------------ sessions & drop-off
  function renderSessions(dropoff, sessions) {
    const el = tile("sessions");
    const tot = sessions.totals;
    if (!tot.sessions) return setTileState("sessions", "empty", 0, "No sessions in this date range");
    const steps = dropoff.rows;
    chart($('[data-chart="dropoff"]', el)).setOption({
      ...baseOption(),
      title: { text: "Furthest funnel step before the session ended", left: 0, top: 0, textStyle: { fontSize: 12, fontWeight: 500, color: "#64708a" } },
      legend: { top: 18, left: 0, itemWidth: 12, itemHeight: 8, textStyle: { color: "#64708a", fontSize: 11 } },
      grid: { left: 8, right: 12, top: 48, bottom: 8, containLabel: true },
      tooltip: { ...baseOption().tooltip, formatter: (ps) => { const s = steps[ps[0].dataIndex]; return `<b>${esc(STEP_LABELS[s.funnel_step] || s.funnel_step)}</b><br>Sessions ended here: <b>${fmtInt(s.sessions_ended_at_step)}</b> (${fmtPct(s.share_of_sessions)})<br>Reached step: <b>${fmtInt(s.sessions_reached_step)}</b><br>Drop-off: <b>${fmtPct(s.drop_off_rate)}</b><br>Avg duration: <b>${fmtDuration(s.avg_duration_seconds)}</b> · avg events ${s.avg_events == null ? "–" : decFmt.format(s.avg_events)}`; } },
      xAxis: { type: "category", data: steps.map((s) => STEP_SHORT[s.funnel_step] || s.funnel_step), ...axisStyle, axisLabel: { ...axisStyle.axisLabel, interval: 0 } },
      yAxis: [{ type: "value", ...axisStyle }, { type: "value", max: 1, ...axisStyle, splitLine: { show: false }, axisLabel: { ...axisStyle.axisLabel, formatter: (v) => `${Math.round(v * 100)}%` } }],
      series: [
        { name: "Sessions ended at step", type: "bar", barMaxWidth: 34, data: steps.map((s) => ({ value: s.sessions_ended_at_step, itemStyle: { color: s.funnel_step === "purchase" ? "#0d9488" : "#818cf8", borderRadius: [3, 3, 0, 0] } })) },
        { name: "Drop-off rate", type: "line", yAxisIndex: 1, symbolSize: 7, itemStyle: { color: "#e11d48" }, data: steps.map((s) => s.drop_off_rate),
          label: { show: true, position: "top", fontSize: 10, color: "#e11d48", formatter: (p) => (p.value == null ? "" : fmtPct(p.value, 0)) } },
      ],
    }, true);
    chart($('[data-chart="duration"]', el)).setOption({
      ...baseOption(),
      legend: { show: false },
      title: { text: "Session duration · events per session", left: 0, top: 0, textStyle: { fontSize: 12, fontWeight: 500, color: "#64708a" } },
      grid: [{ left: 8, right: 8, top: 30, height: "36%", containLabel: true }, { left: 8, right: 8, top: "62%", bottom: 4, containLabel: true }],
      tooltip: { ...baseOption().tooltip, valueFormatter: (v) => `${fmtInt(v)} sessions` },
      xAxis: [
        { type: "category", gridIndex: 0, data: sessions.duration.map((b) => b.bucket), ...axisStyle, axisLabel: { ...axisStyle.axisLabel, interval: 0, fontSize: 10 } },
        { type: "category", gridIndex: 1, data: sessions.depth.map((b) => `${b.bucket} ev.`), ...axisStyle, axisLabel: { ...axisStyle.axisLabel, interval: 0, fontSize: 10 } },
      ],
      yAxis: [{ type: "value", gridIndex: 0, ...axisStyle, splitNumber: 2 }, { type: "value", gridIndex: 1, ...axisStyle, splitNumber: 2 }],
      series: [
        { name: "Duration", type: "bar", xAxisIndex: 0, yAxisIndex: 0, barMaxWidth: 30, itemStyle: { color: "#4f46e5", borderRadius: [3, 3, 0, 0] }, data: sessions.duration.map((b) => b.sessions) },
        { name: "Depth", type: "bar", xAxisIndex: 1, yAxisIndex: 1, barMaxWidth: 30, itemStyle: { color: "#f59e0b", borderRadius: [3, 3, 0, 0] }, data: sessions.depth.map((b) => b.sessions) },
      ],
    }, true);
    $('[data-role="channels"] tbody', el).innerHTML = sessions.channels.map((c) => `
      <tr data-channel="${esc(c.channel)}"><td>${esc(CHANNEL_LABELS[c.channel] || c.channel)}</td><td class="num">${fmtInt(c.sessions)}</td>
      <td class="num">${fmtInt(c.orders)}</td><td class="num">${fmtMoney(c.revenue)}</td><td class="num">${rateCell(c.conversion_rate)}</td></tr>`).join("");
    const devices = sessions.devices.map((d) => `${esc(d.device_class)} ${fmtPct(d.sessions / tot.sessions, 0)}`).join(" · ");
    $('[data-role="session-stats"]', el).innerHTML =
      `<strong>${fmtInt(tot.sessions)}</strong> sessions · avg <strong>${fmtDuration(tot.avg_duration_seconds)}</strong>` +
      ` (median ${fmtDuration(tot.median_duration_seconds)}) · <strong>${decFmt.format(tot.avg_pages || 0)}</strong> pages/session` +
      ` · bounce <strong>${fmtPct(tot.bounce_rate)}</strong><br><span>${devices}</span>`;
    el.dataset.source = dropoff.source;
    setTileState("sessions", "ready", steps.length + sessions.channels.length);
  }

  // ------------------------------------------------------------------ latest sessions
  function renderLatest(latest) {
    const el = tile("latest");
    const rows = latest.rows || [];
    $('[data-role="latest-sessions"] tbody', el).innerHTML = rows.map((r) => `
      <tr data-session-id="${esc(r.session_id)}" data-device-key="${esc(r.device_key)}">
        <td>${esc((r.session_end_at || "").replace("T", " ").slice(0, 19))}</td>
        <td class="ellipsis" title="${esc(r.device_key)}">${esc(r.device_key)}</td>
        <td>${esc(CHANNEL_LABELS[r.channel] || r.channel || "–")}</td>
        <td>${esc(r.device_class || "–")}</td>
        <td class="num">${fmtInt(r.events)}</td>
        <td>${esc(STEP_LABELS[r.furthest_funnel_step] || r.furthest_funnel_step || "–")}</td>
        <td class="num">${fmtMoney(r.revenue)}</td>
      </tr>`).join("");
    if (!rows.length) return setTileState("latest", "empty", 0, "No sessions yet");
    setTileState("latest", "ready", rows.length);
  }

  // ------------------------------------------------------------------ freshness and live refresh
  // The header says how fresh the marts are. Every REFRESH seconds (?refresh=N, 0 = never) the
  // page asks again; when dbt has built since the page loaded, it reloads every tile, moving a
  // range that ended on the last day of data along to the new last day.
  const REFRESH_SECONDS = Number(new URLSearchParams(location.search).get("refresh") ?? 30);
  let lastBuild = null;
  const ago = (iso, now) => {
    const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
    return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : s < 172800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} days ago`;
  };
  const clockUtc = (iso) => new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC";

  async function checkFreshness() {
    const el = $("#freshness");
    let f;
    try {
      const res = await fetch("/api/freshness", { headers: { Accept: "application/json" } });
      f = await res.json();
      if (!res.ok) throw new Error(f.error || `HTTP ${res.status}`);
    } catch (e) {
      el.dataset.state = "busy"; // usually dbt or the loader writing: keep what is shown
      el.title = e.message;
      return false;
    }
    el.dataset.state = "ready";
    el.dataset.lastBuild = f.last_dbt_build || "";
    el.textContent = [
      f.newest_event ? `Newest event ${clockUtc(f.newest_event)} (${ago(f.newest_event, f.now)})` : "No events yet",
      f.last_dbt_build ? `dbt built ${ago(f.last_dbt_build, f.now)}` : null,
    ].filter(Boolean).join(" · ");
    const changed = lastBuild !== null && f.last_dbt_build !== lastBuild;
    lastBuild = f.last_dbt_build;
    return changed;
  }

  async function refreshIfBuilt() {
    if (!(await checkFreshness())) return;
    let range;
    try {
      range = await (await fetch("/api/date-range")).json();
    } catch (_) {
      return;
    }
    if (!range.min) return;
    const followed = state.to === state.max;
    const from = state.from === state.min ? range.min : state.from;
    state.min = range.min;
    state.max = range.max;
    for (const id of ["#date-from", "#date-to"]) { $(id).min = range.min; $(id).max = range.max; }
    $("#data-span").textContent = `Data from ${fmtDateLong(range.min)} to ${fmtDateLong(range.max)} · ${range.days} days · UTC`;
    setRange(from, followed ? range.max : state.to);
    await loadAll();
  }

  // ------------------------------------------------------------------ loading
  const TILES = ["traffic", "funnel", "conversion", "top", "latest", "sessions"];

  async function loadAll() {
    const seq = ++state.seq;
    writeHash();
    markPreset();
    for (const name of TILES) tile(name).dataset.state = "loading";
    $("#kpis").dataset.state = "loading";
    const req = {
      summary: api("/api/summary"),
      traffic: api("/api/traffic"),
      funnel: api("/api/funnel"),
      products: api("/api/products"),
      categories: api("/api/categories", { level: state.level }),
      brands: api("/api/brands"),
      dropoff: api("/api/dropoff"),
      sessions: api("/api/sessions"),
      latest: api("/api/recent-sessions"),
    };
    const settled = {};
    await Promise.all(Object.entries(req).map(async ([k, p]) => {
      try { settled[k] = { ok: true, value: await p }; } catch (e) { settled[k] = { ok: false, error: e }; }
    }));
    if (seq !== state.seq) return; // a newer range was requested meanwhile
    state.data = Object.fromEntries(Object.entries(settled).filter(([, v]) => v.ok).map(([k, v]) => [k, v.value]));
    const errors = Object.values(settled).filter((v) => !v.ok).map((v) => v.error.message);
    showBanner(errors.length ? `Could not load all data: ${[...new Set(errors)].join(" · ")}` : "");

    const run = (name, needs, fn) => {
      const missing = needs.find((k) => !settled[k].ok);
      if (missing) return setTileState(name, "error", 0, settled[missing].error.message);
      try { fn(...needs.map((k) => settled[k].value)); } catch (e) {
        console.error(e);
        setTileState(name, "error", 0, `Render error: ${e.message}`);
      }
    };
    if (settled.summary.ok) { renderKpis(settled.summary.value); $("#kpis").dataset.state = "ready"; }
    else $("#kpis").dataset.state = "error";
    run("traffic", ["traffic"], renderTraffic);
    run("funnel", ["funnel"], renderFunnel);
    run("conversion", ["categories", "products"], renderConversion);
    run("top", ["products", "brands"], renderTop);
    run("sessions", ["dropoff", "sessions"], renderSessions);
    run("latest", ["latest"], renderLatest);
    document.body.dataset.loaded = String(seq);
  }

  async function reloadCategories() {
    try {
      const categories = await api("/api/categories", { level: state.level });
      state.data.categories = categories;
      renderConversion(categories, state.data.products);
    } catch (e) {
      setTileState("conversion", "error", 0, e.message);
    }
  }

  // ------------------------------------------------------------------ date filter
  function setRange(from, to) {
    if (state.min && from < state.min) from = state.min;
    if (state.max && to > state.max) to = state.max;
    if (from > to) [from, to] = [to, from];
    state.from = from;
    state.to = to;
    $("#date-from").value = from;
    $("#date-to").value = to;
  }

  function markPreset() {
    document.querySelectorAll("[data-preset]").forEach((b) => {
      const p = b.dataset.preset;
      // a preset longer than the data is the same as "All": only "All" lights up then
      const start = p === "all" ? state.min : addDays(state.max, 1 - Number(p));
      const active = state.to === state.max && state.from === start && start >= state.min;
      b.classList.toggle("active", active);
    });
  }
  const maxOf = (a, b) => (a > b ? a : b);

  function writeHash() {
    history.replaceState(null, "", `#from=${state.from}&to=${state.to}`);
  }

  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    const ok = (v) => /^\d{4}-\d{2}-\d{2}$/.test(v || "");
    return ok(h.get("from")) && ok(h.get("to")) ? [h.get("from"), h.get("to")] : null;
  }

  function wireControls() {
    $("#filters").addEventListener("submit", (e) => {
      e.preventDefault();
      const from = $("#date-from").value;
      const to = $("#date-to").value;
      if (!from || !to) return;
      setRange(from, to);
      loadAll();
    });
    document.querySelectorAll("[data-preset]").forEach((b) => b.addEventListener("click", () => {
      const p = b.dataset.preset;
      setRange(p === "all" ? state.min : maxOf(state.min, addDays(state.max, 1 - Number(p))), state.max);
      loadAll();
    }));
    document.querySelectorAll("[data-level]").forEach((b) => b.addEventListener("click", () => {
      state.level = b.dataset.level;
      document.querySelectorAll("[data-level]").forEach((x) => x.classList.toggle("active", x === b));
      reloadCategories();
    }));
    document.querySelectorAll("[data-metric]").forEach((b) => b.addEventListener("click", () => {
      state.metric = b.dataset.metric;
      document.querySelectorAll("[data-metric]").forEach((x) => x.classList.toggle("active", x === b));
      if (state.data.products && state.data.brands) renderTop(state.data.products, state.data.brands);
    }));
    let timer = null;
    window.addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(() => charts.forEach((c) => c.resize()), 120);
    });
  }

  async function init() {
    if (!window.echarts) {
      showBanner("The chart library is missing (dashboard/web/vendor/echarts.min.js): run `bash dashboard/scripts/build.sh`.");
      TILES.forEach((t) => setTileState(t, "error", 0, "Chart library missing"));
      return;
    }
    wireControls();
    let range;
    try {
      range = await (await fetch("/api/date-range")).json();
      if (range.error) throw new Error(range.error);
    } catch (e) {
      showBanner(`Warehouse unavailable: ${e.message}`);
      TILES.forEach((t) => setTileState(t, "error", 0, "Warehouse unavailable"));
      if (REFRESH_SECONDS > 0) setTimeout(() => location.reload(), REFRESH_SECONDS * 1000);
      return;
    }
    if (!range.min) {
      showBanner("The warehouse has no data yet: load events and run dbt.");
      TILES.forEach((t) => setTileState(t, "empty", 0, "No data in the warehouse"));
      if (REFRESH_SECONDS > 0) setTimeout(() => location.reload(), REFRESH_SECONDS * 1000);
      return;
    }
    state.min = range.min;
    state.max = range.max;
    for (const id of ["#date-from", "#date-to"]) { $(id).min = range.min; $(id).max = range.max; }
    $("#data-span").textContent = `Data from ${fmtDateLong(range.min)} to ${fmtDateLong(range.max)} · ${range.days} days · UTC`;
    const fromHash = readHash();
    setRange(...(fromHash || [range.min, range.max]));
    await checkFreshness();
    await loadAll();
    if (REFRESH_SECONDS > 0) setInterval(refreshIfBuilt, REFRESH_SECONDS * 1000);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
