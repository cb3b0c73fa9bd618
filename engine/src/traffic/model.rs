//! The traffic model: per-edge speeds for "now" from three layers of evidence,
//! strongest first — the fleet's own recent passages, an optional external feed,
//! and the learned hour-of-week profile (which is the free-flow speed where there
//! is no history).
//!
//! Blending is in pace (seconds per metre), not speed, because travel times add
//! up: live evidence of weight `w` (fresh-sample equivalents, halving with age)
//! gets the share `w / (w + prior_samples)` against the profile, so an edge slides
//! back to its profile as its samples age and leaves the window.
//!
//! The model is plain data with no clock and no thread: the caller feeds it
//! traversals as the matcher emits them and, every N seconds, asks for
//! [`TrafficModel::metric`] and re-customizes the router with it (queries go on
//! on the old metric meanwhile; see `Router::customize`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use road_graph::{EdgeId, RoadGraph};
use serde::{Deserialize, Serialize};

use super::config::TrafficConfig;
use super::feed::{ExternalSpeed, FeedValue, WayIndex};
use super::history::ProfileHistory;
use super::live::{EdgeSamples, unix_s};
use super::observation::{SampleRejection, SpeedObservation, TrafficCounters};
use super::profile::SpeedProfile;
use crate::error::{Error, Result};
use crate::matching::Traversal;
use crate::routing::Metric;

/// Which layer an edge's current speed comes from (the strongest that has any
/// say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedSource {
    /// Fleet passages in the window (possibly blended with the others).
    Live,
    /// The external feed (blended with the profile).
    Feed,
    /// The learned hour-of-week profile.
    Profile,
    /// Nothing learned: the road-class or posted free-flow speed.
    FreeFlow,
}

/// An edge's current speed and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeedEstimate {
    pub speed_kph: f64,
    pub source: SpeedSource,
    /// Fleet samples behind the live part (after outlier rejection).
    pub samples: usize,
    /// Share of the estimate that is live or feed evidence, in `0..=1`.
    pub evidence_share: f64,
}

/// Live speeds per edge for one road graph.
#[derive(Debug)]
pub struct TrafficModel {
    graph: Arc<RoadGraph>,
    config: TrafficConfig,
    profile: SpeedProfile,
    live: HashMap<u32, EdgeSamples>,
    feed: HashMap<u32, FeedValue>,
    way_index: Option<WayIndex>,
    counters: TrafficCounters,
    /// What the profile is re-learned from (`None` when
    /// `profile_relearn_every_s` is 0: the profile stays as given).
    history: Option<ProfileHistory>,
    last_learned_at: Option<DateTime<Utc>>,
}

impl TrafficModel {
    /// A model with checked settings and a profile (use
    /// [`SpeedProfile::free_flow`] when there is no history).
    pub fn new(
        graph: Arc<RoadGraph>,
        config: TrafficConfig,
        profile: SpeedProfile,
    ) -> Result<TrafficModel> {
        config.validate()?;
        let history = (config.profile_relearn_every_s > 0.0)
            .then(|| ProfileHistory::new(&graph, config.time_zone));
        Ok(TrafficModel {
            graph,
            config,
            profile,
            live: HashMap::new(),
            feed: HashMap::new(),
            way_index: None,
            counters: TrafficCounters::default(),
            history,
            last_learned_at: None,
        })
    }

    pub fn graph(&self) -> &Arc<RoadGraph> {
        &self.graph
    }

    pub fn config(&self) -> &TrafficConfig {
        &self.config
    }

    pub fn profile(&self) -> &SpeedProfile {
        &self.profile
    }

    /// Replaces the profile (after re-learning from a longer history).
    pub fn set_profile(&mut self, profile: SpeedProfile) {
        self.profile = profile;
    }

    pub fn counters(&self) -> TrafficCounters {
        self.counters
    }

    /// The running sums the profile is re-learned from (`None` when the
    /// model does not learn): save them to keep the profile over a restart.
    pub fn history(&self) -> Option<&ProfileHistory> {
        self.history.as_ref()
    }

    /// Takes up a saved history and re-learns the profile from it at once.
    /// Refused (the model keeps its own) when the model does not learn or the
    /// history was learned on another map or clock.
    pub fn restore_history(&mut self, saved: ProfileHistory) -> Result<()> {
        if self.history.is_none() {
            return Err(Error::InvalidConfig {
                setting: "profile_relearn_every_s",
                reason: "is 0: this model does not learn its profile".into(),
            });
        }
        if !saved.fits(&self.graph, self.config.time_zone) {
            return Err(Error::InvalidConfig {
                setting: "profile history",
                reason: "was learned on another map or time zone".into(),
            });
        }
        self.profile = saved.profile(self.config.profile_prior_samples);
        self.history = Some(saved);
        Ok(())
    }

