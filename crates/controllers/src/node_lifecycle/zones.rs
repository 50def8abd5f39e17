//! Zones (a node's `topology.kubernetes.io/region` and `zone` labels) and how disrupted each
//! is, which sets how fast its NoExecute taints may be added: at `--node-eviction-rate` while
//! the zone is healthy, at `--secondary-node-eviction-rate` once at least
//! `--unhealthy-zone-threshold` of it (and more than two nodes) is not Ready, or not at all
//! when that zone is no larger than `--large-cluster-size-threshold`. A zone with no Ready
//! node is evicted at the normal rate, unless every zone is in that state: then the fault is
//! more likely the control plane's view than the nodes, and evictions stop (the NoExecute
//! taints come off) until some node is Ready again.

use super::Settings;
use super::rate_limit::TaintQueue;
use k8s_openapi::api::core::v1::Node;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ZoneState {
    /// Seen, not yet judged.
    Initial,
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// The zone a node is in, as Kubernetes keys it: region and zone.
pub fn zone_of(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let label = |stable: &str, beta: &str| {
        let labels = labels?;
        labels.get(stable).or_else(|| labels.get(beta)).cloned()
    };
    let region = label("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region").unwrap_or_default();
    let zone = label("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone").unwrap_or_default();
    if region.is_empty() && zone.is_empty() { String::new() } else { format!("{region}:\u{0}:{zone}") }
}

/// A zone's state from whether each of its nodes is Ready.
pub fn state_of(ready: &[bool], unhealthy_threshold: f64) -> ZoneState {
    let not_ready = ready.iter().filter(|r| !**r).count();
    if not_ready > 0 && not_ready == ready.len() {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / ready.len() as f64 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// What a pass over the zones asks of the controller besides new rates.
#[derive(Debug, PartialEq)]
pub enum Transition {
    None,
    /// Every zone lost all its Ready nodes: take the NoExecute taints off every node.
    EnterFullDisruption,
    /// Some node is Ready again after that: give every node a fresh grace period.
    ExitFullDisruption,
}

/// Every zone's state and taint queue.
#[derive(Default)]
pub struct Zones {
    states: HashMap<String, ZoneState>,
    queues: HashMap<String, TaintQueue>,
}

fn rate(settings: &Settings, state: ZoneState, size: usize) -> f64 {
    match state {
        ZoneState::PartialDisruption if size > settings.large_cluster_size_threshold => {
            settings.secondary_eviction_rate
        }
        ZoneState::PartialDisruption => 0.0,
        _ => settings.eviction_rate,
    }
}

impl Zones {
    /// The zone's taint queue, made when the zone is first seen.
    pub fn queue(&mut self, zone: &str, settings: &Settings, now: Instant) -> &mut TaintQueue {
        if !self.states.contains_key(zone) {
            self.states.insert(zone.to_string(), ZoneState::Initial);
        }
        self.queues.entry(zone.to_string()).or_insert_with(|| TaintQueue::new(settings.eviction_rate, now))
    }

    pub fn names(&self) -> Vec<String> {
        self.queues.keys().cloned().collect()
    }

    /// Judges every zone from the readiness of its nodes and sets its rate.
    pub fn update(&mut self, ready: &HashMap<String, Vec<bool>>, settings: &Settings, now: Instant) -> Transition {
        let judged: HashMap<&String, ZoneState> =
            ready.iter().map(|(zone, r)| (zone, state_of(r, settings.unhealthy_zone_threshold))).collect();
        let all_are_full = judged.values().all(|s| *s == ZoneState::FullDisruption);
        for zone in ready.keys() {
            self.queue(zone, settings, now);
        }
        self.states.retain(|zone, _| ready.contains_key(zone));
        let all_were_full = self.states.values().all(|s| *s == ZoneState::FullDisruption);
        if all_are_full && all_were_full {
            return Transition::None;
        }
        if all_are_full {
            for (zone, state) in &mut self.states {
                *state = ZoneState::FullDisruption;
                if let Some(queue) = self.queues.get_mut(zone) {
                    queue.set_rate(0.0, now);
                }
            }
            return Transition::EnterFullDisruption;
        }
        for (zone, state) in &mut self.states {
            let new = judged[zone];
            if *state != new || all_were_full {
                *state = new;
                if let Some(queue) = self.queues.get_mut(zone) {
                    queue.set_rate(rate(settings, new, ready[zone].len()), now);
                }
            }
        }
        if all_were_full { Transition::ExitFullDisruption } else { Transition::None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn zones_are_keyed_by_region_and_zone() {
        let node =
            |labels| serde_json::from_value::<Node>(json!({"metadata": {"name": "n", "labels": labels}})).unwrap();
        assert_eq!(zone_of(&node(json!({}))), "");
        assert_eq!(zone_of(&node(json!({"topology.kubernetes.io/zone": "a"}))), ":\u{0}:a");
        assert_eq!(
            zone_of(&node(
                json!({"failure-domain.beta.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "a"})
            )),
            "r:\u{0}:a"
        );
    }

    #[test]
    fn a_zone_is_disrupted_by_its_share_of_unready_nodes() {
        assert_eq!(state_of(&[false, false], 0.55), ZoneState::FullDisruption);
        assert_eq!(state_of(&[false, false, true], 0.55), ZoneState::Normal);
        assert_eq!(state_of(&[false, false, false, true], 0.55), ZoneState::PartialDisruption);
        assert_eq!(state_of(&[false, false, false, true, true, true], 0.55), ZoneState::Normal);
        assert_eq!(state_of(&[true], 0.55), ZoneState::Normal);
    }

    fn zones(ready: &[(&str, &[bool])]) -> HashMap<String, Vec<bool>> {
        ready.iter().map(|(z, r)| (z.to_string(), r.to_vec())).collect()
    }

    #[test]
    fn evictions_stop_when_every_zone_is_down_and_resume_when_one_recovers() {
        let settings = Settings::default();
        let now = Instant::now();
        let mut all = Zones::default();
        assert_eq!(all.update(&zones(&[("a", &[true, true]), ("b", &[true])]), &settings, now), Transition::None);
        // One zone down entirely: evicted at the normal rate.
        assert_eq!(all.update(&zones(&[("a", &[false, false]), ("b", &[true])]), &settings, now), Transition::None);
        all.queue("a", &settings, now).add("a-0", now);
        assert_eq!(all.queue("a", &settings, now).next(now).as_deref(), Some("a-0"));
        // Every zone down: nothing more is tainted.
        assert_eq!(
            all.update(&zones(&[("a", &[false, false]), ("b", &[false])]), &settings, now),
            Transition::EnterFullDisruption
        );
        assert_eq!(all.update(&zones(&[("a", &[false, false]), ("b", &[false])]), &settings, now), Transition::None);
        all.queue("a", &settings, now).add("a-1", now);
        assert_eq!(all.queue("a", &settings, now).next(now + Duration::from_secs(3600)), None);
        assert_eq!(
            all.update(&zones(&[("a", &[false, false]), ("b", &[true])]), &settings, now),
            Transition::ExitFullDisruption
        );
        assert_eq!(all.queue("a", &settings, now).next(now).as_deref(), Some("a-1"));
    }

    #[test]
    fn a_partly_disrupted_small_zone_stops_and_a_large_one_slows() {
        let settings = Settings::default();
        let now = Instant::now();
        let mut small = vec![false; 3];
        small.push(true);
        let mut all = Zones::default();
        all.update(&zones(&[("a", &small)]), &settings, now);
        all.queue("a", &settings, now).add("a-0", now);
        assert_eq!(all.queue("a", &settings, now).next(now + Duration::from_secs(3600)), None);
        let mut large = vec![false; 60];
        large.push(true);
        let mut all = Zones::default();
        all.update(&zones(&[("a", &large)]), &settings, now);
        all.queue("a", &settings, now).add("a-0", now);
        all.queue("a", &settings, now).add("a-1", now);
        assert_eq!(all.queue("a", &settings, now).next(now).as_deref(), Some("a-0"));
        // 0.01 per second: the next one after 100 s.
        assert_eq!(all.queue("a", &settings, now).next(now + Duration::from_secs(99)), None);
        assert_eq!(all.queue("a", &settings, now).next(now + Duration::from_secs(101)).as_deref(), Some("a-1"));
    }
}
