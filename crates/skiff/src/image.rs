//! `skiff image`: the node's image store, from the command line. Images come in as archives
//! (`docker save`, OCI image layouts) until the agent pulls from registries.
//!
//! ```text
//! skiff image import busybox.tar
//! skiff image ls
//! skiff image rm busybox
//! ```

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use runtime::image::{Image, ImageStore, reference::Reference};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Where the cluster keeps its state [default: /var/lib/skiff for root, else ~/.local/share/skiff]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Import the images of an archive: `docker save` output or an OCI image layout tar
    /// (`skopeo copy ... oci-archive:FILE`), plain or gzip'd.
    Import { file: PathBuf },
    /// List the images.
    #[command(alias = "list")]
    Ls,
    /// Remove images by name or id: a name goes; an image goes with its last name.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
    },
}

/// The images of this node, under the agent's folder of the data directory.
fn store_root(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(crate::server::default_data_dir);
    let root = store_root(&data_dir);
    let store = ImageStore::open(&root).with_context(|| {
        format!(
            "cannot open the image store in {}: run as the user the agent runs as, or pass --data-dir",
            root.display()
        )
    })?;
    match args.command {
        ImageCommand::Import { file } => import(&store, &file),
        ImageCommand::Ls => {
            print!("{}", table(&store.list()?));
            Ok(())
        }
        ImageCommand::Rm { references } => remove(&store, &references),
    }
}

fn import(store: &ImageStore, file: &Path) -> anyhow::Result<()> {
    let images = store.import(file).context("the archive was not imported (nothing of it was kept)")?;
    for image in images {
        let names = if image.names.is_empty() { "<none>".to_string() } else { image.names.join(", ") };
        println!("Imported {names} ({})", short_id(&image.id));
    }
    Ok(())
}

fn remove(store: &ImageStore, references: &[String]) -> anyhow::Result<()> {
    let mut failed = 0;
    for reference in references {
        match store.remove(reference) {
            Ok(image) if image.names.is_empty() => println!("Deleted: {}", image.id),
            Ok(image) => image.names.iter().for_each(|name| println!("Deleted: {name}")),
            Err(e) => {
                eprintln!("skiff: cannot remove {reference}: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} images were not removed", references.len());
    }
    Ok(())
}

/// The first 13 hex digits of an id, as `crictl images` shows them.
fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(13)]
}

/// A table like `crictl images`: one row per name (one `<none>` row for an unnamed image).
fn table(images: &[Image]) -> String {
    let mut rows = vec![["IMAGE".to_string(), "TAG".to_string(), "IMAGE ID".to_string(), "SIZE".to_string()]];
    for image in images {
        let id = short_id(&image.id).to_string();
        let size = human_size(image.size);
        if image.names.is_empty() {
            rows.push(["<none>".into(), "<none>".into(), id.clone(), size.clone()]);
        }
        for name in &image.names {
            let (repository, tag) = match name.parse::<Reference>() {
                Ok(r) => (r.name(), r.tag.unwrap_or_else(|| "<none>".into())),
                Err(_) => (name.clone(), "<none>".into()),
            };
            rows.push([repository, tag, id.clone(), size.clone()]);
        }
    }
    let widths: Vec<usize> = (0..4).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// Decimal units with four significant digits, as Docker's and crictl's `HumanSize` print.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    // %.4g: four significant digits, trailing zeros dropped.
    let decimals = match size {
        s if s >= 100.0 => 1,
        s if s >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{size:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_crictls() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(772_800), "772.8kB");
        assert_eq!(human_size(2_217_000), "2.217MB");
        assert_eq!(human_size(4_261_234), "4.261MB");
        assert_eq!(human_size(31_230_000), "31.23MB");
        assert_eq!(human_size(1_500_000_000), "1.5GB");
    }

    #[test]
    fn lists_one_row_per_name() {
        let image = |id: &str, names: &[&str], size| Image {
            id: format!("sha256:{id}"),
            names: names.iter().map(|n| n.to_string()).collect(),
            repo_digests: vec![],
            size,
            diff_ids: vec![],
            config: Default::default(),
        };
        let images = [
            image("0123456789abcdef0123", &["docker.io/library/busybox:latest", "localhost:5000/app:v1"], 2_217_000),
            image("fedcba98765432100000", &[], 1000),
        ];
        let want = "\
IMAGE                       TAG      IMAGE ID        SIZE
docker.io/library/busybox   latest   0123456789abc   2.217MB
localhost:5000/app          v1       0123456789abc   2.217MB
<none>                      <none>   fedcba9876543   1kB
";
        assert_eq!(table(&images), want);
    }
}
