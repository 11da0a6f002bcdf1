//! `sluice new`: a transform project in Rust, Python or JavaScript, ready in a plugin author's
//! first five minutes: it builds with one command (`./build.sh`) and runs under `sluice try`
//! against `sluice data seed` data.
//!
//! A project carries its own copy of the WIT and of the guest SDK of its language (the very
//! files in this repository, embedded at build time), so it builds outside a Sluice checkout and
//! stays on the world version it was made for.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The language of a new project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    /// As `sluice try --lang` takes it.
    pub fn flag(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "'{0}' cannot name a project: use 1-64 of a-z 0-9 _ -, starting with a letter (it names \
         the directory, the package and the .wasm file)"
    )]
    BadName(String),
    #[error("{0} already exists: choose another name, or remove it first")]
    Exists(PathBuf),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A project `create` wrote.
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    /// Every file written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// The component `./build.sh` produces, relative to `dir`.
    pub component: String,
}

const WIT: &str = include_str!("../../../wit/etl.wit");

const RUST_SDK: &[(&str, &str)] = &[
    (
        "sdk/src/lib.rs",
        include_str!("../../../guests/sdk/src/lib.rs"),
    ),
    (
        "sdk/src/fmt.rs",
        include_str!("../../../guests/sdk/src/fmt.rs"),
    ),
    (
        "sdk/src/json.rs",
        include_str!("../../../guests/sdk/src/json.rs"),
    ),
    (
        "sdk/src/arrow.rs",
        include_str!("../../../guests/sdk/src/arrow.rs"),
    ),
];
const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "src/sluice/__init__.py",
        include_str!("../../../guests/python/sluice/__init__.py"),
    ),
    (
        "src/sluice/_json.py",
        include_str!("../../../guests/python/sluice/_json.py"),
    ),
    (
        "src/sluice/fmt.py",
        include_str!("../../../guests/python/sluice/fmt.py"),
    ),
];
const JS_SDK: &[(&str, &str)] = &[
    (
        "src/sluice/index.js",
        include_str!("../../../guests/js/sluice/index.js"),
    ),
    (
        "src/sluice/json.js",
        include_str!("../../../guests/js/sluice/json.js"),
    ),
    (
        "src/sluice/fmt.js",
        include_str!("../../../guests/js/sluice/fmt.js"),
    ),
];

