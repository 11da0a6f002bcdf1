//! Files beneath a directory that no path can leave: what a tenant controls (its data
//! directory, its report directory) is opened through a [`Jail`], never by path.
//!
//! A tenant that can write into its directory can plant a symbolic link (to another tenant's
//! file, to `/proc/self/environ`), a hard link, a FIFO that blocks its reader, or a mount.
//! Opening by path follows all of them. A [`Jail`] holds its directory open and resolves every
//! name beneath it with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)` (or, where the kernel has no `openat2`, one `O_NOFOLLOW` step per component
//! checked to stay on the same device), and [`Jail::open_file`] accepts only a regular file with
//! one link. The jail's own root is the operator's choice and is opened as given.
//!
//! Writes go through [`Jail::stage`]: a temporary file beside the target, synced, then renamed
//! over it ([`Staged::publish`]), so a reader sees the old file or the whole new one, and a
//! writer can stage several files before publishing any.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Why a name beneath a jail was refused or could not be used. Errors name the path relative to
/// the jail, never where the host keeps it.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("'{path}' leads through a symbolic link, a mount or outside its directory: refused")]
    Escapes { path: String },
    #[error("'{path}' is {kind}, not a regular file: refused")]
    NotRegular { path: String, kind: &'static str },
    #[error("'{path}' has {links} hard links: a file another name can reach is refused")]
    Linked { path: String, links: u64 },
    #[error("'{path}' does not exist")]
    NotFound { path: String },
    #[error("'{path}' already exists")]
    Exists { path: String },
    /// The system's error (its Display is that error's; the caller names the file).
    #[error("{error}")]
    Io { path: String, error: io::Error },
}

impl JailError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, JailError::NotFound { .. })
    }

    pub fn already_exists(&self) -> bool {
        matches!(self, JailError::Exists { .. })
    }

    fn from_errno(path: &Path, e: rustix::io::Errno) -> JailError {
        let path = shown(path);
        match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => JailError::Escapes { path },
            rustix::io::Errno::NOENT => JailError::NotFound { path },
            rustix::io::Errno::EXIST => JailError::Exists { path },
            e => JailError::Io {
                path,
                error: e.into(),
            },
        }
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// A directory held open; every name is resolved beneath it.
#[derive(Debug)]
pub struct Jail {
    dir: OwnedFd,
    dev: u64,
    /// Where it is, for the operator's messages only.
    root: PathBuf,
}

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

const READ: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    // A FIFO must not block the opener; regular files ignore it.
    .union(OFlags::NONBLOCK);
const DIRECTORY: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);
const BENEATH: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

impl Jail {
    /// Opens `root` (as given: it is the operator's path) as a jail.
    pub fn open(root: &Path) -> io::Result<Jail> {
        let dir = rustix::fs::open(root, DIRECTORY, Mode::empty())?;
        let dev = rustix::fs::fstat(&dir)?.st_dev;
        Ok(Jail {
            dir,
            dev,
            root: root.to_path_buf(),
        })
    }

    /// Opens `root`, creating it (and its parents) first if it does not exist.
    pub fn create(root: &Path) -> io::Result<Jail> {
        std::fs::create_dir_all(root)?;
        Jail::open(root)
    }

    /// Where the jail is on the host: for the operator, never for a tenant.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` resolved beneath the jail with `flags`: no symbolic link, `..`, magic link or
    /// mount crossing on the way.
    fn resolve(&self, rel: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd, JailError> {
        let parts = components(rel)?;
        match rustix::fs::openat2(&self.dir, rel, flags, mode, BENEATH) {
            Ok(fd) => Ok(fd),
            // No openat2 (Linux < 5.6, or a seccomp filter refusing it): walk instead.
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                self.walk(rel, &parts, flags, mode)
            }
            Err(e) => Err(JailError::from_errno(rel, e)),
        }
    }

    /// [`resolve`](Self::resolve) one component at a time, each opened without following a
    /// link and checked to be on the jail's device.
    fn walk(
        &self,
        rel: &Path,
        parts: &[&OsStr],
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, JailError> {
        let mut current: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let step_flags = if last {
                flags | OFlags::NOFOLLOW
            } else {
                DIRECTORY | OFlags::NOFOLLOW
            };
            let at = current.as_ref().map_or(self.dir.as_fd(), |fd| fd.as_fd());
            let fd = rustix::fs::openat(at, *part, step_flags, mode)
                .map_err(|e| step_error(at, part, rel, e))?;
            let stat = rustix::fs::fstat(&fd).map_err(|e| JailError::from_errno(rel, e))?;
            if stat.st_dev != self.dev {
                return Err(JailError::Escapes { path: shown(rel) });
            }
            current = Some(fd);
        }
        current.ok_or_else(|| JailError::NotFound { path: shown(rel) })
    }

