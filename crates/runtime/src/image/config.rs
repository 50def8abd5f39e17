//! An image's config blob: how to run it, and the diff ids that tie its layers to it.

use super::ImageConfig;
use super::digest::hex_of;
use anyhow::{Context, bail};
use oci_spec::image::ImageConfiguration;

/// The run settings and the diff ids (bottom layer first) of a config blob.
pub(crate) fn parse(blob: &[u8]) -> anyhow::Result<(ImageConfig, Vec<String>)> {
    let parsed: ImageConfiguration = serde_json::from_slice(blob).context("the image config is not valid")?;
    let diff_ids = parsed.rootfs().diff_ids().clone();
    for diff_id in &diff_ids {
        hex_of(diff_id).context("the image config lists a bad diff id")?;
    }
    if parsed.os().to_string() != "linux" {
        bail!("the image is for {}, not linux", parsed.os());
    }
    let run = parsed.config().clone().unwrap_or_default();
    let config = ImageConfig {
        entrypoint: run.entrypoint().clone().unwrap_or_default(),
        cmd: run.cmd().clone().unwrap_or_default(),
        env: run.env().clone().unwrap_or_default(),
        working_dir: run.working_dir().clone().unwrap_or_default(),
        user: run.user().clone().unwrap_or_default(),
    };
    Ok((config, diff_ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIFF_ID: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

    #[test]
    fn reads_docker_style_configs() {
        let blob = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"], "Entrypoint": null, "Env": ["PATH=/bin"], "WorkingDir": "/w", "User": "65534"},
            "container_config": {"Cmd": ["ignored"]},
            "rootfs": {"type": "layers", "diff_ids": [DIFF_ID]},
        });
        let (config, diff_ids) = parse(&serde_json::to_vec(&blob).unwrap()).unwrap();
        assert_eq!(diff_ids, [DIFF_ID]);
        assert_eq!(
            config,
            ImageConfig {
                entrypoint: vec![],
                cmd: vec!["sh".into()],
                env: vec!["PATH=/bin".into()],
                working_dir: "/w".into(),
                user: "65534".into(),
            }
        );
    }

    #[test]
    fn refuses_bad_diff_ids_and_other_systems() {
        let blob = |os: &str, diff_id: &str| {
            serde_json::to_vec(&json!({
                "architecture": "amd64",
                "os": os,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }))
            .unwrap()
        };
        assert!(parse(&blob("linux", DIFF_ID)).is_ok());
        assert!(parse(&blob("linux", "sha256:../../etc")).is_err());
        assert!(format!("{:#}", parse(&blob("windows", DIFF_ID)).unwrap_err()).contains("windows"));
        assert!(parse(b"not json").is_err());
    }
}
