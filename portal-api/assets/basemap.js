// basemap.js: the tracking page's basemap, drawn on canvas from our own vector
// tiles (GET /api/v1/map/tiles/{z}/{x}/{y}, Mapbox Vector Tile v2) with no
// third-party server: a small protobuf reader decodes each tile, and a Leaflet
// GridLayer paints water, parks, built-up land, roads by class (casing and
// fill, wider as the map zooms in), road names and place labels that do not
// overlap within a tile. Light and dark palettes follow prefers-color-scheme.
// When tiles cannot be had, the layer removes itself and calls `onFail`, so
// the page can fall back to drawing the roads from GeoJSON.
// Test hook: the map element's data-basemap-labels counts labels drawn and
// data-basemap-tiles counts tiles painted.
(function () {
  'use strict';

  // ---- protobuf ----
  function Pbf(buf) { this.buf = buf; this.pos = 0; this.end = buf.length; }
  Pbf.prototype.varint = function () {
    // Multiplication, not shifts: values past 2^31 stay exact.
    var val = 0, mul = 1, b;
    do {
      if (this.pos >= this.end) { throw new Error('varint runs off the end'); }
      b = this.buf[this.pos++];
      val += (b & 0x7f) * mul;
      mul *= 128;
    } while (b >= 0x80);
    return val;
  };
  Pbf.prototype.bytes = function () {
    var len = this.varint(), start = this.pos;
    if (start + len > this.end) { throw new Error('field runs off the end'); }
    this.pos += len;
    return this.buf.subarray(start, start + len);
  };
  Pbf.prototype.skip = function (wire) {
    if (wire === 0) { this.varint(); } else if (wire === 2) { this.bytes(); }
    else if (wire === 1) { this.pos += 8; } else if (wire === 5) { this.pos += 4; }
    else { throw new Error('unknown wire type ' + wire); }
  };
  Pbf.prototype.fields = function (fn) {
    while (this.pos < this.end) {
      var key = this.varint();
      fn(Math.floor(key / 8), key & 7);
    }
  };
  var utf8 = new TextDecoder('utf-8');

  function packed(p) {
    var sub = new Pbf(p.bytes()), out = [];
    while (sub.pos < sub.end) { out.push(sub.varint()); }
    return out;
  }

  // A tile as { layerName: { extent, features: [{ type, props, parts }] } };
  // parts hold flat [x0, y0, x1, y1, ...] arrays in tile units.
  function decodeTile(buf) {
    var tile = {}, p = new Pbf(buf);
    p.fields(function (field, wire) {
      if (field === 3 && wire === 2) {
        var layer = decodeLayer(new Pbf(p.bytes()));
        tile[layer.name] = layer;
      } else { p.skip(wire); }
    });
    return tile;
  }

  function decodeLayer(p) {
    var layer = { name: '', extent: 4096, features: [] }, keys = [], values = [], raw = [];
    p.fields(function (field, wire) {
      if (field === 1 && wire === 2) { layer.name = utf8.decode(p.bytes()); }
      else if (field === 2 && wire === 2) { raw.push(p.bytes()); }
      else if (field === 3 && wire === 2) { keys.push(utf8.decode(p.bytes())); }
      else if (field === 4 && wire === 2) {
        var v = new Pbf(p.bytes()), value = null;
        v.fields(function (f, w) {
          if (f === 1 && w === 2) { value = utf8.decode(v.bytes()); } else { v.skip(w); }
        });
        values.push(value);
      } else if (field === 5 && wire === 0) { layer.extent = p.varint(); }
      else { p.skip(wire); }
    });
    layer.features = raw.map(function (bytes) { return decodeFeature(new Pbf(bytes), keys, values); });
    return layer;
  }

  function decodeFeature(p, keys, values) {
    var f = { type: 0, props: {}, parts: [] }, tags = [], geom = [];
    p.fields(function (field, wire) {
      if (field === 2 && wire === 2) { tags = packed(p); }
      else if (field === 3 && wire === 0) { f.type = p.varint(); }
      else if (field === 4 && wire === 2) { geom = packed(p); }
      else { p.skip(wire); }
    });
    for (var t = 0; t + 1 < tags.length; t += 2) { f.props[keys[tags[t]]] = values[tags[t + 1]]; }
    var x = 0, y = 0, i = 0, part = null;
    var unzig = function (n) { return (n % 2) ? -(n + 1) / 2 : n / 2; };
    while (i < geom.length) {
      var id = geom[i] & 7, count = Math.floor(geom[i] / 8);
      i++;
      if (id === 1 || id === 2) {
        for (var c = 0; c < count; c++) {
          x += unzig(geom[i]); y += unzig(geom[i + 1]); i += 2;
          if (id === 1) { part = []; f.parts.push(part); }
          if (part) { part.push(x, y); }
        }
      }
    }
    return f;
  }

  // ---- style ----
  var PALETTES = {
    light: {
      background: '#f2efe9', water: '#aad3df', park: '#cdebb0', builtup: '#e5e0d8',
      casing: '#bdb5a9', minor: '#ffffff', text: '#2b2b2b', halo: 'rgba(255,255,255,0.9)',
      waterText: '#2f5e7a',
      road: { motorway: '#e892a2', trunk: '#f9b29c', primary: '#fcd6a4', secondary: '#f7fabf', tertiary: '#ffffff' }
    },
    dark: {
      background: '#1e242c', water: '#22405a', park: '#1f3526', builtup: '#272c34',
      casing: '#0f1318', minor: '#4b5461', text: '#e3e7ed', halo: 'rgba(20,24,30,0.9)',
      waterText: '#8fb8d6',
      road: { motorway: '#a85d68', trunk: '#a06a52', primary: '#8c7a4e', secondary: '#6e6e55', tertiary: '#5a6270' }
    }
  };
  // Width in CSS pixels at zoom 14, halved for every two zooms out.
  var ROAD_WIDTH = {
    motorway: 7, trunk: 6.5, primary: 6, secondary: 5.5, tertiary: 5,
    unclassified: 4, residential: 4, living_street: 3, service: 2.5
  };
  var PLACE_FONT = { city: 17, town: 15, village: 13, suburb: 13, neighbourhood: 12 };

  function palette() {
    var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
    return dark ? PALETTES.dark : PALETTES.light;
  }

  function roadWidth(cls, z) {
    var base = ROAD_WIDTH[cls.replace('_link', '')] || 3;
    var w = base * Math.pow(2, (z - 14) / 2);
    return Math.max(cls.indexOf('motorway') === 0 || cls.indexOf('trunk') === 0 ? 1.2 : 0.6, Math.min(w, 24));
  }

  function trace(ctx, part, s, close) {
    ctx.moveTo(part[0] * s, part[1] * s);
    for (var i = 2; i < part.length; i += 2) { ctx.lineTo(part[i] * s, part[i + 1] * s); }
    if (close) { ctx.closePath(); }
  }

  function fillLayer(ctx, layer, s, color) {
    if (!layer) { return; }
    ctx.fillStyle = color;
    ctx.beginPath();
    layer.features.forEach(function (f) { f.parts.forEach(function (p) { trace(ctx, p, s, true); }); });
    ctx.fill('evenodd');
  }

  function strokeFeatures(ctx, features, s, color, width) {
    if (!features.length) { return; }
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    features.forEach(function (f) { f.parts.forEach(function (p) { trace(ctx, p, s, false); }); });
    ctx.stroke();
  }

  // Labels: each kept only where its box meets no earlier one and stays in the tile.
  function Labels(ctx, size) { this.ctx = ctx; this.size = size; this.boxes = []; this.count = 0; }
  Labels.prototype.free = function (b) {
    if (b[0] < 2 || b[1] < 2 || b[2] > this.size - 2 || b[3] > this.size - 2) { return false; }
    return !this.boxes.some(function (o) { return b[0] < o[2] && b[2] > o[0] && b[1] < o[3] && b[3] > o[1]; });
  };
  Labels.prototype.draw = function (text, x, y, angle, font, pal, color) {
    var ctx = this.ctx;
    ctx.font = font;
    var w = ctx.measureText(text).width, h = parseFloat(font.replace(/^[^0-9]*/, '')) || 12;
    var cos = Math.abs(Math.cos(angle)), sin = Math.abs(Math.sin(angle));
    var hw = (w * cos + h * sin) / 2 + 2, hh = (w * sin + h * cos) / 2 + 2;
    var box = [x - hw, y - hh, x + hw, y + hh];
    if (!this.free(box)) { return false; }
    this.boxes.push(box);
    ctx.save();
    ctx.translate(x, y);
    ctx.rotate(angle);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.lineJoin = 'round';
    ctx.lineWidth = 3;
    ctx.strokeStyle = pal.halo;
    ctx.strokeText(text, 0, 0);
    ctx.fillStyle = color;
    ctx.fillText(text, 0, 0);
    ctx.restore();
    this.count++;
    return true;
  };

  // Where a line's name goes: the part whose chord (first to last point) is
  // longest, in pixels; streets between two crossings are nearly straight.
  function longestSegment(f, s) {
    var best = null;
    f.parts.forEach(function (p) {
      if (p.length < 4) { return; }
      var n = p.length;
      var dx = (p[n - 2] - p[0]) * s, dy = (p[n - 1] - p[1]) * s, len = Math.sqrt(dx * dx + dy * dy);
      if (!best || len > best.len) { best = { len: len, x: p[0] * s + dx / 2, y: p[1] * s + dy / 2, dx: dx, dy: dy }; }
    });
    return best;
  }

  function paint(canvas, tile, z, size) {
    var ctx = canvas.getContext('2d'), pal = palette();
    var ratio = canvas.width / size;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = pal.background;
    ctx.fillRect(0, 0, size, size);
    var extent = 4096;
    Object.keys(tile).forEach(function (k) { extent = tile[k].extent || extent; });
    var s = size / extent;
    fillLayer(ctx, tile.builtup, s, pal.builtup);
    fillLayer(ctx, tile.park, s, pal.park);
    fillLayer(ctx, tile.water, s, pal.water);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    if (tile.waterway) {
      tile.waterway.features.forEach(function (f) {
        var w = f.props.kind === 'stream' ? 1 : Math.max(1.5, Math.min(8, Math.pow(2, (z - 12) / 2) * 3));
        strokeFeatures(ctx, [f], s, pal.water, w);
      });
    }
    var roads = tile.roads ? tile.roads.features : [];
    // Group by class, minor first (the tile's order), so major roads end on top.
    var classes = [], byClass = {};
    roads.forEach(function (f) {
      var c = f.props['class'] || 'unclassified';
      if (!byClass[c]) { byClass[c] = []; classes.push(c); }
      byClass[c].push(f);
    });
    if (z >= 12) {
      classes.forEach(function (c) { strokeFeatures(ctx, byClass[c], s, pal.casing, roadWidth(c, z) + 1.5); });
    }
    classes.forEach(function (c) {
      strokeFeatures(ctx, byClass[c], s, pal.road[c.replace('_link', '')] || pal.minor, roadWidth(c, z));
    });

    var labels = new Labels(ctx, size);
    var places = tile.places ? tile.places.features.slice() : [];
    var rank = { city: 0, town: 1, village: 2, suburb: 3, neighbourhood: 4 };
    places.sort(function (a, b) { return (rank[a.props.kind] || 9) - (rank[b.props.kind] || 9); });
    places.forEach(function (f) {
      var p = f.parts[0];
      if (!p || !f.props.name) { return; }
      var px = PLACE_FONT[f.props.kind] || 12;
      labels.draw(f.props.name, p[0] * s, p[1] * s, 0, '600 ' + px + 'px system-ui, sans-serif', pal, pal.text);
    });
    if (tile.waterway) {
      tile.waterway.features.forEach(function (f) {
        var seg = f.props.name && longestSegment(f, s);
        if (seg && seg.len > 60) {
          labels.draw(f.props.name, seg.x, seg.y, upright(seg), 'italic 12px system-ui, sans-serif', pal, pal.waterText);
        }
      });
    }
    var named = {};
    roads.slice().reverse().forEach(function (f) {
      var name = f.props.name;
      if (!name || named[name]) { return; }
      var seg = longestSegment(f, s);
      ctx.font = '11px system-ui, sans-serif';
      if (seg && seg.len > ctx.measureText(name).width + 8 &&
          labels.draw(name, seg.x, seg.y, upright(seg), '11px system-ui, sans-serif', pal, pal.text)) {
        named[name] = true;
      }
    });
    return labels.count;
  }

  // The segment's angle, turned so that text never reads upside down.
  function upright(seg) {
    var a = Math.atan2(seg.dy, seg.dx);
    if (a > Math.PI / 2) { a -= Math.PI; } else if (a < -Math.PI / 2) { a += Math.PI; }
    return a;
  }

  // ---- the layer ----
  var VectorBasemap = L.GridLayer.extend({
    options: { maxZoom: 19, maxNativeZoom: 19, url: '/api/v1/map/tiles/{z}/{x}/{y}', onFail: null },

    initialize: function (options) {
      L.GridLayer.prototype.initialize.call(this, options);
      this._painted = 0; this._failed = 0; this._labels = 0; this._gaveUp = false;
    },

    createTile: function (coords, done) {
      var size = this.getTileSize().x, ratio = window.devicePixelRatio || 1;
      var canvas = L.DomUtil.create('canvas', 'basemap-tile');
      canvas.width = Math.round(size * ratio);
      canvas.height = Math.round(size * ratio);
      var url = L.Util.template(this.options.url, { z: coords.z, x: coords.x, y: coords.y });
      var self = this;
      fetch(url)
        .then(function (r) {
          if (!r.ok) { throw new Error('tile ' + url + ': HTTP ' + r.status); }
          return r.arrayBuffer();
        })
        .then(function (buf) {
          var labels = paint(canvas, decodeTile(new Uint8Array(buf)), coords.z, size);
          self._painted++;
          self._labels += labels;
          self._report();
          done(null, canvas);
        })
        .catch(function (err) {
          self._failed++;
          done(err, canvas);
          // Nothing drawn yet and tiles failing: this server has no tiles to give.
          if (self._painted === 0 && self._failed >= 2) { self._giveUp(); }
        });
      return canvas;
    },

    _report: function () {
      var el = this._map && this._map.getContainer();
      if (!el) { return; }
      el.setAttribute('data-basemap', 'vector');
      el.setAttribute('data-basemap-tiles', String(this._painted));
      el.setAttribute('data-basemap-labels', String(this._labels));
    },

    _giveUp: function () {
      if (this._gaveUp || !this._map) { return; }
      this._gaveUp = true;
      var map = this._map, onFail = this.options.onFail;
      map.removeLayer(this);
      if (onFail) { onFail(map); }
    }
  });

  window.TrackBasemap = {
    // The vector basemap layer; `onFail(map)` is called if tiles cannot be had.
    layer: function (onFail) {
      var layer = new VectorBasemap({ onFail: onFail });
      // For tests and the console: the layer the page shows.
      window.TrackBasemap.active = layer;
      return layer;
    },
    active: null,
    palette: palette,
    decodeTile: decodeTile
  };
})();
