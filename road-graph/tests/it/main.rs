//! The road graph's integration tests in one test binary (one link instead
//! of one per file). `cargo test -p road-graph --test it MODULE` runs one
//! module.

mod basemap_tiles;
mod profile_maps;
mod real_data;
