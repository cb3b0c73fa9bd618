//! The truck profile: which OSM ways a heavy goods vehicle may use, in which
//! direction, how fast, and under which restrictions.
//!
//! Decisions in doubtful cases (ARCHITECTURE.md points here for them):
//! - Access is decided by the most specific tag present, in the order `hgv`, `goods`,
//!   `motor_vehicle`, `vehicle`, `access`: `access=private` + `hgv=yes` is open,
//!   `access=yes` + `hgv=no` is closed. `destination` and `delivery` are open but the
//!   edge is flagged, so routing can avoid through traffic on it.
//! - `highway=service` is used only when it has no `service=*` subtype (industrial
//!   yards, depot and warehouse access) or when an `hgv`/`goods` tag opens it
//!   explicitly; parking aisles, driveways, alleys, drive-throughs and emergency
//!   access are not truck roads. `track`, `path`, `road` (unknown type) and the like
//!   are never used.
//! - `oneway=reversible` (and `oneway=alternating`) is dropped: it is open in one
//!   direction at times we cannot know.
//! - Speed: `maxspeed:hgv` over `maxspeed`; the lowest of several values (`50;30`);
//!   `none`, `signals` and `variable` fall back to the road-class default; the result
//!   is capped by the truck's own limit.

use serde::{Deserialize, Serialize};

/// Road class, from `highway=*`. The order is from fastest to slowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum RoadClass {
    Motorway = 0,
    MotorwayLink = 1,
    Trunk = 2,
    TrunkLink = 3,
    Primary = 4,
    PrimaryLink = 5,
    Secondary = 6,
    SecondaryLink = 7,
    Tertiary = 8,
    TertiaryLink = 9,
    Unclassified = 10,
    Residential = 11,
    LivingStreet = 12,
    Service = 13,
}

impl RoadClass {
    pub const ALL: [RoadClass; 14] = [
        RoadClass::Motorway,
        RoadClass::MotorwayLink,
        RoadClass::Trunk,
        RoadClass::TrunkLink,
        RoadClass::Primary,
        RoadClass::PrimaryLink,
        RoadClass::Secondary,
        RoadClass::SecondaryLink,
        RoadClass::Tertiary,
        RoadClass::TertiaryLink,
        RoadClass::Unclassified,
        RoadClass::Residential,
        RoadClass::LivingStreet,
        RoadClass::Service,
    ];

    /// The `highway=*` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RoadClass::Motorway => "motorway",
            RoadClass::MotorwayLink => "motorway_link",
            RoadClass::Trunk => "trunk",
            RoadClass::TrunkLink => "trunk_link",
            RoadClass::Primary => "primary",
            RoadClass::PrimaryLink => "primary_link",
            RoadClass::Secondary => "secondary",
            RoadClass::SecondaryLink => "secondary_link",
            RoadClass::Tertiary => "tertiary",
            RoadClass::TertiaryLink => "tertiary_link",
            RoadClass::Unclassified => "unclassified",
            RoadClass::Residential => "residential",
            RoadClass::LivingStreet => "living_street",
            RoadClass::Service => "service",
        }
    }

    pub fn parse(highway: &str) -> Option<RoadClass> {
        RoadClass::ALL.into_iter().find(|c| c.as_str() == highway)
    }

    pub(crate) fn from_u8(v: u8) -> Option<RoadClass> {
        RoadClass::ALL.get(usize::from(v)).copied()
    }

    /// Typical free-flow truck speed where the way has no usable `maxspeed`, km/h.
    pub fn default_speed_kph(self) -> f64 {
        match self {
            RoadClass::Motorway => 90.0,
            RoadClass::MotorwayLink => 50.0,
            RoadClass::Trunk => 75.0,
            RoadClass::TrunkLink => 45.0,
            RoadClass::Primary => 60.0,
            RoadClass::PrimaryLink => 40.0,
            RoadClass::Secondary => 50.0,
            RoadClass::SecondaryLink => 35.0,
            RoadClass::Tertiary => 40.0,
            RoadClass::TertiaryLink => 30.0,
            RoadClass::Unclassified => 35.0,
            RoadClass::Residential => 25.0,
            RoadClass::LivingStreet => 10.0,
            RoadClass::Service => 15.0,
        }
    }

    /// Whether a way of this class is one-way unless tagged otherwise.
    fn implies_oneway(self) -> bool {
        matches!(self, RoadClass::Motorway | RoadClass::MotorwayLink)
    }
}

