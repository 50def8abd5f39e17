//! Scheduling profiles, read from a file in the shape of kube-scheduler's
//! KubeSchedulerConfiguration (`kubescheduler.config.k8s.io/v1`): per profile, its
//! schedulerName, which plugins are enabled or disabled (`"*"` for all) at the filter and
//! score extension points or at `multiPoint`, score weights, percentageOfNodesToScore, and
//! NodeResourcesFit's scoring strategy.
//!
//! ```yaml
//! apiVersion: kubescheduler.config.k8s.io/v1
//! kind: KubeSchedulerConfiguration
//! profiles:
//! - schedulerName: bin-packing
//!   plugins:
//!     score:
//!       disabled: [{name: NodeResourcesBalancedAllocation}]
//!       enabled: [{name: NodeResourcesFit, weight: 5}]
//!   pluginConfig:
//!   - name: NodeResourcesFit
//!     args: {scoringStrategy: {type: MostAllocated}}
//! ```

use crate::framework::{Filter, Score};
use crate::plugins::*;
use anyhow::{Context, bail};
use serde::Deserialize;

/// One scheduler profile: the plugins it runs, in order, and how it samples nodes.
pub struct Profile {
    pub scheduler_name: String,
    pub filters: Vec<Box<dyn Filter>>,
    pub scores: Vec<(Box<dyn Score>, i64)>,
    /// Percentage of nodes to find feasible before scoring; None for kube-scheduler's
    /// adaptive default.
    pub percentage_of_nodes_to_score: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    api_version: Option<String>,
    kind: Option<String>,
    percentage_of_nodes_to_score: Option<u32>,
    #[serde(default)]
    profiles: Vec<ProfileFile>,
    /// Accepted and ignored: leader election is configured on the command line.
    #[serde(default)]
    leader_election: Option<serde_yaml::Value>,
    #[serde(default)]
    parallelism: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileFile {
    scheduler_name: Option<String>,
    percentage_of_nodes_to_score: Option<u32>,
    #[serde(default)]
    plugins: Plugins,
    #[serde(default)]
    plugin_config: Vec<PluginConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Plugins {
    #[serde(default)]
    multi_point: PluginSet,
    #[serde(default)]
    filter: PluginSet,
    #[serde(default)]
    score: PluginSet,
    #[serde(default)]
    pre_filter: PluginSet,
    #[serde(default)]
    pre_score: PluginSet,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PluginSet {
    #[serde(default)]
    enabled: Vec<PluginRef>,
    #[serde(default)]
    disabled: Vec<PluginRef>,
}

#[derive(Deserialize)]
struct PluginRef {
    name: String,
    weight: Option<i64>,
}

#[derive(Deserialize)]
struct PluginConfig {
    name: String,
    #[serde(default)]
    args: serde_yaml::Value,
}

const FILTERS: [&str; 7] = [
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeAffinity",
    "NodePorts",
    "NodeResourcesFit",
    "PodTopologySpread",
];
const MORE_FILTERS: [&str; 3] = ["InterPodAffinity", "VolumeRestrictions", "VolumeBinding"];
/// kube-scheduler's default score plugins and weights.
const SCORES: [(&str, i64); 7] = [
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
];

fn filter_plugin(name: &str, strategy: node_resources_fit::Strategy) -> Option<Box<dyn Filter>> {
    Some(match name {
        "NodeUnschedulable" => Box::new(node_unschedulable::NodeUnschedulable),
        "NodeName" => Box::new(node_name::NodeName),
        "TaintToleration" => Box::new(taint_toleration::TaintToleration),
        "NodeAffinity" => Box::new(node_affinity::NodeAffinity),
        "NodePorts" => Box::new(node_ports::NodePorts),
        "NodeResourcesFit" => Box::new(node_resources_fit::NodeResourcesFit { strategy }),
        "PodTopologySpread" => Box::new(pod_topology_spread::PodTopologySpread),
        "InterPodAffinity" => Box::new(inter_pod_affinity::InterPodAffinity),
        "VolumeRestrictions" => Box::new(volumes::VolumeRestrictions),
        "VolumeBinding" => Box::new(volumes::VolumeBinding),
        _ => return None,
    })
}

fn score_plugin(name: &str, strategy: node_resources_fit::Strategy) -> Option<Box<dyn Score>> {
    Some(match name {
        "TaintToleration" => Box::new(taint_toleration::TaintToleration),
        "NodeAffinity" => Box::new(node_affinity::NodeAffinity),
        "NodeResourcesFit" => Box::new(node_resources_fit::NodeResourcesFit { strategy }),
        "PodTopologySpread" => Box::new(pod_topology_spread::PodTopologySpread),
        "InterPodAffinity" => Box::new(inter_pod_affinity::InterPodAffinity),
        "NodeResourcesBalancedAllocation" => Box::new(balanced_allocation::BalancedAllocation),
        "ImageLocality" => Box::new(image_locality::ImageLocality),
        _ => return None,
    })
}

/// The default profile: every plugin, kube-scheduler's weights, adaptive sampling.
pub fn default_profiles() -> Vec<Profile> {
    vec![build(ProfileFile::default(), None).expect("the default profile is valid")]
}

/// Reads profiles from a KubeSchedulerConfiguration file.
pub fn load(path: &std::path::Path) -> anyhow::Result<Vec<Profile>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in the scheduler configuration {}", path.display()))
}

pub fn parse(text: &str) -> anyhow::Result<Vec<Profile>> {
    let file: File = serde_yaml::from_str(text)?;
    if let Some(v) = &file.api_version
        && v != "kubescheduler.config.k8s.io/v1"
    {
        bail!("apiVersion {v:?} is not kubescheduler.config.k8s.io/v1");
    }
    if let Some(k) = &file.kind
        && k != "KubeSchedulerConfiguration"
    {
        bail!("kind {k:?} is not KubeSchedulerConfiguration");
    }
    let _ = (&file.leader_election, file.parallelism);
    let mut profiles = file.profiles;
    if profiles.is_empty() {
        profiles.push(ProfileFile::default());
    }
    let mut out: Vec<Profile> = Vec::new();
    for p in profiles {
        let profile = build(p, file.percentage_of_nodes_to_score)?;
        if out.iter().any(|o| o.scheduler_name == profile.scheduler_name) {
            bail!("two profiles have schedulerName {:?}", profile.scheduler_name);
        }
        out.push(profile);
    }
    Ok(out)
}

fn check_percentage(p: Option<u32>) -> anyhow::Result<Option<u32>> {
    match p {
        Some(p) if p > 100 => bail!("percentageOfNodesToScore {p} is not between 0 and 100"),
        Some(0) | None => Ok(None),
        Some(p) => Ok(Some(p)),
    }
}

fn build(p: ProfileFile, global_percentage: Option<u32>) -> anyhow::Result<Profile> {
    let mut strategy = node_resources_fit::Strategy::LeastAllocated;
    for c in &p.plugin_config {
        match c.name.as_str() {
            "NodeResourcesFit" => {
                if let Some(kind) = c.args.get("scoringStrategy").and_then(|s| s.get("type")) {
                    strategy = serde_yaml::from_value(kind.clone()).map_err(|_| {
                        anyhow::anyhow!(
                            "NodeResourcesFit scoringStrategy type {kind:?} is not LeastAllocated or MostAllocated"
                        )
                    })?;
                }
            }
            name if filter_plugin(name, strategy).is_some() || score_plugin(name, strategy).is_some() => {}
            name => bail!("pluginConfig names unknown plugin {name:?}"),
        }
    }
    let plugins = &p.plugins;
    let disabled = |set: &PluginSet, name: &str| set.disabled.iter().any(|d| d.name == "*" || d.name == name);
    let mut filters = Vec::new();
    for name in FILTERS.iter().chain(&MORE_FILTERS) {
        let off = [&plugins.multi_point, &plugins.filter, &plugins.pre_filter].iter().any(|s| disabled(s, name));
        if !off {
            filters.push(filter_plugin(name, strategy).expect("known filter"));
        }
    }
    let mut scores: Vec<(Box<dyn Score>, i64)> = Vec::new();
    for (name, weight) in SCORES {
        let off = [&plugins.multi_point, &plugins.score, &plugins.pre_score].iter().any(|s| disabled(s, name));
        if !off {
            scores.push((score_plugin(name, strategy).expect("known score"), weight));
        }
    }
    for set in [&plugins.multi_point, &plugins.filter, &plugins.pre_filter] {
        for e in &set.enabled {
            let plugin = filter_plugin(&e.name, strategy);
            if plugin.is_none() && score_plugin(&e.name, strategy).is_none() {
                bail!("unknown plugin {:?}", e.name);
            }
            if let Some(plugin) = plugin
                && !filters.iter().any(|f| f.name() == e.name)
            {
                filters.push(plugin);
            }
        }
    }
    for set in [&plugins.multi_point, &plugins.score] {
        for e in &set.enabled {
            let weight = e.weight.unwrap_or(1);
            if !(0..=100).contains(&weight) {
                bail!("plugin {} has weight {weight}; weights go from 0 to 100", e.name);
            }
            match score_plugin(&e.name, strategy) {
                Some(plugin) => match scores.iter_mut().find(|(s, _)| s.name() == e.name) {
                    Some(existing) => existing.1 = e.weight.unwrap_or(existing.1),
                    None => scores.push((plugin, weight)),
                },
                None if filter_plugin(&e.name, strategy).is_some() => {}
                None => bail!("unknown plugin {:?}", e.name),
            }
        }
    }
    Ok(Profile {
        scheduler_name: p.scheduler_name.unwrap_or_else(|| crate::DEFAULT_SCHEDULER.to_string()),
        filters,
        scores,
        percentage_of_nodes_to_score: check_percentage(p.percentage_of_nodes_to_score.or(global_percentage))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Profile) -> (Vec<&str>, Vec<(&str, i64)>) {
        (p.filters.iter().map(|f| f.name()).collect(), p.scores.iter().map(|(s, w)| (s.name(), *w)).collect())
    }

    #[test]
    fn the_default_profile_runs_every_plugin_with_kube_schedulers_weights() {
        let profiles = default_profiles();
        let (filters, scores) = names(&profiles[0]);
        assert_eq!(profiles[0].scheduler_name, "default-scheduler");
        assert_eq!(filters.len(), 10);
        assert!(scores.contains(&("TaintToleration", 3)));
        assert!(scores.contains(&("ImageLocality", 1)));
    }

    #[test]
    fn profiles_disable_enable_and_weigh_plugins() {
        let profiles = parse(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 30\n\
             profiles:\n- schedulerName: default-scheduler\n- schedulerName: packer\n  plugins:\n    score:\n      \
             disabled: [{name: '*'}]\n      enabled: [{name: NodeResourcesFit, weight: 5}]\n    filter:\n      \
             disabled: [{name: NodePorts}]\n  pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: MostAllocated}}\n",
        )
        .unwrap();
        assert_eq!(profiles.len(), 2);
        assert_eq!(profiles[0].percentage_of_nodes_to_score, Some(30));
        let (filters, scores) = names(&profiles[1]);
        assert!(!filters.contains(&"NodePorts"));
        assert_eq!(scores, [("NodeResourcesFit", 5)]);
    }

    #[test]
    fn mistakes_are_explained() {
        let err = |text: &str| parse(text).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            err("profiles:\n- plugins:\n    score:\n      enabled: [{name: Nope}]\n")
                .contains("unknown plugin \"Nope\"")
        );
        assert!(err("percentageOfNodesToScore: 101\n").contains("between 0 and 100"));
        assert!(
            err("profiles:\n- pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: Fancy}}\n")
                .contains("LeastAllocated or MostAllocated")
        );
        assert!(err("kind: Other\n").contains("KubeSchedulerConfiguration"));
        assert!(err("profiles:\n- schedulerName: a\n- schedulerName: a\n").contains("two profiles"));
    }
}
