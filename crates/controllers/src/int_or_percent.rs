//! Fields that are a number of pods or a percentage of a total (maxSurge, maxUnavailable),
//! resolved as Kubernetes resolves them.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// An absolute or percentage value of `total`, rounded up or down; `default` when unset.
pub fn scaled(value: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    match value {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => percent(s, total, round_up),
        None => percent(default, total, round_up),
    }
}

fn percent(s: &str, total: i32, round_up: bool) -> i32 {
    let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
    let scaled = p * total as i64;
    (if round_up { (scaled + 99) / 100 } else { scaled / 100 }) as i32
}