/// Settings of the truck profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileConfig {
    /// The truck's own top speed (limiter), km/h; no edge is faster.
    pub max_speed_kph: f64,
    /// Which strongly connected components the graph keeps.
    pub components: Components,
}

/// Which parts of the road network an import keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Components {
    /// Only the largest strongly connected component: every edge reaches every
    /// other. On an extract clipped tight around a track this drops real roads at
    /// its edges (a one-way carriageway cut at the boundary), so only drawn test
    /// maps use it.
    Largest,
    /// Every edge the profile accepts: what the product uses, so that map
    /// matching sees every road a vehicle may drive; routing snaps its query
    /// points to the largest component ([`crate::RoadGraph::in_main_component`]).
    All,
}

impl ProfileConfig {
    /// A typical heavy goods vehicle: limited to 90 km/h in the EU, commonly 65 mph
    /// (105 km/h) in the US; 100 km/h is the middle ground for a mixed fleet. Every
    /// component is kept: one graph serves matching and routing alike.
    pub const TRUCK: ProfileConfig = ProfileConfig {
        max_speed_kph: 100.0,
        components: Components::All,
    };
}

/// Per-edge bit flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct EdgeFlags(pub u8);

impl EdgeFlags {
    /// `hgv=destination` (or `delivery`): only to reach a place on it.
    pub const DESTINATION_ONLY: EdgeFlags = EdgeFlags(1);
    /// `toll=yes` (or `toll:hgv=yes`).
    pub const TOLL: EdgeFlags = EdgeFlags(2);
    /// `hazmat=no` (or a `hazmat:*=no` variant): no dangerous goods.
    pub const NO_HAZMAT: EdgeFlags = EdgeFlags(4);
    /// Part of a roundabout (`junction=roundabout|circular`).
    pub const ROUNDABOUT: EdgeFlags = EdgeFlags(8);
    /// `tunnel=yes` (GPS is unreliable there).
    pub const TUNNEL: EdgeFlags = EdgeFlags(16);

    pub fn contains(self, other: EdgeFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: EdgeFlags) {
        self.0 |= other.0;
    }
}

/// Physical limits posted on a way; `0` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TruckLimits {
    pub max_height_cm: u16,
    pub max_length_cm: u16,
    pub max_weight_kg: u32,
}

impl TruckLimits {
    pub fn is_none(&self) -> bool {
        *self == TruckLimits::default()
    }
}

/// What the profile makes of a routable way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WayProfile {
    pub class: RoadClass,
    pub forward: bool,
    pub backward: bool,
    pub speed_kph: f64,
    pub flags: EdgeFlags,
    pub limits: TruckLimits,
}

/// Why a way is not a truck road (counted in the import report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `highway` tag, or a class trucks never use (`footway`, `track`, …).
    NotARoad,
    /// `area=yes`, under construction, proposed, abandoned.
    NotDrivable,
    /// An access tag forbids trucks.
    NoAccess,
    /// `oneway=reversible` or `alternating`.
    Reversible,
}

