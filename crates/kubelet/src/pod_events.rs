//! The Events the node agent records about a pod's containers (image pulls, creation and
//! start, kills, back-offs, failed probes and mounts), with the kubelet's reasons and
//! messages, so that `kubectl describe pod` and `kubectl events` tell the same story.

use k8s_openapi::api::core::v1::Pod;

/// The component events come from, as the kubelet names itself.
const COMPONENT: &str = "kubelet";

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

/// Records an event about `pod` in the background: an event is best effort, and must not
/// hold up the container it describes.
pub fn record(client: &kube::Client, pod: &Pod, type_: &'static str, reason: &'static str, message: String) {
    let (client, pod) = (client.clone(), pod.clone());
    tokio::spawn(async move { events::record(&client, COMPONENT, &pod, type_, reason, &message).await });
}

/// A duration as Go prints one in the kubelet's messages, to the millisecond: `350ms`,
/// `1.5s`, `2m3.25s`.
pub fn duration(d: std::time::Duration) -> String {
    let millis = d.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let (minutes, rest) = (millis / 60_000, millis % 60_000);
    let seconds = format!("{}.{:03}", rest / 1000, rest % 1000);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    if minutes > 0 { format!("{minutes}m{seconds}s") } else { format!("{seconds}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_go_prints_them() {
        assert_eq!(duration(Duration::from_millis(350)), "350ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(2000)), "2s");
        assert_eq!(duration(Duration::from_millis(123_250)), "2m3.25s");
    }
}
