// The tracking page's live part. The server renders the whole page; this script
// draws the map (Leaflet, with roads from our own graph unless a tile URL is
// configured), opens /t/{code}/ws and keeps the status, progress, ETA, truck,
// stops and timeline current. It reconnects with backoff and resumes from the
// fresh snapshot every connection starts with.
(function () {
  'use strict';
  var dataEl = document.getElementById('track-data');
  if (!dataEl) { return; }
  var boot = JSON.parse(dataEl.textContent);
  var track = boot.track;
  var code = location.pathname.split('/')[2];
  var STEPS_LABELS = {
    created: 'Created', dispatched: 'Dispatched', at_pickup: 'At pickup',
    picked_up: 'Picked up, in transit', out_for_delivery: 'Out for delivery',
    at_delivery: 'At delivery', delivered: 'Delivered', cancelled: 'Cancelled'
  };
  var REASONS = {
    traffic: 'traffic on the route', hos_break: 'a required driver rest break',
    dwell: 'time at earlier stops', window_wait: 'waiting for the delivery appointment'
  };

  function byId(id) { return document.getElementById(id); }

  function nextStop() {
    var i = track.next_stop_index;
    return (i === null || i === undefined) ? null : track.stops[i];
  }

  // "Tue 25 Nov, 14:05 EST" in the stop's own time zone (as the server writes it).
  function localLabel(iso, tz) {
    try {
      var parts = {};
      new Intl.DateTimeFormat('en-US', {
        timeZone: tz || 'UTC', weekday: 'short', day: 'numeric', month: 'short',
        hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short'
      }).formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
      return parts.weekday + ' ' + parts.day + ' ' + parts.month + ', ' + parts.hour + ':' +
        parts.minute + ' ' + parts.timeZoneName;
    } catch (e) {
      return new Date(iso).toUTCString();
    }
  }

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 90) { return s + ' s'; }
    if (s < 5400) { return Math.round(s / 60) + ' min'; }
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }

  function ensure(parent, tag, id, cls) {
    var el = byId(id);
    if (!el && parent) {
      el = document.createElement(tag);
      el.id = id;
      if (cls) { el.className = cls; }
      parent.appendChild(el);
    }
    return el;
  }

  function renderStatus() {
    var el = byId('status');
    setText(el, STEPS_LABELS[track.status] || track.status);
    if (el) { el.setAttribute('data-status', track.status); }
    document.title = 'Shipment ' + track.reference + ' · ' + (STEPS_LABELS[track.status] || track.status);
    var items = document.querySelectorAll('#progress li');
    for (var i = 0; i < items.length; i++) {
      var cancelled = track.status === 'cancelled';
      items[i].className = cancelled ? '' : (i < track.progress.reached ? 'done' : (i === track.progress.reached ? 'current' : ''));
      if (!cancelled && i === track.progress.reached) { items[i].setAttribute('aria-current', 'step'); }
      else { items[i].removeAttribute('aria-current'); }
    }
  }

  function renderEta() {
    var section = byId('eta');
    if (!section) { return; }
    var eta = track.eta;
    var stop = nextStop();
    var timeEl = ensure(section, 'p', 'eta-time', 'big');
    if (!eta || !stop) {
      return;
    }
    var tz = stop.time_zone;
    timeEl.innerHTML = '';
    var t = document.createElement('time');
    t.setAttribute('datetime', eta.at);
    t.textContent = localLabel(eta.at, tz);
    timeEl.appendChild(t);
    setText(ensure(section, 'p', 'eta-window'),
      'Most likely between ' + localLabel(eta.p10, tz) + ' and ' + localLabel(eta.p90, tz));
    var reasons = ensure(section, 'p', 'eta-reasons');
    setText(reasons, eta.reasons && eta.reasons.length
      ? 'Includes ' + eta.reasons.map(function (r) { return REASONS[r] || r; }).join(', ') + '.' : '');
    var wrap = ensure(section, 'p', 'eta-updated-wrap', 'muted');
    var upd = byId('eta-updated');
    if (!upd) { upd = document.createElement('span'); upd.id = 'eta-updated'; wrap.appendChild(upd); }
    upd.setAttribute('data-at', eta.updated_at);
    tick();
  }

  function renderTimeline() {
    var list = byId('timeline');
    if (!list) { return; }
    list.innerHTML = '';
    track.events.slice().reverse().forEach(function (e) {
      var li = document.createElement('li');
      li.className = e.kind;
      var stop = (e.stop_index !== null && e.stop_index !== undefined) ? track.stops[e.stop_index] : track.stops[0];
      var t = document.createElement('time');
      t.setAttribute('datetime', e.at);
      t.textContent = localLabel(e.at, stop && stop.time_zone);
      var strong = document.createElement('strong');
      strong.textContent = e.kind === 'status' ? (e.label || e.status) : (e.kind === 'exception' ? 'Exception' : 'Note');
      li.appendChild(t);
      li.appendChild(document.createTextNode(' '));
      li.appendChild(strong);
      if (e.note) { var p = document.createElement('p'); p.textContent = e.note; li.appendChild(p); }
      list.appendChild(li);
    });
  }

  function tick() {
    var upd = byId('eta-updated');
    if (upd && upd.getAttribute('data-at')) { setText(upd, 'updated ' + ago(upd.getAttribute('data-at')) + ' ago'); }
    var veh = byId('vehicle-text');
    if (veh && track.vehicle) { setText(veh, 'Last position reported ' + ago(track.vehicle.at) + ' ago.'); }
  }

  // ---- map ----
  var map = null, truck = null, routeLine = null, roads = null, roadsTimer = null, fitted = false;
  var ROAD_WEIGHT = { motorway: 4, trunk: 3.5, primary: 3, secondary: 2.5, tertiary: 2 };

  function initMap() {
    var el = byId('map');
    if (!el || typeof L === 'undefined' || map) { return; }
    map = L.map(el, { preferCanvas: true, zoomControl: true });
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution('© OpenStreetMap contributors');
    if (boot.tile_url) {
      L.tileLayer(boot.tile_url, { maxZoom: 19 }).addTo(map);
    } else {
      roads = L.geoJSON(null, {
        interactive: false,
        style: function (f) {
          var c = (f.properties && f.properties['class']) || '';
          var base = c.replace('_link', '');
          return { color: ROAD_WEIGHT[base] ? '#9aa4b1' : '#c5ccd6', weight: ROAD_WEIGHT[base] || 1.2, opacity: 1 };
        }
      }).addTo(map);
      map.on('moveend', function () { clearTimeout(roadsTimer); roadsTimer = setTimeout(loadRoads, 150); });
    }
    track.stops.forEach(function (s) {
      L.marker([s.lat, s.lon], {
        icon: L.divIcon({ className: 'stop-marker ' + s.kind, html: s.kind === 'pickup' ? 'P' : 'D', iconSize: [24, 24] }),
        title: (s.kind === 'pickup' ? 'Pickup: ' : 'Delivery: ') + s.name, keyboard: false
      }).addTo(map);
    });
    renderMap();
  }

  function loadRoads() {
    if (!map || !roads) { return; }
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (x) { return x.toFixed(5); }).join(',');
    var detail = map.getZoom() < 14 ? 'major' : 'all';
    fetch('/api/v1/map/roads?bbox=' + bbox + '&detail=' + detail)
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { roads.clearLayers(); roads.addData(data); } })
      .catch(function () {});
  }

  function renderMap() {
    if (!map) { return; }
    var v = track.live ? track.vehicle : null;
    if (v) {
      if (!truck) {
        truck = L.marker([v.lat, v.lon], {
          icon: L.divIcon({ className: 'truck-marker', html: '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="#fff" d="M2 6h12v10H2zM14 9h4.5L22 12.5V16h-8z"/><circle cx="6" cy="17.5" r="2" fill="#fff" stroke="#14213d"/><circle cx="17" cy="17.5" r="2" fill="#fff" stroke="#14213d"/></svg>', iconSize: [30, 30] }),
          title: 'Truck', alt: 'Truck', keyboard: false, zIndexOffset: 1000
        }).addTo(map);
      } else {
        truck.setLatLng([v.lat, v.lon]);
      }
    } else if (truck) {
      map.removeLayer(truck);
      truck = null;
    }
    var route = (track.eta && track.eta.route) || [];
    var latlngs = route.map(function (p) { return [p[1], p[0]]; });
    if (latlngs.length > 1) {
      if (!routeLine) { routeLine = L.polyline(latlngs, { color: '#1f6feb', weight: 5, opacity: 0.8 }).addTo(map); }
      else { routeLine.setLatLngs(latlngs); }
    } else if (routeLine) {
      map.removeLayer(routeLine);
      routeLine = null;
    }
    if (!fitted) {
      var pts = track.stops.map(function (s) { return [s.lat, s.lon]; });
      if (v) { pts.push([v.lat, v.lon]); }
      map.fitBounds(L.latLngBounds(pts).pad(0.15), { maxZoom: 15 });
      fitted = true;
      loadRoads();
    }
  }

  function apply(next) {
    var wasDelivered = !!track.delivered_at;
    var wasLive = track.live;
    track = next;
    if (!wasDelivered && (track.delivered_at || track.status === 'cancelled') || wasLive !== track.live) {
      // The page changes shape (delivery record, map shown or hidden): the server
      // renders that best.
      location.reload();
      return;
    }
    renderStatus();
    renderEta();
    renderTimeline();
    renderMap();
    tick();
  }

  // ---- live connection ----
  var socket = null, backoffMs = 1000, lastMessage = 0, liveEl = null;

  function setLive(text, ok) {
    if (!liveEl) {
      var header = document.querySelector('header.top .wrap');
      if (!header) { return; }
      liveEl = document.createElement('p');
      liveEl.id = 'live';
      liveEl.setAttribute('aria-live', 'polite');
      header.appendChild(liveEl);
    }
    liveEl.className = ok ? 'live ok' : 'live';
    setText(liveEl, text);
  }

  function connect() {
    if (track.status === 'delivered' || track.status === 'cancelled') { return; }
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(proto + '//' + location.host + '/t/' + code + '/ws');
    socket.onopen = function () { backoffMs = 1000; setLive('Live', true); };
    socket.onmessage = function (ev) {
      lastMessage = Date.now();
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === 'snapshot') { apply(msg); }
      else if (msg.type === 'position') { track.vehicle = msg.vehicle; renderMap(); tick(); }
      else if (msg.type === 'eta') {
        if (msg.eta.stop_index === track.next_stop_index) { track.eta = msg.eta; renderEta(); renderMap(); }
      }
      else if (msg.type === 'status') { apply(msg.track); }
    };
    socket.onclose = function (ev) {
      socket = null;
      if (ev.code === 4404) { setLive('This tracking link is no longer valid.', false); return; }
      setLive('Reconnecting…', false);
      var wait = backoffMs * (0.75 + Math.random() / 2);
      backoffMs = Math.min(backoffMs * 2, 30000);
      setTimeout(connect, wait);
    };
  }

  // A connection that went quiet (no heartbeat for a minute) is dead: replace it.
  setInterval(function () {
    tick();
    if (socket && socket.readyState === 1 && lastMessage && Date.now() - lastMessage > 60000) { socket.close(); }
  }, 1000);

  initMap();
  renderEta();
  connect();
})();