/// Evaluates the truck profile on a way's tags.
pub fn evaluate_way<'a>(
    tags: &[(&'a str, &'a str)],
    config: &ProfileConfig,
) -> Result<WayProfile, Rejection> {
    let tag = |key: &str| tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let class = tag("highway")
        .and_then(RoadClass::parse)
        .ok_or(Rejection::NotARoad)?;
    if tag("area") == Some("yes")
        || tag("construction").is_some_and(|v| v != "no")
        || tag("proposed").is_some()
        || tag("impassable") == Some("yes")
    {
        return Err(Rejection::NotDrivable);
    }

    let mut flags = EdgeFlags::default();
    let specific = ["hgv", "goods", "motor_vehicle", "vehicle", "access"]
        .into_iter()
        .find_map(|key| tag(key).map(|value| (key, value)));
    if let Some((_, value)) = specific {
        match access_value(value) {
            Access::Open => {}
            Access::Destination => flags.insert(EdgeFlags::DESTINATION_ONLY),
            Access::Closed => return Err(Rejection::NoAccess),
        }
    }
    if class == RoadClass::Service {
        let explicitly_open = ["hgv", "goods"]
            .into_iter()
            .any(|key| tag(key).is_some_and(|v| access_value(v) != Access::Closed));
        if tag("service").is_some() && !explicitly_open {
            return Err(Rejection::NoAccess);
        }
    }

    let roundabout = matches!(tag("junction"), Some("roundabout" | "circular"));
    if roundabout {
        flags.insert(EdgeFlags::ROUNDABOUT);
    }
    let (forward, backward) = match tag("oneway") {
        Some("yes" | "true" | "1") => (true, false),
        Some("-1" | "reverse") => (false, true),
        Some("reversible" | "alternating") => return Err(Rejection::Reversible),
        Some("no" | "false" | "0") => (true, true),
        _ if roundabout || class.implies_oneway() => (true, false),
        _ => (true, true),
    };

    if tag("toll") == Some("yes") || tag("toll:hgv") == Some("yes") {
        flags.insert(EdgeFlags::TOLL);
    }
    let hazmat_closed = tags
        .iter()
        .any(|(k, v)| (*k == "hazmat" || k.starts_with("hazmat:")) && *v == "no");
    if hazmat_closed {
        flags.insert(EdgeFlags::NO_HAZMAT);
    }
    if tag("tunnel").is_some_and(|v| v != "no") {
        flags.insert(EdgeFlags::TUNNEL);
    }

    let posted_kph = tag("maxspeed:hgv")
        .and_then(parse_maxspeed_kph)
        .or_else(|| tag("maxspeed").and_then(parse_maxspeed_kph));
    let speed_kph = posted_kph
        .unwrap_or_else(|| class.default_speed_kph())
        .min(config.max_speed_kph)
        .max(1.0);

    let limits = TruckLimits {
        max_height_cm: first_tag(&tag, &["maxheight:physical", "maxheight"])
            .and_then(parse_length_m)
            .map_or(0, |m| (m * 100.0).round().clamp(1.0, 65_535.0) as u16),
        max_length_cm: first_tag(&tag, &["maxlength:hgv", "maxlength"])
            .and_then(parse_length_m)
            .map_or(0, |m| (m * 100.0).round().clamp(1.0, 65_535.0) as u16),
        max_weight_kg: first_tag(&tag, &["maxweight:hgv", "maxweight"])
            .and_then(parse_weight_kg)
            .map_or(0, |kg| kg.round().clamp(1.0, u32::MAX as f64) as u32),
    };

    Ok(WayProfile {
        class,
        forward,
        backward,
        speed_kph,
        flags,
        limits,
    })
}

fn first_tag<'a>(tag: &impl Fn(&str) -> Option<&'a str>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| tag(k))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Open,
    Destination,
    Closed,
}

fn access_value(value: &str) -> Access {
    match value {
        "yes" | "designated" | "permissive" | "official" | "permit" => Access::Open,
        "destination" | "delivery" | "customers" => Access::Destination,
        // Conditional and lane-wise values we cannot evaluate are taken as open: a
        // road that is closed only sometimes is still a road the truck may be on.
        "no" | "private" | "agricultural" | "forestry" | "discouraged" | "use_sidepath" => {
            Access::Closed
        }
        _ => Access::Open,
    }
}

/// Parses a `maxspeed` value into km/h. `None` for values that carry no number
/// (`none`, `signals`, `variable`) or that cannot be read: the class default then
/// applies.
pub fn parse_maxspeed_kph(value: &str) -> Option<f64> {
    // Several values (`50;30`, lanes `50|30`): the lowest is the safe reading.
    if value.contains([';', '|']) {
        return value
            .split([';', '|'])
            .filter_map(parse_maxspeed_kph)
            .min_by(f64::total_cmp);
    }
    let value = value.trim();
    match value {
        "walk" => return Some(6.0),
        "none" | "signals" | "variable" | "" => return None,
        _ => {}
    }
    if let Some(kph) = implicit_maxspeed_kph(value) {
        return kph;
    }
    let (number, unit) = split_number(value)?;
    let kph = match unit.trim() {
        "" | "km/h" | "kmh" | "kph" | "kmph" => number,
        "mph" => number * 1.609_344,
        "knots" => number * 1.852,
        _ => return None,
    };
    (kph > 0.0 && kph < 300.0).then_some(kph)
}

