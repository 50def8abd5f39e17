//! What a Kubernetes component does with an event before it writes it, so that a burst of
//! events cannot swamp the API server:
//! - **Aggregation.** Once an object has had ten events from one source with the same type
//!   and reason but different messages within ten minutes, the rest are counted into one
//!   event whose message starts "(combined from similar events): ".
//! - **Deduplication.** An event the source already recorded (same object, reason and
//!   message) is not created again: its count goes up and its lastTimestamp moves.
//! - **Spam filtering.** Each source may record 25 events about one object in a burst, and
//!   one more every five minutes after that; the rest are dropped.
//!
//! These are client-go's defaults (its EventCorrelator), which every Kubernetes controller
//! and the kubelet use: a ReplicaSet that creates 10,000 pods shows 25 events, not 10,000.

use hashlink::LruCache;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Distinct messages of one kind of event on one object before they are combined.
const AGGREGATE_AFTER: usize = 10;
/// How long a run of similar events counts towards combining them.
const AGGREGATE_WINDOW: SignedDuration = SignedDuration::from_secs(600);
/// Events a source may record about one object at once...
const SPAM_BURST: f64 = 25.0;
/// ...and how fast that allowance refills: one event per five minutes.
const SPAM_REFILL_PER_SECOND: f64 = 1.0 / 300.0;
/// Entries each cache keeps; the least recently used go first.
const CACHE_ENTRIES: usize = 4096;

/// What to do with an event.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Dropped by the spam filter.
    Skip,
    /// A new event, to create.
    Create(Event),
    /// An event recorded before, to patch with its new count, lastTimestamp and message.
    /// If it is gone, it is created instead.
    Update(Event),
}

/// Message variants seen for one kind of event on one object, and when last.
struct Similar {
    messages: hashlink::LinkedHashSet<String>,
    last: Timestamp,
}

/// An event as last recorded: its name, how many times it happened, and since when.
#[derive(Clone)]
struct Recorded {
    name: String,
    count: i32,
    first: Option<Time>,
}

/// A token bucket: the spam filter's allowance for one source and object.
struct Allowance {
    tokens: f64,
    at: Timestamp,
}

pub struct Correlator {
    similar: LruCache<String, Similar>,
    recorded: LruCache<String, Recorded>,
    allowances: LruCache<String, Allowance>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator {
            similar: LruCache::new(CACHE_ENTRIES),
            recorded: LruCache::new(CACHE_ENTRIES),
            allowances: LruCache::new(CACHE_ENTRIES),
        }
    }
}

/// The source and the object: what the spam filter counts by.
fn source_and_object(event: &Event) -> String {
    let source = event.source.clone().unwrap_or_default();
    let object = &event.involved_object;
    [
        source.component.as_deref(),
        source.host.as_deref(),
        object.kind.as_deref(),
        object.namespace.as_deref(),
        object.name.as_deref(),
        object.uid.as_deref(),
        object.api_version.as_deref(),
    ]
    .map(Option::unwrap_or_default)
    .join("\u{0}")
}

/// The source, the object, the type and the reason: events that differ only by message.
fn kind_of_event(event: &Event) -> String {
    let mut key = source_and_object(event);
    for part in [&event.type_, &event.reason, &event.reporting_component, &event.reporting_instance] {
        key.push('\u{0}');
        key.push_str(part.as_deref().unwrap_or_default());
    }
    key
}

/// The same event: its kind, the object's field path and the message.
fn identity(event: &Event) -> String {
    let field_path = event.involved_object.field_path.as_deref().unwrap_or_default();
    let message = event.message.as_deref().unwrap_or_default();
    format!("{}\u{0}{field_path}\u{0}{message}", kind_of_event(event))
}

/// The name client-go gives an event: its object's name and the time in hex nanoseconds.
pub fn event_name(object_name: &str, now: Timestamp) -> String {
    format!("{object_name}.{:x}", now.as_nanosecond())
}

impl Correlator {
    /// Decides what to write for `event`, happening `now`.
    pub fn correlate(&mut self, event: Event, now: Timestamp) -> Decision {
        let (event, key) = self.aggregate(event, now);
        let event = self.observe(event, key);
        if self.allowed(&event, now) { self.decision(event) } else { Decision::Skip }
    }