    /// Re-learns the profile from the history when `profile_relearn_every_s`
    /// has passed since the last time (the first call starts the clock).
    /// Returns whether it did.
    pub fn relearn_profile(&mut self, now: DateTime<Utc>) -> bool {
        let Some(history) = &self.history else {
            return false;
        };
        let every_ms = (self.config.profile_relearn_every_s * 1000.0) as i64;
        match self.last_learned_at {
            None => {
                self.last_learned_at = Some(now);
                false
            }
            Some(t) if (now - t).num_milliseconds() >= every_ms => {
                self.profile = history.profile(self.config.profile_prior_samples);
                self.last_learned_at = Some(now);
                true
            }
            Some(_) => false,
        }
    }

    /// Edges with live samples kept.
    pub fn live_edges(&self) -> usize {
        self.live.len()
    }

    /// Checks an observation without storing it: the speed it gives, or why it
    /// is not traffic.
    pub fn check(&self, obs: &SpeedObservation) -> Result<f64, SampleRejection> {
        let c = &self.config;
        if obs.edge.idx() >= self.graph.n_edges() {
            return Err(SampleRejection::UnknownEdge);
        }
        let duration_s = obs.duration_s();
        if duration_s.is_nan() || duration_s < c.min_duration_s.max(1e-3) {
            return Err(SampleRejection::TooShort);
        }
        let length_m = self.graph.edge_length_m(obs.edge);
        if obs.distance_m.is_nan()
            || obs.distance_m < c.min_coverage * length_m
            || obs.distance_m <= 0.0
        {
            return Err(SampleRejection::TooPartial);
        }
        let speed_kph = obs.distance_m / duration_s * 3.6;
        if speed_kph < c.min_speed_kph {
            return Err(SampleRejection::Standing);
        }
        if speed_kph.is_nan() || speed_kph > c.max_speed_kph {
            return Err(SampleRejection::TooFast);
        }
        Ok(speed_kph)
    }

    /// Stores one passage as a live sample and in the profile's history (or
    /// counts why it is not one).
    pub fn observe(&mut self, obs: &SpeedObservation) -> Result<(), SampleRejection> {
        let outcome = self.check(obs).map(|speed_kph| {
            self.live
                .entry(obs.edge.0)
                .or_default()
                .push(unix_s(obs.exited_at), speed_kph / 3.6);
            if let Some(history) = &mut self.history {
                history.record(&self.graph, obs, self.config.time_zone, &self.profile);
            }
        });
        self.counters.count(outcome);
        outcome
    }

    /// Stores the matcher's traversals (partial ones count when they cover enough
    /// of their edge).
    pub fn observe_traversals(&mut self, traversals: &[Traversal]) {
        for t in traversals {
            // The outcome is counted; a rejected passage is data, not an error.
            let _ = self.observe(&SpeedObservation::from(t));
        }
    }

    /// Merges external feed readings; returns how many directed edges they set.
    pub fn merge_feed(&mut self, readings: &[ExternalSpeed]) -> usize {
        let graph = Arc::clone(&self.graph);
        let index = self
            .way_index
            .get_or_insert_with(|| WayIndex::build(&graph));
        let mut set = 0;
        for reading in readings {
            if !(reading.speed_kph.is_finite() && reading.speed_kph > 0.0) {
                continue;
            }
            let edges = index.edges(&graph, reading);
            if edges.is_empty() {
                self.counters.feed_unknown_way += 1;
                continue;
            }
            let value = FeedValue {
                speed_kph: reading.speed_kph.min(self.config.max_speed_kph) as f32,
                at_s: unix_s(reading.observed_at),
            };
            for edge in edges {
                self.feed.insert(edge.0, value);
                set += 1;
            }
        }
        set
    }