/// Country-implicit limits such as `DE:urban`. `Some(None)` for a known zone with
/// no limit (`DE:motorway`), `None` for a value that is not of this shape.
fn implicit_maxspeed_kph(value: &str) -> Option<Option<f64>> {
    let (country, zone) = value.split_once(':')?;
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mph = |v: f64| Some(Some(v * 1.609_344));
    let kph = |v: f64| Some(Some(v));
    match (country, zone) {
        ("US", "urban") => mph(25.0),
        ("US", "rural") => mph(55.0),
        ("US", "motorway") => mph(65.0),
        ("US", "school") => mph(20.0),
        ("GB" | "UK", "nsl_single") => mph(50.0), // HGV national limit on single carriageways
        ("GB" | "UK", "nsl_dual") => mph(60.0),
        ("GB" | "UK", "motorway") => mph(60.0),
        ("GB" | "UK", "urban") => mph(30.0),
        ("DE", "motorway") | ("AT", "motorway") => Some(None),
        ("DE" | "AT" | "CH" | "FR" | "PT" | "ES" | "IT" | "NL" | "BE" | "PL" | "CZ", "urban") => {
            kph(50.0)
        }
        ("DE" | "AT" | "CZ" | "PL", "rural") => kph(100.0),
        ("FR" | "PT" | "ES" | "BE" | "NL", "rural") => kph(80.0),
        ("IT" | "CH", "rural") => kph(80.0),
        ("RU" | "UA" | "BY", "urban") => kph(60.0),
        ("RU" | "UA" | "BY", "rural") => kph(90.0),
        (_, "living_street") => kph(10.0),
        (_, "walk") => kph(6.0),
        (_, "zone30" | "zone:30") => kph(30.0),
        (_, "zone20" | "zone:20") => kph(20.0),
        (_, "motorway") => kph(120.0),
        (_, "trunk") => kph(100.0),
        (_, "rural") => kph(90.0),
        (_, "urban") => kph(50.0),
        _ => Some(None),
    }
}

fn split_number(value: &str) -> Option<(f64, &str)> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(value.len());
    let number = value[..end].replace(',', ".").parse::<f64>().ok()?;
    Some((number, &value[end..]))
}

/// Parses a length (`maxheight`, `maxlength`) into metres: `4.5`, `4.5 m`,
/// `14'6"`, `14 ft`. `None` for `default`, `none`, `below_default` and the like.
pub fn parse_length_m(value: &str) -> Option<f64> {
    let value = value.trim();
    if let Some((feet, rest)) = value.split_once('\'') {
        let feet = feet.trim().parse::<f64>().ok()?;
        let inches = rest.trim().trim_end_matches('"').trim();
        let inches = if inches.is_empty() {
            0.0
        } else {
            inches.parse::<f64>().ok()?
        };
        return positive((feet * 12.0 + inches) * 0.0254);
    }
    let (number, unit) = split_number(value)?;
    match unit.trim() {
        "" | "m" => positive(number),
        "ft" | "feet" => positive(number * 0.3048),
        "cm" => positive(number / 100.0),
        _ => None,
    }
}

/// Parses a weight (`maxweight`) into kilograms: `7.5` (tonnes), `7.5 t`,
/// `12000 kg`, `20 st` (US short tons), `40000 lbs`.
pub fn parse_weight_kg(value: &str) -> Option<f64> {
    let (number, unit) = split_number(value.trim())?;
    match unit.trim() {
        "" | "t" => positive(number * 1000.0),
        "kg" => positive(number),
        "st" => positive(number * 907.184_74),
        "lbs" | "lb" => positive(number * 0.453_592_37),
        _ => None,
    }
}