    /// The event to record, and the key it is deduplicated by: the combined event once its
    /// kind has had many messages lately.
    fn aggregate(&mut self, event: Event, now: Timestamp) -> (Event, String) {
        let kind = kind_of_event(&event);
        let message = event.message.clone().unwrap_or_default();
        let fresh = || Similar { messages: Default::default(), last: now };
        let mut similar =
            self.similar.remove(&kind).filter(|s| now.duration_since(s.last) <= AGGREGATE_WINDOW).unwrap_or_else(fresh);
        similar.messages.replace(message.clone());
        similar.last = now;
        let combine = similar.messages.len() >= AGGREGATE_AFTER;
        if combine {
            // Keep the set from growing past the threshold, as client-go does.
            similar.messages.pop_front();
        }
        self.similar.insert(kind.clone(), similar);
        if !combine {
            let key = identity(&event);
            return (event, key);
        }
        let stamp = Some(Time(now));
        let combined = Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(event_name(event.involved_object.name.as_deref().unwrap_or_default(), now)),
                namespace: event.metadata.namespace.clone(),
                ..Default::default()
            },
            count: Some(1),
            first_timestamp: stamp.clone(),
            last_timestamp: stamp,
            message: Some(format!("(combined from similar events): {message}")),
            ..event
        };
        (combined, kind)
    }

    /// Counts `event` under `key`: a repeat takes the name and first time of the original.
    fn observe(&mut self, mut event: Event, key: String) -> Event {
        if let Some(before) = self.recorded.get(&key).cloned() {
            event.metadata.name = Some(before.name);
            event.first_timestamp = before.first;
            event.count = Some(before.count + 1);
        }
        let recorded = Recorded {
            name: event.metadata.name.clone().unwrap_or_default(),
            count: event.count.unwrap_or(1),
            first: event.first_timestamp.clone(),
        };
        self.recorded.insert(key, recorded);
        event
    }

    /// Whether the spam filter lets the event through, taking one from its allowance.
    fn allowed(&mut self, event: &Event, now: Timestamp) -> bool {
        let key = source_and_object(event);
        let mut allowance = self.allowances.remove(&key).unwrap_or(Allowance { tokens: SPAM_BURST, at: now });
        let elapsed = now.duration_since(allowance.at).as_secs_f64().max(0.0);
        allowance.tokens = (allowance.tokens + elapsed * SPAM_REFILL_PER_SECOND).min(SPAM_BURST);
        allowance.at = now;
        let allowed = allowance.tokens >= 1.0;
        if allowed {
            allowance.tokens -= 1.0;
        }
        self.allowances.insert(key, allowance);
        allowed
    }

    fn decision(&self, event: Event) -> Decision {
        if event.count.unwrap_or(1) > 1 { Decision::Update(event) } else { Decision::Create(event) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};

    fn event(object: &str, reason: &str, message: &str, now: Timestamp) -> Event {
        Event {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(event_name(object, now)),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("ReplicaSet".into()),
                name: Some(object.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{object}")),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Normal".into()),
            source: Some(EventSource { component: Some("replicaset-controller".into()), host: None }),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            ..Default::default()
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn message(decision: &Decision) -> (&'static str, String, i32) {
        match decision {
            Decision::Skip => ("skip", String::new(), 0),
            Decision::Create(e) => ("create", e.message.clone().unwrap(), e.count.unwrap()),
            Decision::Update(e) => ("update", e.message.clone().unwrap(), e.count.unwrap()),
        }
    }

    #[test]
    fn a_burst_about_one_object_is_combined_then_cut_at_25() {
        let mut c = Correlator::default();
        let decisions: Vec<_> = (0..40)
            .map(|i| {
                message(&c.correlate(event("web", "SuccessfulCreate", &format!("Created pod: p{i}"), at(0)), at(0)))
            })
            .collect();
        // Nine distinct messages are created as they are; from the tenth on they are counted
        // into one combined event; after 25 the rest are dropped.
        for (i, d) in decisions[..9].iter().enumerate() {
            assert_eq!(d, &("create", format!("Created pod: p{i}"), 1));
        }
        assert_eq!(decisions[9], ("create", "(combined from similar events): Created pod: p9".into(), 1));
        assert_eq!(decisions[10], ("update", "(combined from similar events): Created pod: p10".into(), 2));
        assert_eq!(decisions[24], ("update", "(combined from similar events): Created pod: p24".into(), 16));
        assert!(decisions[25..].iter().all(|d| d.0 == "skip"));
        // Another object has its own allowance.
        assert_eq!(message(&c.correlate(event("api", "SuccessfulCreate", "Created pod: q", at(0)), at(0))).0, "create");
        // Five minutes later one more gets through.
        let later = c.correlate(event("web", "SuccessfulCreate", "Created pod: p99", at(301)), at(301));
        assert_eq!(message(&later).0, "update");
        assert_eq!(
            message(&c.correlate(event("web", "SuccessfulCreate", "Created pod: p100", at(301)), at(301))).0,
            "skip"
        );
    }

    #[test]
    fn a_repeated_event_is_counted_on_the_first() {
        let mut c = Correlator::default();
        let Decision::Create(first) = c.correlate(event("web", "FailedCreate", "quota", at(0)), at(0)) else {
            panic!("the first is created")
        };
        let Decision::Update(again) = c.correlate(event("web", "FailedCreate", "quota", at(5)), at(5)) else {
            panic!("a repeat is an update")
        };
        assert_eq!(again.metadata.name, first.metadata.name);
        assert_eq!(
            (again.count, again.first_timestamp, again.last_timestamp),
            (Some(2), Some(Time(at(0))), Some(Time(at(5))))
        );
    }

    #[test]
    fn similar_events_far_apart_are_not_combined() {
        let mut c = Correlator::default();
        for i in 0..12 {
            let now = at(i * 700);
            let decision = c.correlate(event("web", "SuccessfulDelete", &format!("Deleted pod: p{i}"), now), now);
            assert_eq!(message(&decision), ("create", format!("Deleted pod: p{i}"), 1));
        }
    }
}