    /// Forgets samples and feed values too old to count any more (keeps memory
    /// bounded by the recently driven part of the map).
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let now_s = unix_s(now);
        let window_s = self.config.window_s as i64;
        self.live
            .retain(|_, samples| now_s - samples.newest_s() <= window_s);
        let feed_age_s = self.config.feed_max_age_s as i64;
        self.feed.retain(|_, v| now_s - v.at_s <= feed_age_s);
    }

    /// The current estimate of one edge.
    pub fn estimate(&self, edge: EdgeId, now: DateTime<Utc>) -> SpeedEstimate {
        let prior_kph = self.profile.speed_kph(&self.graph, edge, now);
        let prior_source = if self.profile.samples() > 0 {
            SpeedSource::Profile
        } else {
            SpeedSource::FreeFlow
        };
        self.blend(edge, unix_s(now), prior_kph, prior_source)
    }

    fn blend(
        &self,
        edge: EdgeId,
        now_s: i64,
        prior_kph: f64,
        prior_source: SpeedSource,
    ) -> SpeedEstimate {
        let c = &self.config;
        let mut weight = 0.0;
        let mut weighted_pace = 0.0;
        let mut samples = 0;
        let mut source = prior_source;
        if let Some(value) = self.feed.get(&edge.0) {
            let age_s = (now_s - value.at_s) as f64;
            if age_s <= c.feed_max_age_s && value.speed_kph > 0.0 {
                let w = c.feed_samples * 0.5f64.powf(age_s.max(0.0) / c.half_life_s);
                weight += w;
                weighted_pace += w * 3.6 / f64::from(value.speed_kph);
                source = SpeedSource::Feed;
            }
        }
        if let Some(live) = self.live.get(&edge.0).and_then(|s| s.estimate(now_s, c)) {
            weight += live.weight;
            weighted_pace += live.weight * live.pace_s_per_m;
            samples = live.samples;
            source = SpeedSource::Live;
        }
        if weight <= 0.0 || prior_kph.is_nan() || prior_kph <= 0.0 {
            return SpeedEstimate {
                speed_kph: prior_kph,
                source: prior_source,
                samples: 0,
                evidence_share: 0.0,
            };
        }
        let share = weight / (weight + c.prior_samples);
        let evidence_pace = weighted_pace / weight;
        let prior_pace = 3.6 / prior_kph;
        let pace = share * evidence_pace + (1.0 - share) * prior_pace;
        SpeedEstimate {
            speed_kph: 3.6 / pace,
            source,
            samples,
            evidence_share: share,
        }
    }

    /// Current speeds of every edge, km/h, by edge index: the input of
    /// [`Metric::from_speeds_kph`].
    pub fn current_speeds_kph(&self, now: DateTime<Utc>) -> Vec<f64> {
        let hour = self.profile.hour_at(now);
        let mut speeds = self.profile.speeds_at(&self.graph, hour);
        let now_s = unix_s(now);
        let prior_source = if self.profile.samples() > 0 {
            SpeedSource::Profile
        } else {
            SpeedSource::FreeFlow
        };
        // Only edges with evidence differ from the profile.
        let touched = self.live.keys().chain(self.feed.keys());
        for &e in touched {
            if let Some(slot) = speeds.get_mut(e as usize) {
                *slot = self.blend(EdgeId(e), now_s, *slot, prior_source).speed_kph;
            }
        }
        speeds
    }

    /// The routing metric for now.
    pub fn metric(&self, now: DateTime<Utc>) -> Result<Metric> {
        Metric::from_speeds_kph(&self.graph, &self.current_speeds_kph(now))
    }

    /// The edges whose time in `now`'s metric differs from `current` by more than
    /// `min_ratio` (e.g. 0.02), with their new times: small enough sets go to
    /// `Router::update_edges` instead of a full customization.
    pub fn changes_since(
        &self,
        current: &Metric,
        now: DateTime<Utc>,
        min_ratio: f64,
    ) -> Result<Vec<(EdgeId, u32)>> {
        let next = self.metric(now)?;
        Ok(next
            .as_slice()
            .iter()
            .zip(current.as_slice())
            .enumerate()
            .filter(|&(_, (&new, &old))| {
                let (new, old) = (f64::from(new), f64::from(old));
                (new - old).abs() > min_ratio * old.max(1.0)
            })
            .map(|(e, (&new, _))| (EdgeId(e as u32), new))
            .collect())
    }

    /// Heap memory of the live state (samples, feed, profile, way index), bytes.
    pub fn heap_bytes(&self) -> usize {
        let entry = |value: usize| (std::mem::size_of::<u32>() + value + 1) as f64 * 8.0 / 7.0;
        (self.live.capacity() as f64 * entry(std::mem::size_of::<EdgeSamples>())
            + self.feed.capacity() as f64 * entry(std::mem::size_of::<FeedValue>()))
            as usize
            + self.profile.heap_bytes()
            + self.history.as_ref().map_or(0, ProfileHistory::heap_bytes)
            + self.way_index.as_ref().map_or(0, WayIndex::heap_bytes)
    }
}
