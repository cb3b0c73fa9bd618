// The tracking page's live part. The server renders the whole page; this script
// speaks the page's language (every word from the messages in its data script);
// draws the map (Leaflet, with our own vector basemap from basemap.js, or the
// roads from our own graph if its tiles fail, unless a tile URL is
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
  // The page's language: its messages (the server's message file, so both
  // say the same words), month names, clock and the names of each stop
  // zone's offsets.
  var I18N = boot.i18n || { messages: {}, zones: {} };
  var MONTHS = (I18N.messages['fmt.months'] || '').split(' ');
  var CLOCK12 = I18N.messages['fmt.clock'] === '12';

  // A message, its {name} placeholders filled from vars.
  function t(key, vars) {
    var text = I18N.messages[key];
    if (text === undefined) { return key; }
    return !vars ? text : text.replace(/\{(\w+)\}/g, function (m, name) {
      return vars[name] !== undefined ? String(vars[name]) : m;
    });
  }

  function statusText(status) {
    var text = I18N.messages['status.' + status];
    return text === undefined ? status : text;
  }

  function reasonText(r) {
    var text = I18N.messages['reason.' + r];
    return text === undefined ? t('reason.other') : text;
  }

  function byId(id) { return document.getElementById(id); }

  function nextStop() {
    var i = track.next_stop_index;
    return (i === null || i === undefined) ? null : track.stops[i];
  }

  // "Pickup: Acme DC" / "Delivery 2 of 3: Store 12", as the server writes it.
  function stopTitle(s) {
    var same = track.stops.filter(function (x) { return x.kind === s.kind; });
    var kind = t(s.kind === 'pickup' ? 'stop.pickup' : 'stop.delivery');
    if (same.length > 1) {
      return t('stop.title_nth', { kind: kind, nth: same.indexOf(s) + 1, total: same.length, name: s.name });
    }
    return t('stop.title', { kind: kind, name: s.name });
  }

  function verdictText(s) {
    if (s.verdict === 'late') { return t('stop.late_by', { n: s.late_by_min || 0 }); }
    if (s.verdict === 'early') { return t('stop.early'); }
    if (s.verdict === 'on_time') { return t('stop.on_time'); }
    return '';
  }

  // The stop list, rebuilt from the JSON on every change (state, times, verdict
  // and the ETA of every stop still ahead).
  function renderStops() {
    var list = byId('stops');
    if (!list) { return; }
    list.innerHTML = '';
    track.stops.forEach(function (s, i) {
      var li = document.createElement('li');
      var state = s.state || (s.departed_at ? 'departed' : (s.arrived_at ? 'arrived' : 'pending'));
      li.className = 'stop ' + s.kind + ' ' + state + (i === track.next_stop_index ? ' next' : '');
      li.setAttribute('data-state', state);
      var h = document.createElement('h3');
      h.textContent = stopTitle(s);
      li.appendChild(h);
      var badge = document.createElement('p');
      badge.className = 'stop-state';
      var label = i === track.next_stop_index && state === 'pending' ? t('stop.next') : t('stop.' + state);
      var verdict = verdictText(s);
      badge.textContent = verdict ? label + ' · ' + verdict : label;
      li.appendChild(badge);
      if (s.address) { var a = document.createElement('p'); a.className = 'address'; a.textContent = s.address; li.appendChild(a); }
      if (s.window && s.window.from) {
        var w = document.createElement('p');
        w.appendChild(document.createTextNode(t('stop.appointment') + ' '));
        var span = document.createElement('span'); span.className = 'window'; span.textContent = windowLabel(s.window, s.time_zone);
        w.appendChild(span);
        li.appendChild(w);
      }
      [['stop.arrived', s.arrived_at], ['stop.departed', s.departed_at], ['stop.skipped', s.skipped_at]].forEach(function (pair) {
        if (!pair[1]) { return; }
        var p = document.createElement('p');
        p.appendChild(document.createTextNode(t(pair[0]) + ' '));
        var when = document.createElement('time'); when.setAttribute('datetime', pair[1]); when.textContent = localLabel(pair[1], s.time_zone);
        p.appendChild(when);
        li.appendChild(p);
      });
      var eta = s.eta || (i === track.next_stop_index ? track.eta : null);
      if (state === 'pending' && eta && eta.at) {
        var e = document.createElement('p');
        e.className = 'stop-eta';
        var late = eta.overdue || Date.parse(eta.at) < Date.now();
        e.appendChild(document.createTextNode(t(late ? 'stop.overdue_expected' : 'stop.estimated_arrival') + ' '));
        var et = document.createElement('time'); et.setAttribute('datetime', eta.at); et.textContent = localLabel(eta.at, s.time_zone);
        e.appendChild(et);
        li.appendChild(e);
      }
      list.appendChild(li);
    });
  }

  // Whether positions still arrive: "live", "stale" (none for --stale-after-s)
  // or "none" (never). The age is counted on from the last fix's time.
  function feedState() {
    var f = track.feed;
    if (!f) { return { state: 'live', at: track.vehicle ? track.vehicle.at : null }; }
    var state = f.state;
    // The server's verdict is as of its last message; a feed that falls silent
    // sends none, so the page ages it itself with the server's threshold.
    if (state === 'live' && f.last_fix_at && f.stale_after_s &&
        Date.now() - Date.parse(f.last_fix_at) > f.stale_after_s * 1000) {
      state = 'stale';
    }
    return { state: state, at: f.last_fix_at };
  }

  function renderFeed() {
    var f = feedState();
    var el = byId('feed-text');
    var section = byId('eta');
    if (section) { section.classList.toggle('stale', f.state === 'stale'); }
    if (!socketOpen) { return; }
    if (f.state === 'stale') {
      setLive(t('live.stale', { ago: ago(f.at) }), false);
    } else if (f.state === 'none') {
      setLive(t('live.waiting'), false);
    } else {
      setLive(t('live.live'), true);
    }
    if (el) {
      setText(el, f.state === 'stale' ? t('live.stale_estimate', { ago: ago(f.at) }) : '');
    }
  }

  function pad2(n) { return (n < 10 ? '0' : '') + n; }

  // The parts of a time in zone tz: numbers from the browser, the zone's name
  // from the server's table by offset (browsers name many zones "GMT+1").
  function zoneParts(iso, tz) {
    var d = new Date(iso), p = {};
    try {
      new Intl.DateTimeFormat('en-US', {
        timeZone: tz || 'UTC', year: 'numeric', month: 'numeric', day: 'numeric',
        hour: 'numeric', minute: 'numeric', hourCycle: 'h23', timeZoneName: 'short'
      }).formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    } catch (e) {
      p = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
        hour: d.getUTCHours(), minute: d.getUTCMinutes(), timeZoneName: 'UTC' };
      tz = 'UTC';
    }
    var hour = Number(p.hour) % 24, minute = Number(p.minute);
    var local = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), hour, minute);
    var offset = Math.round((local - Math.floor(d.getTime() / 60000) * 60000) / 60000);
    var names = I18N.zones[tz] || {};
    return {
      date: p.year + '-' + p.month + '-' + p.day, month: MONTHS[Number(p.month) - 1] || p.month,
      day: Number(p.day), hour: hour, minute: minute, zone: names[String(offset)] || p.timeZoneName
    };
  }

  // "2:30 PM" on a 12-hour clock, "14:30" on a 24-hour one.
  function clock(p) {
    if (CLOCK12) {
      return (p.hour % 12 || 12) + ':' + pad2(p.minute) + ' ' + t(p.hour < 12 ? 'fmt.am' : 'fmt.pm');
    }
    return pad2(p.hour) + ':' + pad2(p.minute);
  }

  // A time in the stop's own zone, as the server writes it
  // ("Mar 4, 2:30 PM EST", "4 mar 14:30 CET").
  function localLabel(iso, tz) {
    var p = zoneParts(iso, tz);
    return t('fmt.time', { month: p.month, day: p.day, clock: clock(p), zone: p.zone });
  }

  // A window: one date and zone when both ends share them, else both in full.
  function windowLabel(w, tz) {
    var a = zoneParts(w.from, tz), b = zoneParts(w.to, tz);
    if (a.date === b.date && a.zone === b.zone) {
      return t('fmt.window_day', { month: a.month, day: a.day, from: clock(a), to: clock(b), zone: b.zone });
    }
    return t('fmt.window_span', { from: localLabel(w.from, tz), to: localLabel(w.to, tz) });
  }

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 90) { return t('fmt.seconds', { n: s }); }
    if (s < 5400) { return t('fmt.minutes', { n: Math.round(s / 60) }); }
    return t('fmt.hours_minutes', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
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

  // The furthest step shown so far: the indicator never goes back, whatever a
  // late or reordered message says (the server's own figure only moves forward
  // too; this guards the page against an older snapshot after a reconnect).
  var maxReached = track.progress ? track.progress.reached : 0;

  function renderStatus() {
    if (track.progress) {
      maxReached = Math.max(maxReached, track.progress.reached);
      track.progress.reached = maxReached;
    }
    var el = byId('status');
    setText(el, statusText(track.status));
    if (el) { el.setAttribute('data-status', track.status); }
    var brandName = byId('brand-name');
    document.title = t('page.title', { reference: track.reference, status: statusText(track.status) }) +
      (brandName ? ' · ' + brandName.textContent : '');
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
    var heading = byId('eta-h');
    if (heading && stop) { setText(heading, t('page.eta_at', { stop: stopTitle(stop) })); }
    var timeEl = ensure(section, 'p', 'eta-time', 'big');
    if (!eta || !stop) {
      return;
    }
    var tz = stop.time_zone;
    timeEl.innerHTML = '';
    var overdue = eta.overdue || Date.parse(eta.at) < Date.now();
    if (overdue) {
      timeEl.appendChild(document.createTextNode(t('stop.overdue_expected') + ' '));
    }
    var when = document.createElement('time');
    when.setAttribute('datetime', eta.at);
    when.textContent = localLabel(eta.at, tz);
    timeEl.appendChild(when);
    timeEl.className = overdue ? 'big overdue' : 'big';
    setText(ensure(section, 'p', 'eta-window'), overdue
      ? t('page.eta_overdue')
      : t('page.eta_window', { from: localLabel(eta.p10, tz), to: localLabel(eta.p90, tz) }));
    var reasons = ensure(section, 'p', 'eta-reasons');
    setText(reasons, eta.reasons && eta.reasons.length
      ? t('page.eta_reasons', { reasons: eta.reasons.map(reasonText).join(t('fmt.list_separator')) }) : '');
    ensure(section, 'p', 'feed-text', 'muted feed');
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
      var when = document.createElement('time');
      when.setAttribute('datetime', e.at);
      when.textContent = localLabel(e.at, stop && stop.time_zone);
      var strong = document.createElement('strong');
      strong.textContent = e.kind === 'status' ? (e.status ? statusText(e.status) : t('page.update'))
        : t(e.kind === 'exception' ? 'page.exception' : 'page.note');
      li.appendChild(when);
      li.appendChild(document.createTextNode(' '));
      li.appendChild(strong);
      if (e.note) { var p = document.createElement('p'); p.textContent = e.note; li.appendChild(p); }
      list.appendChild(li);
    });
  }

  function tick() {
    var upd = byId('eta-updated');
    if (upd && upd.getAttribute('data-at')) { setText(upd, t('page.updated_ago', { ago: ago(upd.getAttribute('data-at')) })); }
    var veh = byId('vehicle-text');
    if (veh && track.vehicle) {
      setText(veh, t('map.last_position', { ago: ago(track.vehicle.at) }) +
        (track.vehicle.approximate ? ' ' + t('map.approximate_note') : ''));
    }
    renderFeed();
  }

  // ---- map ----
  // The view fits the truck and the stops still ahead and follows the truck as
  // it drives, until the viewer pans or zooms the map themselves. Stop markers
  // carry their number in the order and their state.
  var map = null, truck = null, routeLine = null, drivenLine = null, roads = null, roadsTimer = null, fitted = false;
  var truckKey = '', lastExact = null, lastHeading = null;
  var brandEl = document.querySelector('.brand');
  var BRAND = (brandEl && getComputedStyle(brandEl).getPropertyValue('--brand').trim()) || '#14213d';
  var stopMarkers = [], viewerMoved = false, programmatic = false, lastRoadsKey = '';
  var ROAD_WEIGHT = { motorway: 4, trunk: 3.5, primary: 3, secondary: 2.5, tertiary: 2 };

  function initMap() {
    var el = byId('map');
    if (!el || typeof L === 'undefined' || map) { return; }
    map = L.map(el, { preferCanvas: true, zoomControl: false });
    // Leaflet's own zoom buttons, with their names in the page's language.
    L.control.zoom({ zoomInTitle: t('map.zoom_in'), zoomOutTitle: t('map.zoom_out') }).addTo(map);
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution(t('map.attribution_short'));
    // A provider's raster tiles when configured; else our own vector tiles
    // (basemap.js), falling back to the roads' GeoJSON when tiles fail.
    if (boot.tile_url) {
      L.tileLayer(boot.tile_url, { maxZoom: 19 }).addTo(map);
      el.setAttribute('data-basemap', 'raster');
    } else if (window.TrackBasemap) {
      window.TrackBasemap.layer(drawRoads).addTo(map);
    } else {
      drawRoads();
    }
    map.on('moveend', function () {
      programmatic = false;
      if (roads) { clearTimeout(roadsTimer); roadsTimer = setTimeout(loadRoads, 150); }
    });
    // Only the viewer drags; a zoom is the viewer's unless we started it.
    map.on('dragstart', function () { viewerMoved = true; });
    map.on('zoomstart', function () { if (!programmatic) { viewerMoved = true; } });
    stopMarkers = track.stops.map(function (s, i) {
      return L.marker([s.lat, s.lon], {
        icon: stopIcon(s, i), title: stopTitle(s), keyboard: false
      }).addTo(map);
    });
    renderMap();
  }

  function stopState(s) {
    return s.state || (s.departed_at ? 'departed' : (s.arrived_at ? 'arrived' : 'pending'));
  }

  function stopIcon(s, i) {
    return L.divIcon({
      className: 'stop-marker ' + s.kind + ' ' + stopState(s) + (i === track.next_stop_index ? ' next' : ''),
      html: String(i + 1), iconSize: [24, 24]
    });
  }

  function drawRoads() {
    if (!map || roads) { return; }
    map.getContainer().setAttribute('data-basemap', 'roads');
    roads = L.geoJSON(null, {
      interactive: false,
      style: function (f) {
        var c = (f.properties && f.properties['class']) || '';
        var base = c.replace('_link', '');
        return { color: ROAD_WEIGHT[base] ? '#9aa4b1' : '#c5ccd6', weight: ROAD_WEIGHT[base] || 1.2, opacity: 1 };
      }
    }).addTo(map);
    // Now if the map has its view, else as soon as it has one.
    map.whenReady(loadRoads);
  }

  function loadRoads() {
    if (!map || !roads) { return; }
    var b = map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (x) { return x.toFixed(5); }).join(',');
    var detail = map.getZoom() < 14 ? 'major' : 'all';
    var key = bbox + '|' + detail;
    if (key === lastRoadsKey) { return; }
    lastRoadsKey = key;
    fetch('/api/v1/map/roads?bbox=' + bbox + '&detail=' + detail)
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { roads.clearLayers(); roads.addData(data); } })
      .catch(function () { lastRoadsKey = ''; });
  }

  // The truck and the stops still ahead (all stops before the truck reports).
  function storyPoints(v) {
    var pts = track.stops.filter(function (s) {
      var st = stopState(s);
      return !v || (st !== 'departed' && st !== 'skipped');
    }).map(function (s) { return [s.lat, s.lon]; });
    if (v) { pts.push([v.lat, v.lon]); }
    return pts;
  }

  function fitStory(v) {
    var pts = storyPoints(v);
    if (!pts.length) { return; }
    programmatic = true;
    map.fitBounds(L.latLngBounds(pts).pad(0.15), { maxZoom: 15, animate: fitted });
    fitted = true;
  }

  // Initial bearing from a to b ([lat, lon]), degrees clockwise from north.
  function bearing(a, b) {
    var r = Math.PI / 180, la1 = a[0] * r, la2 = b[0] * r, dl = (b[1] - a[1]) * r;
    var y = Math.sin(dl) * Math.cos(la2);
    var x = Math.cos(la1) * Math.sin(la2) - Math.sin(la1) * Math.cos(la2) * Math.cos(dl);
    return (Math.atan2(y, x) / r + 360) % 360;
  }

  // The heading to draw: the server's (the fix's own, or from the trail),
  // else the bearing from the last exact position we drew when the truck
  // moved enough to tell, else the last one known. None for an area.
  function headingOf(v) {
    if (v.approximate) { lastExact = null; return null; }
    var h = typeof v.heading_deg === 'number' ? v.heading_deg : null;
    if (h === null && lastExact && L.latLng(lastExact).distanceTo([v.lat, v.lon]) >= 15) {
      h = bearing(lastExact, [v.lat, v.lon]);
    }
    if (h === null) { h = lastHeading; }
    if (!lastExact || L.latLng(lastExact).distanceTo([v.lat, v.lon]) >= 15) { lastExact = [v.lat, v.lon]; }
    lastHeading = h;
    return h;
  }

  // The truck: a marker with an arrow turned to its heading, or, under the
  // carrier's location privacy, a dashed disc on the centre of its area.
  function truckIcon(v, h) {
    if (v.approximate) {
      return L.divIcon({ className: 'truck-area', html: '', iconSize: [44, 44] });
    }
    var arrow = h === null ? '' : '<span class="truck-arrow" data-heading="' + Math.round(h) +
      '" style="transform: rotate(' + h.toFixed(0) + 'deg)"><span class="truck-heading"></span></span>';
    return L.divIcon({ className: 'truck-marker', html: arrow + '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="#fff" d="M2 6h12v10H2zM14 9h4.5L22 12.5V16h-8z"/><circle cx="6" cy="17.5" r="2" fill="#fff" stroke="#14213d"/><circle cx="17" cy="17.5" r="2" fill="#fff" stroke="#14213d"/></svg>', iconSize: [30, 30] });
  }

  function renderMap() {
    if (!map) { return; }
    var v = track.live ? track.vehicle : null;
    if (v) {
      var h = headingOf(v);
      var key = v.approximate ? 'area' : 'truck:' + (h === null ? '' : Math.round(h));
      var title = t(v.approximate ? 'map.truck_area' : 'map.truck');
      if (!truck) {
        truck = L.marker([v.lat, v.lon], {
          icon: truckIcon(v, h), title: title, alt: title, keyboard: false, zIndexOffset: 1000
        }).addTo(map);
      } else {
        truck.setLatLng([v.lat, v.lon]);
        if (key !== truckKey) { truck.setIcon(truckIcon(v, h)); truck.options.title = title; }
      }
      truckKey = key;
    } else if (truck) {
      map.removeLayer(truck);
      truck = null;
    }
    stopMarkers.forEach(function (m, i) { if (track.stops[i]) { m.setIcon(stopIcon(track.stops[i], i)); } });
    // The road already driven (grey, solid) up to the truck, and the road
    // ahead (the carrier's colour, dashed) from it.
    var driven = (track.trail || []).map(function (p) { return [p[1], p[0]]; });
    if (v) { driven.push([v.lat, v.lon]); }
    drivenLine = polyline(drivenLine, driven, { color: '#8a94a3', weight: 5, opacity: 0.9 });
    var route = (track.eta && track.eta.route) || [];
    var latlngs = route.map(function (p) { return [p[1], p[0]]; });
    routeLine = polyline(routeLine, latlngs, { color: BRAND, weight: 5, opacity: 0.9, dashArray: '10 8' });
    if (!fitted) {
      fitStory(v);
    } else if (v && !viewerMoved && !map.getBounds().pad(-0.1).contains([v.lat, v.lon])) {
      // The truck is leaving the view: follow it, with what is still ahead.
      fitStory(v);
    }
    renderMapText(v);
  }

  // Draws (or updates, or removes) one line of the map.
  function polyline(line, latlngs, style) {
    if (latlngs.length > 1) {
      if (!line) { return L.polyline(latlngs, style).addTo(map); }
      line.setLatLngs(latlngs);
      return line;
    }
    if (line) { map.removeLayer(line); }
    return null;
  }

  // The map's text alternative: where the truck is, in words.
  function renderMapText(v) {
    var el = byId('map-text');
    if (!el) { return; }
    var next = nextStop();
    if (!v) { setText(el, t('map.text_no_truck')); return; }
    if (!next) { setText(el, t('map.text_default')); return; }
    var km = L.latLng(v.lat, v.lon).distanceTo([next.lat, next.lon]) / 1000;
    // The language's decimal mark: "2.5 km", "2,5 km".
    var dist = km < 1 ? Math.round(km * 1000) + ' m'
      : (km < 10 ? (Math.round(km * 10) / 10).toLocaleString(I18N.lang) : Math.round(km)) + ' km';
    if (v.approximate) {
      setText(el, t('map.text_area', { distance: dist, stop: stopTitle(next) }));
      return;
    }
    setText(el, t('map.text_truck', { distance: dist, stop: stopTitle(next) }));
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
    renderStops();
    renderTimeline();
    renderMap();
    tick();
  }

  // ---- live connection ----
  var socket = null, backoffMs = 1000, lastMessage = 0, liveEl = null, socketOpen = false;

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
    socket.onopen = function () { backoffMs = 1000; socketOpen = true; renderFeed(); };
    socket.onmessage = function (ev) {
      lastMessage = Date.now();
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === 'snapshot') { apply(msg); }
      else if (msg.type === 'position') {
        // The position just left joins the road driven.
        if (track.vehicle && track.trail) { track.trail.push([track.vehicle.lon, track.vehicle.lat]); }
        track.vehicle = msg.vehicle;
        if (msg.feed) { track.feed = msg.feed; }
        else if (track.feed && msg.vehicle) {
          track.feed = { state: 'live', last_fix_at: msg.vehicle.at, last_fix_age_s: 0, stale_after_s: track.feed.stale_after_s };
        }
        renderMap(); tick();
      }
      else if (msg.type === 'eta') {
        var st = track.stops[msg.eta.stop_index];
        if (st) { st.eta = msg.eta; }
        if (msg.eta.stop_index === track.next_stop_index) { track.eta = msg.eta; renderEta(); renderMap(); }
        renderStops();
      }
      else if (msg.type === 'status') { apply(msg.track); }
    };
    socket.onclose = function (ev) {
      socket = null;
      socketOpen = false;
      if (ev.code === 4404) { setLive(t('live.link_invalid'), false); return; }
      setLive(t('live.reconnecting'), false);
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
  renderStops();
  connect();
})();
