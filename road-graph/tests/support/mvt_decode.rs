//! A small Mapbox Vector Tile decoder for tests: it reads back what the tile
//! cutter wrote (layers, features, string properties, geometry), independently
//! of the encoder, so a test can check a tile by its contents. Shared by the
//! road-graph and portal-api tests (included by path).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

/// A decoded layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    pub version: u64,
    pub extent: u64,
    pub features: Vec<Feature>,
}

/// A decoded feature: its type (1 point, 2 line, 3 polygon), properties and
/// geometry as parts (a part per MoveTo) in absolute tile units.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub kind: u64,
    pub properties: BTreeMap<String, String>,
    pub parts: Vec<Vec<[i64; 2]>>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or("varint runs off the end")?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()? as usize;
        let out = self
            .bytes
            .get(self.at..self.at + len)
            .ok_or("field runs off the end")?;
        self.at += len;
        Ok(out)
    }
    /// The next field: (number, wire type).
    fn key(&mut self) -> Result<(u64, u64), String> {
        let k = self.varint()?;
        Ok((k >> 3, k & 7))
    }
    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => {
                self.at += 4;
                Ok(())
            }
            1 => {
                self.at += 8;
                Ok(())
            }
            other => Err(format!("unknown wire type {other}")),
        }
    }
    fn packed(&mut self) -> Result<Vec<u64>, String> {
        let mut inner = Reader::new(self.bytes()?);
        let mut out = Vec::new();
        while !inner.done() {
            out.push(inner.varint()?);
        }
        Ok(out)
    }
}

/// Decodes a whole tile; `Err` says what is malformed.
pub fn decode(tile: &[u8]) -> Result<Vec<Layer>, String> {
    let mut r = Reader::new(tile);
    let mut layers = Vec::new();
    while !r.done() {
        match r.key()? {
            (3, 2) => layers.push(layer(r.bytes()?)?),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(layers)
}

fn layer(bytes: &[u8]) -> Result<Layer, String> {
    let mut r = Reader::new(bytes);
    let (mut name, mut version, mut extent) = (String::new(), 1, 4096);
    let mut raw = Vec::new();
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    while !r.done() {
        match r.key()? {
            (1, 2) => name = String::from_utf8(r.bytes()?.to_vec()).map_err(|e| e.to_string())?,
            (2, 2) => raw.push(r.bytes()?),
            (3, 2) => keys.push(String::from_utf8(r.bytes()?.to_vec()).map_err(|e| e.to_string())?),
            (4, 2) => {
                let mut v = Reader::new(r.bytes()?);
                let mut text = None;
                while !v.done() {
                    match v.key()? {
                        (1, 2) => {
                            text = Some(
                                String::from_utf8(v.bytes()?.to_vec())
                                    .map_err(|e| e.to_string())?,
                            )
                        }
                        (_, wire) => v.skip(wire)?,
                    }
                }
                values.push(text.ok_or("a value that is not a string")?);
            }
            (5, 0) => extent = r.varint()?,
            (15, 0) => version = r.varint()?,
            (_, wire) => r.skip(wire)?,
        }
    }
    let features = raw
        .into_iter()
        .map(|f| feature(f, &keys, &values))
        .collect::<Result<_, _>>()?;
    Ok(Layer {
        name,
        version,
        extent,
        features,
    })
}

fn feature(bytes: &[u8], keys: &[String], values: &[String]) -> Result<Feature, String> {
    let mut r = Reader::new(bytes);
    let (mut kind, mut tags, mut geometry) = (0, Vec::new(), Vec::new());
    while !r.done() {
        match r.key()? {
            (2, 2) => tags = r.packed()?,
            (3, 0) => kind = r.varint()?,
            (4, 2) => geometry = r.packed()?,
            (_, wire) => r.skip(wire)?,
        }
    }
    if tags.len() % 2 != 0 {
        return Err("odd number of tags".into());
    }
    let mut properties = BTreeMap::new();
    for pair in tags.chunks(2) {
        let k = keys.get(pair[0] as usize).ok_or("tag key out of range")?;
        let v = values
            .get(pair[1] as usize)
            .ok_or("tag value out of range")?;
        properties.insert(k.clone(), v.clone());
    }
    let unzig = |v: u64| ((v >> 1) as i64) ^ -((v & 1) as i64);
    let mut parts: Vec<Vec<[i64; 2]>> = Vec::new();
    let (mut x, mut y, mut i) = (0i64, 0i64, 0usize);
    while i < geometry.len() {
        let (id, count) = (geometry[i] & 7, (geometry[i] >> 3) as usize);
        i += 1;
        match id {
            1 | 2 => {
                for _ in 0..count {
                    let dx = *geometry.get(i).ok_or("geometry ends inside a point")?;
                    let dy = *geometry.get(i + 1).ok_or("geometry ends inside a point")?;
                    i += 2;
                    x += unzig(dx);
                    y += unzig(dy);
                    // Every MoveTo starts a part (a point of a multi-point, a line, a ring).
                    if id == 1 {
                        parts.push(Vec::new());
                    }
                    parts.last_mut().ok_or("LineTo before MoveTo")?.push([x, y]);
                }
            }
            7 => {}
            other => return Err(format!("unknown command {other}")),
        }
    }
    Ok(Feature {
        kind,
        properties,
        parts,
    })
}

/// Signed area ×2 of a ring in tile units (positive: an exterior ring).
pub fn ring_area2(ring: &[[i64; 2]]) -> i64 {
    (0..ring.len())
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}