    /// A regular file beneath the jail, for reading, with exactly one link.
    pub fn open_file(&self, rel: &Path) -> Result<File, JailError> {
        let fd = self.resolve(rel, READ, Mode::empty())?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| JailError::from_errno(rel, e))?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind != FileType::RegularFile {
            return Err(JailError::NotRegular {
                path: shown(rel),
                kind: kind_name(kind),
            });
        }
        if stat.st_nlink != 1 {
            return Err(JailError::Linked {
                path: shown(rel),
                links: stat.st_nlink as u64,
            });
        }
        // Back to blocking reads (a regular file never blocks anyway).
        rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| JailError::from_errno(rel, e))?;
        Ok(File::from(fd))
    }

    /// Whether `rel` is a regular file beneath the jail, reached through no link (its number
    /// of hard links is [`open_file`](Self::open_file)'s to check).
    pub fn is_file(&self, rel: &Path) -> bool {
        // openat2 refuses O_PATH beside any flag but these.
        match self.resolve(rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => rustix::fs::fstat(&fd)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile),
            Err(_) => false,
        }
    }

    /// The directory `rel` beneath this one, as a jail of its own.
    pub fn sub(&self, rel: &Path) -> Result<Jail, JailError> {
        let dir = self.resolve(rel, DIRECTORY, Mode::empty())?;
        Ok(Jail {
            dir,
            dev: self.dev,
            root: self.root.join(rel),
        })
    }

    /// The directory `rel` beneath this one, created (each missing component, 0755) if need
    /// be, as a jail of its own. Each component is made and entered without following a link.
    pub fn create_sub(&self, rel: &Path) -> Result<Jail, JailError> {
        let mut current: Option<OwnedFd> = None;
        for part in components(rel)? {
            let at = current.as_ref().map_or(self.dir.as_fd(), |fd| fd.as_fd());
            match rustix::fs::mkdirat(at, part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(JailError::from_errno(rel, e)),
            }
            let fd = rustix::fs::openat(at, part, DIRECTORY | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| step_error(at, part, rel, e))?;
            let stat = rustix::fs::fstat(&fd).map_err(|e| JailError::from_errno(rel, e))?;
            if stat.st_dev != self.dev {
                return Err(JailError::Escapes { path: shown(rel) });
            }
            current = Some(fd);
        }
        let dir = current.ok_or_else(|| JailError::Escapes { path: shown(rel) })?;
        Ok(Jail {
            dir,
            dev: self.dev,
            root: self.root.join(rel),
        })
    }

    /// The names directly in the jail's directory, sorted, with whether each is a regular
    /// file (links are not followed).
    pub fn names(&self) -> Result<Vec<(String, bool)>, JailError> {
        let dir =
            rustix::io::dup(&self.dir).map_err(|e| JailError::from_errno(Path::new("."), e))?;
        let mut listing = rustix::fs::Dir::read_from(&dir)
            .map_err(|e| JailError::from_errno(Path::new("."), e))?;
        listing.rewind();
        let mut names = Vec::new();
        while let Some(entry) = listing.read() {
            let entry = entry.map_err(|e| JailError::from_errno(Path::new("."), e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let regular = rustix::fs::statat(&self.dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile);
            names.push((name.to_string(), regular));
        }
        names.sort();
        Ok(names)
    }

    /// Writes `bytes` to a new temporary file in this directory (synced, mode `mode`), to be
    /// renamed over `name` by [`Staged::publish`]; dropped unpublished, it is removed.
    pub fn stage(&self, name: &str, bytes: &[u8], mode: u32) -> Result<Staged, JailError> {
        let target = Path::new(name);
        if components(target)?.len() != 1 {
            return Err(JailError::Escapes {
                path: name.to_string(),
            });
        }
        // A directory in the way would only fail the rename, after other files were published.
        if let Ok(stat) = rustix::fs::statat(&self.dir, name, AtFlags::SYMLINK_NOFOLLOW)
            && FileType::from_raw_mode(stat.st_mode) == FileType::Directory
        {
            return Err(JailError::NotRegular {
                path: name.to_string(),
                kind: "a directory",
            });
        }
        let temp = format!(
            ".tmp-{}-{}",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        );
        let dir = rustix::io::dup(&self.dir).map_err(|e| JailError::from_errno(target, e))?;
        let staged = Staged {
            dir,
            temp,
            name: name.to_string(),
            published: false,
        };
        write_new(&staged.dir, &staged.temp, name, bytes, mode)?;
        Ok(staged)
    }

    /// Replaces `name` in this directory with `bytes`, atomically.
    pub fn replace(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), JailError> {
        self.stage(name, bytes, mode)?.publish()
    }

    /// Creates file `name` in this directory with `bytes` (synced, mode `mode`), failing with
    /// [`JailError::Exists`] if anything has that name.
    pub fn create_new(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), JailError> {
        let target = Path::new(name);
        if components(target)?.len() != 1 {
            return Err(JailError::Escapes {
                path: name.to_string(),
            });
        }
        write_new(&self.dir, name, name, bytes, mode)?;
        rustix::fs::fsync(&self.dir).map_err(|e| JailError::from_errno(target, e))
    }

    /// Removes file `name` from this directory (a link is removed, never followed).
    pub fn remove(&self, name: &str) -> Result<(), JailError> {
        let target = Path::new(name);
        if components(target)?.len() != 1 {
            return Err(JailError::Escapes {
                path: name.to_string(),
            });
        }
        rustix::fs::unlinkat(&self.dir, name, AtFlags::empty())
            .map_err(|e| JailError::from_errno(target, e))
    }
}

impl AsFd for Jail {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

/// Creates `file` in `dir` (never through a link, failing if it exists) holding `bytes`, synced;
/// `shown` names it in errors.
fn write_new(
    dir: &OwnedFd,
    file: &str,
    shown: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), JailError> {
    let fd = rustix::fs::openat(
        dir,
        file,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .map_err(|e| JailError::from_errno(Path::new(shown), e))?;
    let mut file = File::from(fd);
    let io = |error| JailError::Io {
        path: shown.to_string(),
        error,
    };
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// A file written beside its target and not yet visible under the target's name.
#[derive(Debug)]
pub struct Staged {
    dir: OwnedFd,
    temp: String,
    name: String,
    published: bool,
}

impl Staged {
    /// Renames the staged file over its target (whatever is there, a link included, is
    /// replaced, never followed) and syncs the directory.
    pub fn publish(mut self) -> Result<(), JailError> {
        let target = Path::new(&self.name);
        rustix::fs::renameat(&self.dir, self.temp.as_str(), &self.dir, self.name.as_str())
            .map_err(|e| JailError::from_errno(target, e))?;
        self.published = true;
        rustix::fs::fsync(&self.dir).map_err(|e| JailError::from_errno(target, e))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            let _ = rustix::fs::unlinkat(&self.dir, self.temp.as_str(), AtFlags::empty());
        }
    }
}

/// Why opening `part` in `at` without following it failed: `O_NOFOLLOW | O_DIRECTORY` on a
/// link says "not a directory", which here means a link.
fn step_error(
    at: std::os::fd::BorrowedFd<'_>,
    part: &OsStr,
    rel: &Path,
    e: rustix::io::Errno,
) -> JailError {
    let is_link = rustix::fs::statat(at, part, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
    if is_link {
        JailError::Escapes { path: shown(rel) }
    } else {
        JailError::from_errno(rel, e)
    }
}

/// The components of a relative path, each a plain name: no root, `.` or `..`.
fn components(rel: &Path) -> Result<Vec<&OsStr>, JailError> {
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) if !part.as_bytes().contains(&0) => parts.push(part),
            _ => return Err(JailError::Escapes { path: shown(rel) }),
        }
    }
    if parts.is_empty() {
        return Err(JailError::Escapes { path: shown(rel) });
    }
    Ok(parts)
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a regular file",
    }
}