fn positive(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn way(tags: &[(&'static str, &'static str)]) -> Result<WayProfile, Rejection> {
        evaluate_way(tags, &ProfileConfig::TRUCK)
    }

    #[test]
    fn private_roads_are_closed_unless_hgv_opens_them() {
        assert_eq!(
            way(&[("highway", "residential"), ("access", "private")]),
            Err(Rejection::NoAccess)
        );
        assert!(
            way(&[
                ("highway", "residential"),
                ("access", "private"),
                ("hgv", "yes")
            ])
            .is_ok()
        );
        assert!(
            way(&[
                ("highway", "residential"),
                ("access", "no"),
                ("goods", "yes")
            ])
            .is_ok()
        );
        assert_eq!(
            way(&[("highway", "primary"), ("hgv", "no")]),
            Err(Rejection::NoAccess)
        );
        assert_eq!(
            way(&[("highway", "primary"), ("motor_vehicle", "no")]),
            Err(Rejection::NoAccess)
        );
    }

    #[test]
    fn hgv_destination_is_open_but_flagged() {
        let p = way(&[("highway", "residential"), ("hgv", "destination")]).expect("open");
        assert!(p.flags.contains(EdgeFlags::DESTINATION_ONLY));
    }

    #[test]
    fn only_plain_service_roads_are_truck_roads() {
        assert!(way(&[("highway", "service")]).is_ok());
        for kind in ["parking_aisle", "driveway", "alley", "drive-through"] {
            assert_eq!(
                way(&[("highway", "service"), ("service", kind)]),
                Err(Rejection::NoAccess),
                "{kind}"
            );
        }
        assert!(
            way(&[
                ("highway", "service"),
                ("service", "driveway"),
                ("hgv", "designated")
            ])
            .is_ok()
        );
    }

    #[test]
    fn areas_construction_and_non_roads_are_skipped() {
        assert_eq!(way(&[("highway", "footway")]), Err(Rejection::NotARoad));
        assert_eq!(
            way(&[("highway", "construction")]),
            Err(Rejection::NotARoad)
        );
        assert_eq!(way(&[("building", "yes")]), Err(Rejection::NotARoad));
        assert_eq!(
            way(&[("highway", "pedestrian"), ("area", "yes")]),
            Err(Rejection::NotARoad)
        );
        assert_eq!(
            way(&[("highway", "residential"), ("area", "yes")]),
            Err(Rejection::NotDrivable)
        );
        assert_eq!(
            way(&[("highway", "primary"), ("construction", "yes")]),
            Err(Rejection::NotDrivable)
        );
    }

    #[test]
    fn oneway_variants() {
        let dir =
            |tags: &[(&'static str, &'static str)]| way(tags).map(|p| (p.forward, p.backward));
        assert_eq!(dir(&[("highway", "primary")]), Ok((true, true)));
        for v in ["yes", "true", "1"] {
            assert_eq!(
                dir(&[("highway", "primary"), ("oneway", v)]),
                Ok((true, false))
            );
        }
        assert_eq!(
            dir(&[("highway", "primary"), ("oneway", "-1")]),
            Ok((false, true))
        );
        assert_eq!(
            dir(&[("highway", "primary"), ("oneway", "reversible")]),
            Err(Rejection::Reversible)
        );
        assert_eq!(dir(&[("highway", "motorway")]), Ok((true, false)));
        assert_eq!(
            dir(&[("highway", "motorway"), ("oneway", "no")]),
            Ok((true, true))
        );
        assert_eq!(
            dir(&[("highway", "tertiary"), ("junction", "roundabout")]),
            Ok((true, false))
        );
    }

    #[test]
    fn maxspeed_forms() {
        assert_eq!(parse_maxspeed_kph("50"), Some(50.0));
        assert_eq!(parse_maxspeed_kph("50 km/h"), Some(50.0));
        let mph = parse_maxspeed_kph("30 mph").expect("mph");
        assert!((mph - 48.28).abs() < 0.01);
        assert_eq!(parse_maxspeed_kph("none"), None);
        assert_eq!(parse_maxspeed_kph("walk"), Some(6.0));
        assert_eq!(parse_maxspeed_kph("DE:urban"), Some(50.0));
        assert_eq!(parse_maxspeed_kph("DE:rural"), Some(100.0));
        assert_eq!(parse_maxspeed_kph("DE:motorway"), None);
        assert!((parse_maxspeed_kph("US:urban").expect("US") - 40.23).abs() < 0.01);
        assert_eq!(parse_maxspeed_kph("50;30"), Some(30.0));
        assert_eq!(parse_maxspeed_kph("fast"), None);
    }

    #[test]
    fn hgv_maxspeed_wins_and_the_truck_cap_applies() {
        let p = way(&[
            ("highway", "motorway"),
            ("maxspeed", "130"),
            ("maxspeed:hgv", "80"),
        ])
        .expect("open");
        assert_eq!(p.speed_kph, 80.0);
        let p = way(&[("highway", "motorway"), ("maxspeed", "130")]).expect("open");
        assert_eq!(p.speed_kph, ProfileConfig::TRUCK.max_speed_kph);
        let p = way(&[("highway", "residential")]).expect("open");
        assert_eq!(p.speed_kph, RoadClass::Residential.default_speed_kph());
        let p = way(&[("highway", "motorway"), ("maxspeed", "none")]).expect("open");
        assert_eq!(p.speed_kph, RoadClass::Motorway.default_speed_kph());
    }

    #[test]
    fn truck_limits_are_parsed_with_units() {
        let p = way(&[
            ("highway", "secondary"),
            ("maxheight", "13'6\""),
            ("maxweight", "7.5 t"),
            ("maxlength", "18.75"),
            ("hazmat", "no"),
            ("toll", "yes"),
        ])
        .expect("open");
        assert_eq!(p.limits.max_height_cm, 411);
        assert_eq!(p.limits.max_weight_kg, 7500);
        assert_eq!(p.limits.max_length_cm, 1875);
        assert!(p.flags.contains(EdgeFlags::NO_HAZMAT));
        assert!(p.flags.contains(EdgeFlags::TOLL));
        assert_eq!(parse_length_m("default"), None);
        assert_eq!(parse_weight_kg("12000 kg"), Some(12000.0));
    }
}
