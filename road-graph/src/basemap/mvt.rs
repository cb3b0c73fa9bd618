//! Mapbox Vector Tile (spec v2) encoding by hand: the few protobuf messages a
//! tile needs (`Tile`, `Layer`, `Feature`, string `Value`s), written as varints
//! and length-delimited fields, with geometry as zigzag-encoded command streams.

use std::collections::HashMap;

use super::tile::TILE_EXTENT;

/// Geometry types of the spec's `GeomType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeomType {
    Point = 1,
    LineString = 2,
    Polygon = 3,
}

const CMD_MOVE_TO: u32 = 1;
const CMD_LINE_TO: u32 = 2;
const CMD_CLOSE_PATH: u32 = 7;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    put_varint(out, u64::from((field << 3) | wire_type));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_packed(out: &mut Vec<u8>, field: u32, values: &[u32]) {
    let mut body = Vec::with_capacity(values.len() * 2);
    for &v in values {
        put_varint(&mut body, u64::from(v));
    }
    put_bytes(out, field, &body);
}

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn command(id: u32, count: usize) -> u32 {
    (id & 0x7) | ((count as u32) << 3)
}

/// One layer being filled: features, and the keys and values they share.
#[derive(Debug)]
pub(crate) struct LayerBuilder {
    name: &'static str,
    features: Vec<u8>,
    n_features: usize,
    keys: Vec<&'static str>,
    values: Vec<String>,
    value_idx: HashMap<String, u32>,
    /// The cursor of the geometry being written (commands are relative to it;
    /// it starts at the origin for every feature).
    cursor: [i32; 2],
}

impl LayerBuilder {
    pub(crate) fn new(name: &'static str) -> LayerBuilder {
        LayerBuilder {
            name,
            features: Vec::new(),
            n_features: 0,
            keys: Vec::new(),
            values: Vec::new(),
            value_idx: HashMap::new(),
            cursor: [0, 0],
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.n_features == 0
    }

    fn key(&mut self, key: &'static str) -> u32 {
        if let Some(i) = self.keys.iter().position(|k| *k == key) {
            return i as u32;
        }
        self.keys.push(key);
        (self.keys.len() - 1) as u32
    }

    fn value(&mut self, value: &str) -> u32 {
        if let Some(&i) = self.value_idx.get(value) {
            return i;
        }
        let i = self.values.len() as u32;
        self.values.push(value.to_owned());
        self.value_idx.insert(value.to_owned(), i);
        i
    }

    fn path(&mut self, geometry: &mut Vec<u32>, points: &[[i32; 2]], close: bool) {
        let Some((first, rest)) = points.split_first() else {
            return;
        };
        let mut delta = |p: &[i32; 2], geometry: &mut Vec<u32>| {
            geometry.push(zigzag(p[0] - self.cursor[0]));
            geometry.push(zigzag(p[1] - self.cursor[1]));
            self.cursor = *p;
        };
        geometry.push(command(CMD_MOVE_TO, 1));
        delta(first, geometry);
        if !rest.is_empty() {
            geometry.push(command(CMD_LINE_TO, rest.len()));
            for p in rest {
                delta(p, geometry);
            }
        }
        if close {
            geometry.push(command(CMD_CLOSE_PATH, 1));
        }
    }

    /// Adds a feature: its properties and its parts (points: one point per part;
    /// lines: one line per part; polygons: rings, exterior rings wound
    /// clockwise on screen and each followed by its holes).
    pub(crate) fn feature(
        &mut self,
        kind: GeomType,
        parts: &[Vec<[i32; 2]>],
        properties: &[(&'static str, &str)],
    ) {
        self.cursor = [0, 0];
        let mut geometry = Vec::new();
        if kind == GeomType::Point {
            let points: Vec<[i32; 2]> = parts.iter().filter_map(|p| p.first().copied()).collect();
            if points.is_empty() {
                return;
            }
            geometry.push(command(CMD_MOVE_TO, points.len()));
            for p in &points {
                geometry.push(zigzag(p[0] - self.cursor[0]));
                geometry.push(zigzag(p[1] - self.cursor[1]));
                self.cursor = *p;
            }
        } else {
            for part in parts {
                self.path(&mut geometry, part, kind == GeomType::Polygon);
            }
        }
        if geometry.is_empty() {
            return;
        }
        let mut tags = Vec::with_capacity(properties.len() * 2);
        for &(k, v) in properties {
            tags.push(self.key(k));
            tags.push(self.value(v));
        }
        let mut feature = Vec::new();
        put_packed(&mut feature, 2, &tags);
        put_key(&mut feature, 3, 0);
        put_varint(&mut feature, kind as u64);
        put_packed(&mut feature, 4, &geometry);
        put_bytes(&mut self.features, 2, &feature);
        self.n_features += 1;
    }

    /// Appends the layer to a tile's bytes (nothing when it has no feature).
    pub(crate) fn finish_into(self, tile: &mut Vec<u8>) {
        if self.is_empty() {
            return;
        }
        let mut layer = Vec::with_capacity(self.features.len() + 64);
        put_key(&mut layer, 15, 0);
        put_varint(&mut layer, 2);
        put_bytes(&mut layer, 1, self.name.as_bytes());
        layer.extend_from_slice(&self.features);
        for k in &self.keys {
            put_bytes(&mut layer, 3, k.as_bytes());
        }
        for v in &self.values {
            let mut value = Vec::with_capacity(v.len() + 2);
            put_bytes(&mut value, 1, v.as_bytes());
            put_bytes(&mut layer, 4, &value);
        }
        put_key(&mut layer, 5, 0);
        put_varint(&mut layer, u64::from(TILE_EXTENT));
        put_bytes(tile, 3, &layer);
    }
}
