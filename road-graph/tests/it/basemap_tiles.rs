//! The basemap, from OSM objects to vector tiles: a tiny drawn map (a lake, a
//! park made of two ways, a river, a named street, a motorway, a suburb label)
//! and the real extracts (Columbus: the Scioto is water around its river
//! line; Baltimore: parks, built-up land, neighbourhoods, street names; Porto,
//! roads only: main roads at a long-haul zoom), each cut into tiles and decoded
//! back independently of the encoder.

#[path = "../support/mvt_decode.rs"]
mod mvt_decode;

use std::path::PathBuf;

use mvt_decode::{Layer, decode, ring_area2};
use road_graph::{
    AreaKind, BASEMAP_SECTION, Basemap, BasemapInput, DrawnMap, Error, LatLon, ProfileConfig,
    RoadGraph, TileId, cut_tile, import_pbf, read_basemap,
};

//   a---------------b       a-b: "Rua de Cima" (residential)
//   |               |
//   |  h---i  p---q |       hijk: a lake (one closed way)
//   |  |   |  |   | |       pqrs: a park, a multipolygon of two open ways
//   |  k---j  s---r |       x-y: a river
//   |               |       c-d: a motorway
//   |  x---------y  |
//   c---------------d
const DRAWING: &str = "\
a---------------b
|               |
|  h---i  p---q |
|  |   |  |   | |
|  k---j  s---r |
|               |
|  x---------y  |
c---------------d";

fn drawn() -> (DrawnMap, RoadGraph, Basemap) {
    let mut map = DrawnMap::new(DRAWING, 40.0);
    let street = map.way("ab", &[("name", "Rua de Cima")]);
    map.way("bd", &[]);
    map.way("dc", &[("highway", "motorway"), ("oneway", "no")]);
    map.way("ca", &[]);
    let (graph, _) = map.build().expect("the drawing builds");

    let mut input = BasemapInput::default();
    for c in "abcdhijkpqrsxy".chars() {
        input.add_node(map.osm_id(c), map.pos(c), &[], true);
    }
    let ids = |s: &str| s.chars().map(|c| map.osm_id(c)).collect::<Vec<_>>();
    input.add_way(
        street,
        ids("ab"),
        &[("highway", "residential"), ("name", "Rua de Cima")],
    );
    input.add_way(1, ids("hijkh"), &[("natural", "water")]);
    input.add_way(2, ids("pqr"), &[]);
    input.add_way(3, ids("rsp"), &[]);
    input.add_relation(
        &[("type", "multipolygon"), ("leisure", "park")],
        &[(2, "outer"), (3, "outer")],
    );
    input.add_member_way(2, ids("pqr"));
    input.add_member_way(3, ids("rsp"));
    input.add_way(
        4,
        ids("xy"),
        &[("waterway", "river"), ("name", "Rio Pequeno")],
    );
    let centre = LatLon::new(
        (map.pos('a').lat + map.pos('d').lat) / 2.0,
        (map.pos('a').lon + map.pos('d').lon) / 2.0,
    );
    input.add_node(
        9_999,
        centre,
        &[("place", "suburb"), ("name", "Ribeira")],
        false,
    );
    let basemap = input.assemble(&graph);
    (map, graph, basemap)
}

fn layer<'a>(layers: &'a [Layer], name: &str) -> Option<&'a Layer> {
    layers.iter().find(|l| l.name == name)
}