/// Whether `name` can name a project: a directory, a Rust crate, a Python file and an npm
/// package alike.
pub fn is_project_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Writes a new `lang` project `name` under `parent` (creating `parent/name`).
pub fn create(lang: Lang, name: &str, parent: &Path) -> Result<Project, ScaffoldError> {
    if !is_project_name(name) {
        return Err(ScaffoldError::BadName(
            sluice_sandbox::escape(&sluice_sandbox::cut(name, 80)).into_owned(),
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{language}}", lang.display())
            .replace("{{lang}}", lang.flag())
    };
    let mut files: Vec<(String, String, bool)> = vec![("wit/etl.wit".into(), WIT.into(), false)];
    let (layout, gitignore) = match lang {
        Lang::Rust => {
            files.push((
                "Cargo.toml".into(),
                fill(include_str!("../templates/rust/Cargo.toml")),
                false,
            ));
            files.push((
                "src/lib.rs".into(),
                fill(include_str!("../templates/rust/lib.rs")),
                false,
            ));
            files.push((
                "sdk/Cargo.toml".into(),
                include_str!("../templates/rust/sdk.Cargo.toml").into(),
                false,
            ));
            for (path, text) in RUST_SDK {
                // The SDK reads the WIT from the project's `wit/`, one level up.
                files.push((
                    path.to_string(),
                    text.replace("\"../../wit\"", "\"../wit\""),
                    false,
                ));
            }
            files.push((
                "build.sh".into(),
                fill(include_str!("../templates/rust/build.sh")),
                true,
            ));
            (
                "`src/lib.rs` is the transform; `sdk/` is Sluice's Rust guest SDK and `wit/` its \
                 world. Needs Rust with rustup (the script adds the `wasm32-wasip2` target).",
                "target/\n*.wasm\n",
            )
        }
        Lang::Python => {
            files.push((
                "requirements.txt".into(),
                include_str!("../../../guests/python/requirements.txt").into(),
                false,
            ));
            files.push((
                "src/app.py".into(),
                fill(include_str!("../templates/python/app.py")),
                false,
            ));
            for (path, text) in PYTHON_SDK {
                files.push((path.to_string(), text.to_string(), false));
            }
            files.push((
                "build.sh".into(),
                fill(include_str!("../templates/python/build.sh")),
                true,
            ));
            (
                "`src/app.py` is the transform; `src/sluice/` is Sluice's Python guest SDK and \
                 `wit/` its world. Needs python3 with venv: the script installs the pinned \
                 componentize-py into `.venv` (or uses `$SLUICE_VENV`). Only modules the \
                 transform imports at the top are in the component.",
                ".venv/\n__pycache__/\n*.wasm\n",
            )
        }
        Lang::Js => {
            let rename = |text: &str| {
                text.replace(
                    "\"name\": \"sluice-guests-js\"",
                    &format!("\"name\": \"{name}\""),
                )
            };
            files.push((
                "package.json".into(),
                rename(include_str!("../../../guests/js/package.json")),
                false,
            ));
            files.push((
                "package-lock.json".into(),
                rename(include_str!("../../../guests/js/package-lock.json")),
                false,
            ));
            files.push((
                "src/transform.js".into(),
                fill(include_str!("../templates/js/transform.js")),
                false,
            ));
            for (path, text) in JS_SDK {
                files.push((path.to_string(), text.to_string(), false));
            }
            files.push((
                "build.sh".into(),
                fill(include_str!("../templates/js/build.sh")),
                true,
            ));
            (
                "`src/transform.js` is the transform; `src/sluice/` is Sluice's JavaScript guest \
                 SDK (typed with JSDoc) and `wit/` its world. Needs Node.js 18+ and npm: the \
                 script installs the locked ComponentizeJS into `node_modules`.",
                "node_modules/\n*.wasm\n",
            )
        }
    };
    files.push((
        "README.md".into(),
        fill(include_str!("../templates/README.md")).replace("{{layout}}", layout),
        false,
    ));
    files.push((".gitignore".into(), gitignore.into(), false));

    let mut written = Vec::new();
    for (relative, text, executable) in files {
        let path = dir.join(&relative);
        let io = |source| ScaffoldError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
        if executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        written.push(PathBuf::from(relative));
    }
    Ok(Project {
        dir,
        files: written,
        component: format!("{name}.wasm"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_suit_every_toolchain() {
        for good in ["orders", "my-transform", "t2", "a_b"] {
            assert!(is_project_name(good), "{good}");
        }
        for bad in [
            "",
            "2fast",
            "-x",
            "My",
            "a b",
            "../x",
            "a/b",
            &"a".repeat(65),
        ] {
            assert!(!is_project_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_project_carries_its_world_and_sdk_and_refuses_to_overwrite() {
        let parent = tempfile::tempdir().unwrap();
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let name = format!("t-{}", lang.flag());
            let project = create(lang, &name, parent.path()).unwrap();
            let wit = std::fs::read_to_string(project.dir.join("wit/etl.wit")).unwrap();
            assert_eq!(wit, WIT);
            let build = project.dir.join("build.sh");
            let mode = std::fs::metadata(&build).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{lang:?}");
            let script = std::fs::read_to_string(&build).unwrap();
            assert!(script.contains(&format!("{name}.wasm")), "{script}");
            assert!(!script.contains("{{"), "{script}");
            let readme = std::fs::read_to_string(project.dir.join("README.md")).unwrap();
            assert!(readme.contains(&format!("--lang {}", lang.flag())));
            assert!(matches!(
                create(lang, &name, parent.path()),
                Err(ScaffoldError::Exists(_))
            ));
        }
        let sdk = std::fs::read_to_string(parent.path().join("t-rust/sdk/src/lib.rs")).unwrap();
        assert!(sdk.contains("path: \"../wit\""));
        let lock = std::fs::read_to_string(parent.path().join("t-js/package-lock.json")).unwrap();
        assert!(lock.contains("\"name\": \"t-js\"") && !lock.contains("sluice-guests-js"));
    }
}
