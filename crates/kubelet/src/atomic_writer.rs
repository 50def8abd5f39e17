//! Writes a volume's files (configMap, secret, downwardAPI, projected) as the kubelet's
//! atomic writer does, so that a container never reads a half-updated set: the files go into
//! a fresh timestamped folder, a `..data` symlink is swapped to it in one rename, and each
//! visible name is a symlink through `..data`.
//!
//! ```text
//! volume/..2026_11_24_13_20_01.123456789/key    the files
//! volume/..data -> ..2026_11_24_13_20_01.123456789
//! volume/key -> ..data/key
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of the payload: its content and mode.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub content: Vec<u8>,
    pub mode: u32,
}

/// Whether `dir` already holds exactly this payload.
fn unchanged(dir: &Path, payload: &BTreeMap<String, File>) -> bool {
    let data = dir.join(DATA);
    let Ok(current) = std::fs::read_link(&data) else { return false };
    let current = dir.join(current);
    let mut found = 0;
    for entry in walk(&current) {
        found += 1;
        let relative = entry.strip_prefix(&current).unwrap_or(&entry).to_string_lossy().into_owned();
        let Some(file) = payload.get(&relative) else { return false };
        let same_mode = std::fs::metadata(&entry).is_ok_and(|m| m.permissions().mode() & 0o7777 == file.mode);
        if !same_mode || std::fs::read(&entry).ok().as_deref() != Some(&file.content[..]) {
            return false;
        }
    }
    found == payload.len()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// Makes `dir` show `payload`, swapping it in at once. Returns whether anything changed.
pub fn write(dir: &Path, payload: &BTreeMap<String, File>) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir)?;
    if unchanged(dir, payload) {
        return Ok(false);
    }
    let stamp = chrono::Utc::now().format("..%Y_%m_%d_%H_%M_%S.%f").to_string();
    let fresh = dir.join(&stamp);
    for (name, file) in payload {
        let path = fresh.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.content)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
    }
    std::fs::create_dir_all(&fresh)?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    // The visible names: one symlink per top-level entry, through ..data.
    let top: std::collections::BTreeSet<String> =
        payload.keys().map(|k| k.split('/').next().unwrap_or(k).to_string()).collect();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !top.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(name), &link)?;
        }
    }
    if let Some(old) = old.filter(|o| o.as_os_str() != stamp.as_str()) {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(pairs: &[(&str, &str)]) -> BTreeMap<String, File> {
        pairs.iter().map(|(k, v)| (k.to_string(), File { content: v.as_bytes().to_vec(), mode: 0o644 })).collect()
    }

    #[test]
    fn updates_swap_in_whole_and_drop_removed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let volume = dir.path().join("config");
        assert!(write(&volume, &payload(&[("a", "1"), ("sub/b", "2")])).unwrap());
        assert_eq!(std::fs::read_to_string(volume.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(volume.join("sub/b")).unwrap(), "2");
        assert!(
            !write(&volume, &payload(&[("a", "1"), ("sub/b", "2")])).unwrap(),
            "an unchanged payload is not rewritten"
        );
        assert!(write(&volume, &payload(&[("a", "3")])).unwrap());
        assert_eq!(std::fs::read_to_string(volume.join("a")).unwrap(), "3");
        assert!(!volume.join("sub").exists());
        let folders = std::fs::read_dir(&volume)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir() && !e.path().is_symlink())
            .count();
        assert_eq!(folders, 1, "the old timestamped folder is gone");
    }
}