fn names(layers: &[Layer], name: &str) -> Vec<String> {
    layer(layers, name)
        .map(|l| {
            l.features
                .iter()
                .filter_map(|f| f.properties.get("name").cloned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_drawn_map_gives_a_lake_a_joined_park_a_river_a_label_and_a_named_street() {
    let (map, graph, basemap) = drawn();
    assert_eq!(basemap.n_areas(), 2, "the lake and the park");
    let park: Vec<_> = basemap.areas_of(AreaKind::Park).collect();
    assert_eq!(park.len(), 1);
    assert_eq!(
        park[0][0].len(),
        4,
        "two open ways joined into one ring of four corners"
    );
    assert_eq!(basemap.n_lines(), 1);
    assert_eq!(basemap.n_places(), 1);
    assert!(basemap.n_named_roads() >= 1);

    let tile = TileId::containing(map.pos('i'), 15);
    let layers = decode(&cut_tile(&basemap, &graph, tile)).expect("the tile decodes");
    for l in &layers {
        assert_eq!((l.version, l.extent), (2, 4096), "layer {}", l.name);
    }
    let water = layer(&layers, "water").expect("a water layer");
    assert_eq!(water.features[0].kind, 3, "a polygon");
    let ring = &water.features[0].parts[0];
    assert!(
        ring_area2(ring) > 0,
        "exterior rings wind clockwise on screen: {ring:?}"
    );
    assert!(layer(&layers, "park").is_some());
    assert_eq!(names(&layers, "waterway"), ["Rio Pequeno"]);
    assert!(names(&layers, "roads").contains(&"Rua de Cima".to_owned()));
    let classes: Vec<&str> = layer(&layers, "roads")
        .expect("roads")
        .features
        .iter()
        .filter_map(|f| f.properties.get("class").map(String::as_str))
        .collect();
    assert!(classes.contains(&"motorway") && classes.contains(&"residential"));
    assert_eq!(
        classes.last(),
        Some(&"motorway"),
        "major roads come last, drawn on top"
    );
    assert_eq!(names(&layers, "places"), ["Ribeira"]);
}

#[test]
fn a_long_haul_zoom_keeps_the_motorway_and_drops_streets_and_small_areas() {
    let (map, graph, basemap) = drawn();
    let tile = TileId::containing(map.pos('c'), 6);
    let layers = decode(&cut_tile(&basemap, &graph, tile)).expect("the tile decodes");
    let roads = layer(&layers, "roads").expect("the motorway is drawn at zoom 6");
    assert!(
        roads
            .features
            .iter()
            .all(|f| f.properties.get("class").map(String::as_str) == Some("motorway")),
        "only the motorway: {roads:?}"
    );
    assert!(
        roads
            .features
            .iter()
            .all(|f| !f.properties.contains_key("name")),
        "no street names at zoom 6"
    );
    assert!(
        layer(&layers, "water").is_none(),
        "a 120 m lake is below a pixel"
    );
    assert!(
        layer(&layers, "places").is_none(),
        "suburbs are not labelled at zoom 6"
    );
}

#[test]
fn a_tile_outside_the_data_is_empty_and_bad_addresses_name_their_field() {
    let (_, graph, basemap) = drawn();
    let far = TileId::new(10, 0, 0).expect("a valid tile");
    assert!(cut_tile(&basemap, &graph, far).is_empty());
    for (z, x, y, field) in [(21, 0, 0, "z"), (3, 8, 0, "x"), (3, 0, 8, "y")] {
        match TileId::new(z, x, y) {
            Err(Error::TileOutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{z}/{x}/{y}: {other:?}"),
        }
    }
}

#[test]
fn the_section_round_trips_and_a_damaged_or_foreign_one_is_refused() {
    let (map, graph, basemap) = drawn();
    let section = basemap.to_section();
    assert_eq!(section.tag, BASEMAP_SECTION);
    let back = Basemap::from_section(&section.bytes, &graph).expect("reads back");
    let tile = TileId::containing(map.pos('i'), 15);
    assert_eq!(
        cut_tile(&back, &graph, tile),
        cut_tile(&basemap, &graph, tile),
        "the same tile from the stored basemap"
    );

    let cut = &section.bytes[..section.bytes.len() - 3];
    assert!(Basemap::from_section(cut, &graph).is_err());

    let mut other = DrawnMap::new("a---b", 40.0);
    other.way("ab", &[]);
    let (other_graph, _) = other.build().expect("builds");
    let err = Basemap::from_section(&section.bytes, &other_graph).expect_err("another graph");
    assert!(err.contains("road names per geometry"), "{err}");
}

/// An extract of `../shared/data/osm`, imported with its basemap.
fn extract(name: &str) -> (RoadGraph, Basemap) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/osm")
        .join(name);
    let (graph, _) = import_pbf(&path, &ProfileConfig::TRUCK, &mut |_| {}).expect("imports");
    let basemap = read_basemap(&path, &graph).expect("reads the basemap");
    (graph, basemap)
}

/// Whether a point lies in a polygon (outer ring minus holes), even-odd rule.
fn in_polygon(p: LatLon, rings: &[Vec<LatLon>]) -> bool {
    let in_ring = |ring: &[LatLon]| {
        let mut odd = false;
        for i in 0..ring.len() {
            let (a, b) = (ring[i], ring[(i + ring.len() - 1) % ring.len()]);
            if (a.lat > p.lat) != (b.lat > p.lat)
                && p.lon < a.lon + (p.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon)
            {
                odd = !odd;
            }
        }
        odd
    };
    rings.first().is_some_and(|outer| in_ring(outer)) && !rings[1..].iter().any(|h| in_ring(h))
}

#[test]
fn columbus_has_rivers_named_lakes_and_riverbanks_as_water_and_parks() {
    let (graph, basemap) = extract("columbus.osm.pbf");
    let water: Vec<Vec<Vec<LatLon>>> = basemap.areas_of(AreaKind::Water).collect();
    assert!(water.len() >= 20, "{} water areas", water.len());
    assert!(basemap.areas_of(AreaKind::Park).count() >= 30);
    let rivers: Vec<&str> = basemap.lines().filter_map(|(_, name, _)| name).collect();
    assert!(rivers.contains(&"Scioto River"), "{rivers:?}");

    // A street-zoom tile at a point inside the largest water area shows it.
    let largest = water
        .iter()
        .max_by_key(|rings| rings[0].len())
        .expect("some water");
    let inside = largest[0]
        .iter()
        .flat_map(|a| {
            largest[0]
                .iter()
                .map(move |b| LatLon::new((a.lat + b.lat) / 2.0, (a.lon + b.lon) / 2.0))
        })
        .find(|p| in_polygon(*p, largest))
        .expect("a point inside the polygon");
    let tile = TileId::containing(inside, 15);
    let layers = decode(&cut_tile(&basemap, &graph, tile)).expect("decodes");
    assert!(layer(&layers, "water").is_some(), "water at {inside:?}");
}

#[test]
fn baltimore_has_parks_built_up_land_neighbourhoods_and_named_streets() {
    let (graph, basemap) = extract("baltimore.osm.pbf");
    assert!(basemap.areas_of(AreaKind::Park).count() >= 50);
    assert!(basemap.areas_of(AreaKind::BuiltUp).count() >= 50);
    assert!(basemap.areas_of(AreaKind::Water).count() >= 5);
    let places: Vec<&str> = basemap.places().map(|(_, name, _)| name).collect();
    assert!(places.contains(&"Fells Point"), "{places:?}");
    assert!(
        basemap.n_named_roads() * 2 >= graph.n_geoms(),
        "most streets have names"
    );

    // Street zoom at Fells Point: streets with names, the neighbourhood's label.
    let tile = TileId::containing(LatLon::new(39.2822, -76.5946), 15);
    let layers = decode(&cut_tile(&basemap, &graph, tile)).expect("decodes");
    assert!(
        !names(&layers, "roads").is_empty(),
        "street names at zoom 15"
    );
    assert!(names(&layers, "places").contains(&"Fells Point".to_owned()));
}

#[test]
fn porto_seen_from_afar_keeps_its_main_roads() {
    // Porto's extract holds roads only (no water, parks or places: see
    // BENCHMARKS.md), so this is the long-haul check.
    let (graph, basemap) = extract("porto.osm.pbf");
    assert!(
        basemap.n_named_roads() * 3 >= graph.n_geoms(),
        "most streets have names"
    );
    let tile = TileId::containing(LatLon::new(41.15, -8.61), 6);
    let layers = decode(&cut_tile(&basemap, &graph, tile)).expect("decodes");
    let roads = layer(&layers, "roads").expect("main roads at zoom 6");
    assert!(roads.features.len() >= 10);
    assert!(roads.features.iter().all(|f| {
        matches!(
            f.properties.get("class").map(String::as_str),
            Some("motorway" | "trunk")
        )
    }));
}
