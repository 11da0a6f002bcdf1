//! Where a night leaves what it writes (reports, output files, shard summaries, audit chains): a
//! local directory, or a prefix in S3-compatible object storage, `s3://bucket/prefix`.
//!
//! Both keep the one promise the pipeline relies on: [`Location::put`] makes a file visible whole
//! or not at all, and replaces the previous one only once the new one is complete. On disk that
//! is a temporary file, fsync, rename and a directory fsync; on S3 it is one PUT, which S3 makes
//! visible atomically (a reader gets the old object or the new one, never part of either). A
//! write that fails leaves the previous file as it was on both.

pub mod object;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sluice_jail::Jail;

pub use object::ObjectLocation;

/// A file or folder on disk or in object storage.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Object(ObjectLocation),
}

impl Location {
    /// `text` from a configuration file: `s3://bucket/prefix`, or a path (relative ones are
    /// taken from `base`, the configuration's directory).
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Location> {
        if let Some((scheme, _)) = text.split_once("://") {
            return match scheme {
                "s3" => Ok(Location::Object(ObjectLocation::parse(text)?)),
                _ => anyhow::bail!(
                    "'{text}': Sluice keeps files on disk or in S3-compatible storage \
                     (s3://bucket/prefix), not '{scheme}://'"
                ),
            };
        }
        let path = Path::new(text);
        Ok(Location::Local(if path.is_absolute() {
            path.to_path_buf()
        } else {
            base.join(path)
        }))
    }

    /// The file or folder `name` inside this folder.
    pub fn child(&self, name: &str) -> Location {
        match self {
            Location::Local(path) => Location::Local(path.join(name)),
            Location::Object(object) => Location::Object(object.child(name)),
        }
    }

    /// The folder holding this one, if it has one.
    pub fn parent(&self) -> Option<Location> {
        match self {
            Location::Local(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| Location::Local(p.to_path_buf())),
            Location::Object(object) => object.parent().map(Location::Object),
        }
    }

    /// The path, when this is on disk.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(path) => Some(path),
            Location::Object(_) => None,
        }
    }

    /// The names of the files and folders directly in this folder, sorted; none if it does not
    /// exist.
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let mut names = match self {
            Location::Local(path) => match fs::read_dir(path) {
                Ok(entries) => entries
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("listing {}", path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).with_context(|| format!("listing {}", path.display())),
            },
            Location::Object(folder) => folder.names()?,
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Replaces this file with `bytes`, atomically (see the module documentation). Blocking.
    pub fn put(&self, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Location::Local(path) => write_atomically(path, &bytes),
            Location::Object(object) => object.put(bytes),
        }
    }

    /// This file's bytes; `None` if it does not exist. Blocking.
    pub fn get(&self) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Location::Local(path) => match fs::read(path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
            },
            Location::Object(object) => object.get(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => path.display().fmt(f),
            Location::Object(object) => object.fmt(f),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// As its path or URL (JSON summaries and results show where a file went).
impl serde::Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Local(path)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Local(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Local(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

/// Writes `bytes` to `dest` through a temporary file beside it, fsync and rename, then flushes
/// the directory, so a crash at any point leaves the old file or the new one: the jail's
/// [`replace`](sluice_jail::Jail::replace), Sluice's one atomic write.
fn write_atomically(dest: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} names no file", dest.display()))?;
    let jail = Jail::create(dir).with_context(|| format!("creating {}", dir.display()))?;
    jail.replace(name, bytes, 0o644)
        .with_context(|| format!("writing {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_paths_from_the_config_dir_and_s3_urls_as_they_are() {
        let base = Path::new("/etc/sluice");
        assert_eq!(
            Location::parse("reports", base).unwrap(),
            Location::Local("/etc/sluice/reports".into())
        );
        assert_eq!(
            Location::parse("/var/reports", base).unwrap(),
            Location::Local("/var/reports".into())
        );
        let s3 = Location::parse("s3://night-bucket/acme/reports/", base).unwrap();
        assert_eq!(s3.to_string(), "s3://night-bucket/acme/reports");
        assert_eq!(
            s3.child("bank").child("latest.json").to_string(),
            "s3://night-bucket/acme/reports/bank/latest.json"
        );
        assert_eq!(
            s3.parent().unwrap().child("runs").to_string(),
            "s3://night-bucket/acme/runs"
        );
        assert_eq!(
            Location::parse("gs://bucket/x", base)
                .unwrap_err()
                .to_string(),
            "'gs://bucket/x': Sluice keeps files on disk or in S3-compatible storage \
             (s3://bucket/prefix), not 'gs://'"
        );
        assert!(Location::parse("s3://", base).is_err());
    }

    #[test]
    fn put_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = Location::from(dir.path())
            .child("bank")
            .child("latest.json");
        file.put(b"{\"v\":1}".to_vec()).unwrap();
        file.put(b"{\"v\":2}".to_vec()).unwrap();
        assert_eq!(file.get().unwrap().unwrap(), b"{\"v\":2}");
        let names: Vec<_> = fs::read_dir(dir.path().join("bank"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["latest.json"]);
        assert_eq!(
            Location::from(dir.path()).child("none").get().unwrap(),
            None
        );
    }
}
