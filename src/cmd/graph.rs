//! `tracker graph build` and `tracker graph info`. A built snapshot carries the
//! truck router's preparation (section `ROUTER`) next to the graph.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use road_graph::Snapshot;
use serde_json::json;

use super::{bad_input, open_map};

#[derive(Debug, Subcommand)]
pub(crate) enum GraphCommand {
    /// Import an OSM PBF extract through the truck profile and write a snapshot.
    Build {
        /// The OpenStreetMap extract (`.osm.pbf`).
        #[arg(long)]
        osm: PathBuf,
        /// Where to write the snapshot (`.graph`).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the size and extent of a map (a snapshot or a PBF).
    Info {
        path: PathBuf,
        /// Print JSON: `{"nodes", "edges", "length_km", "bbox"}`.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: GraphCommand) -> anyhow::Result<()> {
    match command {
        GraphCommand::Build { osm, out } => build(osm, out),
        GraphCommand::Info { path, json } => info(path, json),
    }
}

fn build(osm: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    if road_graph::is_snapshot(&osm) {
        return Err(bad_input(format!(
            "{}: already a graph snapshot; --osm takes an .osm.pbf",
            osm.display()
        )));
    }
    let started = Instant::now();
    let (Snapshot { graph, .. }, report) = open_map(&osm)?;
    let import_s = started.elapsed().as_secs_f64();
    // The router's preparation goes with the graph, so that `route` and
    // `serve` on the snapshot start in milliseconds.
    let started = Instant::now();
    let graph = Arc::new(graph);
    let prepared = super::router_section(&graph)?;
    let prepare_s = started.elapsed().as_secs_f64();
    // The basemap (water, parks, places, road names) from the same file, for
    // the tracking page's vector tiles.
    let basemap = super::basemap_section(&graph, &osm)?;
    let (prepared_bytes, basemap_bytes) = (prepared.bytes.len(), basemap.bytes.len());
    road_graph::save_snapshot(&graph, &[basemap, prepared], &out)
        .with_context(|| format!("writing snapshot {}", out.display()))?;
    if let Some(report) = report {
        eprintln!(
            "imported {} in {import_s:.2} s: {} nodes, {} directed edges, {:.0} km of road",
            osm.display(),
            report.nodes,
            report.edges,
            report.length_km
        );
        eprintln!(
            "  ways: {} read, {} truck-routable, {} closed to trucks, {} reversible (skipped), {} with missing nodes",
            report.read.ways_read,
            report.read.ways_routable,
            report.read.ways_rejected_no_access,
            report.read.ways_rejected_reversible,
            report.ways_with_missing_nodes
        );
        // Every component is kept (map matching needs the roads a clipped
        // extract cuts off); routing snaps to the largest one.
        let outside = (0..graph.n_edges() as u32)
            .filter(|&e| !graph.in_main_component(road_graph::EdgeId(e)))
            .count();
        eprintln!(
            "  outside the largest strongly connected component (kept for matching, not snapped to by routing): {outside} directed edges"
        );
        eprintln!(
            "  turn restrictions: {} applied, {} unresolved, {} unsupported (via ways), {} not for trucks",
            report.restrictions_applied,
            report.restrictions_unresolved,
            report.read.restrictions_unsupported,
            report.read.restrictions_not_for_trucks
        );
    }
    eprintln!(
        "prepared the truck router in {prepare_s:.2} s ({:.1} MiB stored with the graph)",
        prepared_bytes as f64 / (1024.0 * 1024.0)
    );
    eprintln!(
        "stored the basemap ({:.1} MiB: water, parks, built-up land, places, road names)",
        basemap_bytes as f64 / (1024.0 * 1024.0)
    );
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn info(path: PathBuf, as_json: bool) -> anyhow::Result<()> {
    let (Snapshot { graph, sections }, _) = open_map(&path)?;
    let bbox = graph.bbox().as_array();
    let section_names: Vec<String> = sections.tags().map(road_graph::tag_name).collect();
    if as_json {
        let value = json!({
            "nodes": graph.n_nodes(),
            "edges": graph.n_edges(),
            "length_km": (graph.length_km() * 1000.0).round() / 1000.0,
            "bbox": bbox,
            "turn_restrictions": graph.turn_restrictions().len(),
            "sections": section_names,
        });
        println!("{value}");
    } else {
        println!("nodes:      {}", graph.n_nodes());
        println!("edges:      {} (directed)", graph.n_edges());
        println!("length:     {:.1} km", graph.length_km());
        println!(
            "bbox:       {:.5},{:.5} .. {:.5},{:.5} (lon,lat)",
            bbox[0], bbox[1], bbox[2], bbox[3]
        );
        println!("turn restrictions: {}", graph.turn_restrictions().len());
        println!(
            "sections:   {}",
            if section_names.is_empty() {
                "none".to_owned()
            } else {
                section_names.join(", ")
            }
        );
    }
    Ok(())
}
