//! H3 cells of points and edges (h3o): a stable, hierarchical grid. The
//! portal's analytics name a lane by the cells of its first pickup and last
//! delivery (`cell_of`); vehicles are sharded and partitioned by a hash of
//! their key, not by cell. Also meant for coarsening the positions shown to
//! the public (location privacy).

use h3o::{CellIndex, LatLng, Resolution};

use crate::error::{Error, Result};
use crate::geo::LatLon;
use crate::graph::{EdgeId, RoadGraph};

/// Parses an H3 resolution (0 = continent-sized, 15 = about a square metre).
pub fn h3_resolution(res: u8) -> Result<Resolution> {
    Resolution::try_from(res).map_err(|_| Error::H3Resolution(res))
}

/// The H3 cell containing a point; `None` for an invalid coordinate.
pub fn cell_of(p: LatLon, res: Resolution) -> Option<CellIndex> {
    LatLng::new(p.lat, p.lon).ok().map(|ll| ll.to_cell(res))
}

impl RoadGraph {
    /// The H3 cell of an edge: the cell of the point halfway along it.
    pub fn edge_cell(&self, edge: EdgeId, res: Resolution) -> Option<CellIndex> {
        let mid = self.point_along_edge(edge, self.edge_length_m(edge) / 2.0);
        cell_of(mid, res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_points_share_a_coarse_cell_but_not_a_fine_one() {
        let a = LatLon::new(41.1496, -8.6109);
        let b = LatLon::new(41.1497, -8.6109); // ~11 m north
        let coarse = h3_resolution(7).expect("valid");
        let fine = h3_resolution(15).expect("valid");
        assert_eq!(cell_of(a, coarse), cell_of(b, coarse));
        assert_ne!(cell_of(a, fine), cell_of(b, fine));
        assert!(h3_resolution(16).is_err());
        assert_eq!(cell_of(LatLon::new(f64::NAN, 0.0), coarse), None);
    }
}
