//! The filter and score plugins, one file each.

pub mod node_affinity;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod taint_toleration;