/// Which directory on the way to a private one is not private, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotPrivate(String);

/// Whether a directory at `path` is safe to trust with code or keys, as ssh's StrictModes
/// decides: it and every ancestor of its real path belong to root or to this user, and none is
/// writable by others, unless it is sticky (as `/tmp` is: others cannot move what is ours in
/// it). `Err` says which directory is not and why.
pub fn check_private_dir(path: &Path) -> Result<(), NotPrivate> {
    let not = |why: String| NotPrivate(why);
    let real = std::fs::canonicalize(path).map_err(|e| not(format!("{}: {e}", path.display())))?;
    let me = rustix::process::geteuid().as_raw();
    let mut at = Some(real.as_path());
    let mut first = true;
    while let Some(dir) = at {
        let stat = rustix::fs::stat(dir).map_err(|e| not(format!("{}: {e}", dir.display())))?;
        let owner = stat.st_uid;
        if owner != me && owner != 0 {
            return Err(not(format!(
                "{} belongs to uid {owner}, neither you (uid {me}) nor root",
                dir.display()
            )));
        }
        let mode = stat.st_mode & 0o7777;
        let sticky = mode & 0o1000 != 0;
        // The directory itself must be private; an ancestor may be a sticky shared one.
        if mode & 0o022 != 0 && (first || !sticky) {
            return Err(not(format!(
                "{} is writable by others (mode {:03o})",
                dir.display(),
                mode & 0o777
            )));
        }
        first = false;
        at = dir.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn jail() -> (tempfile::TempDir, Jail) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mine")).unwrap();
        std::fs::write(dir.path().join("mine/data.csv"), "a\n1\n").unwrap();
        std::fs::write(dir.path().join("secret.csv"), "s\n42\n").unwrap();
        let jail = Jail::open(&dir.path().join("mine")).unwrap();
        (dir, jail)
    }

    #[test]
    fn a_plain_file_opens() {
        let (_dir, jail) = jail();
        let text = std::io::read_to_string(jail.open_file(Path::new("data.csv")).unwrap()).unwrap();
        assert_eq!(text, "a\n1\n");
    }

    #[test]
    fn symlinks_dotdot_and_absolute_paths_are_refused() {
        let (dir, jail) = jail();
        symlink(
            dir.path().join("secret.csv"),
            dir.path().join("mine/link.csv"),
        )
        .unwrap();
        symlink("/proc/self/environ", dir.path().join("mine/env.csv")).unwrap();
        symlink(dir.path(), dir.path().join("mine/up")).unwrap();
        for rel in [
            "link.csv",
            "env.csv",
            "up/secret.csv",
            "../secret.csv",
            "/etc/passwd",
        ] {
            let err = jail.open_file(Path::new(rel)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "'{rel}' leads through a symbolic link, a mount or outside its directory: refused"
                )
            );
        }
    }

    #[test]
    fn the_walk_without_openat2_refuses_the_same() {
        let (dir, jail) = jail();
        symlink(
            dir.path().join("secret.csv"),
            dir.path().join("mine/link.csv"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("mine/sub")).unwrap();
        std::fs::write(dir.path().join("mine/sub/ok.csv"), "x").unwrap();
        let walk = |rel: &str| {
            let rel = Path::new(rel);
            jail.walk(rel, &components(rel).unwrap(), READ, Mode::empty())
        };
        assert!(matches!(walk("link.csv"), Err(JailError::Escapes { .. })));
        assert!(walk("sub/ok.csv").is_ok());
        assert!(walk("nothing.csv").unwrap_err().is_not_found());
    }

    #[test]
    fn hard_links_fifos_and_directories_are_not_files() {
        let (dir, jail) = jail();
        std::fs::hard_link(
            dir.path().join("secret.csv"),
            dir.path().join("mine/hard.csv"),
        )
        .unwrap();
        let fifo = dir.path().join("mine/fifo.csv");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("mine/dir.csv")).unwrap();
        assert_eq!(
            jail.open_file(Path::new("hard.csv"))
                .unwrap_err()
                .to_string(),
            "'hard.csv' has 2 hard links: a file another name can reach is refused"
        );
        assert_eq!(
            jail.open_file(Path::new("fifo.csv"))
                .unwrap_err()
                .to_string(),
            "'fifo.csv' is a FIFO, not a regular file: refused"
        );
        assert_eq!(
            jail.open_file(Path::new("dir.csv"))
                .unwrap_err()
                .to_string(),
            "'dir.csv' is a directory, not a regular file: refused"
        );
        assert!(!jail.is_file(Path::new("fifo.csv")));
        assert!(!jail.is_file(Path::new("dir.csv")));
        assert!(jail.is_file(Path::new("hard.csv")));
    }

    #[test]
    fn staged_files_replace_links_without_following_them() {
        let (dir, jail) = jail();
        symlink(
            dir.path().join("secret.csv"),
            dir.path().join("mine/latest.json"),
        )
        .unwrap();
        let staged = jail.stage("latest.json", b"{}", 0o644).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("secret.csv")).unwrap(),
            b"s\n42\n"
        );
        staged.publish().unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("secret.csv")).unwrap(),
            b"s\n42\n"
        );
        assert_eq!(
            std::fs::read(dir.path().join("mine/latest.json")).unwrap(),
            b"{}"
        );
        // Dropped unpublished: nothing left behind.
        drop(jail.stage("other.json", b"x", 0o644).unwrap());
        let names: Vec<String> = jail.names().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["data.csv", "latest.json"]);
    }

    #[test]
    fn subdirectories_are_created_beneath_and_never_through_a_link() {
        let (dir, jail) = jail();
        let made = jail.create_sub(Path::new("reports/daily")).unwrap();
        made.replace("t.parquet", b"x", 0o644).unwrap();
        assert!(dir.path().join("mine/reports/daily/t.parquet").is_file());
        symlink(dir.path(), dir.path().join("mine/evil")).unwrap();
        assert!(matches!(
            jail.create_sub(Path::new("evil/x")),
            Err(JailError::Escapes { .. })
        ));
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn private_dirs_must_be_ours_all_the_way_up() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        check_private_dir(&cache).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private_dir(&cache).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is writable by others (mode 777)"),
            "{err}"
        );
        // Sticky, as /tmp is: others cannot move our directory out of it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_private_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(
            check_private_dir(&cache).is_err(),
            "the directory itself must be private"
        );
    }
}
