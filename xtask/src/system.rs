//! The distribution packages the tests and the demo need, installed when missing, so that the
//! README's two commands work on a fresh machine: with `apt-get` as root (or through `sudo`
//! without a password), otherwise an error naming every package to install.

use std::path::Path;
use std::process::Command;

use crate::postgres::is_root;

/// A package and how to tell it is there.
struct Package {
    name: &'static str,
    present: fn() -> bool,
    why: &'static str,
}

fn command(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

fn postgresql_server() -> bool {
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("bin/initdb").is_file())
}

fn python_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What the demo needs: the interpreters the Python and JavaScript guests are built with.
const DEMO: &[Package] = &[
    Package {
        name: "nodejs",
        present: || command("node"),
        why: "JavaScript guests are built with ComponentizeJS",
    },
    Package {
        name: "npm",
        present: || command("npm"),
        why: "ComponentizeJS is installed with npm",
    },
    Package {
        name: "python3-venv",
        present: python_venv,
        why: "Python guests are built with componentize-py in a virtualenv",
    },
];

/// What the tests need besides: servers they start on loopback.
const TESTS: &[Package] = &[
    Package {
        name: "postgresql",
        present: postgresql_server,
        why: "the tests start a throwaway PostgreSQL cluster",
    },
    Package {
        name: "docker-registry",
        present: || command("docker-registry"),
        why: "the plugin tests pull from a real OCI registry (CNCF Distribution)",
    },
    Package {
        name: "prometheus-pushgateway",
        present: || command("prometheus-pushgateway"),
        why: "the metrics test pushes to a real Pushgateway",
    },
    Package {
        name: "chromium",
        present: || command("chromium"),
        why: "the night page is checked in a headless browser",
    },
];

/// Makes sure the demo's packages (and, for the tests, theirs) are installed.
pub fn ensure(tests: bool) -> Result<(), String> {
    let wanted = DEMO.iter().chain(if tests { TESTS } else { &[] });
    let missing: Vec<&Package> = wanted.filter(|p| !(p.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    for p in &missing {
        println!("xtask: {} is missing ({})", p.name, p.why);
    }
    let sudo = if is_root() {
        None
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some("sudo")
    } else {
        return Err(format!(
            "install the distribution packages {} (e.g. `sudo apt-get install {}`), then run \
             this again",
            names.join(", "),
            names.join(" ")
        ));
    };
    if !Path::new("/usr/bin/apt-get").is_file() {
        return Err(format!(
            "install the packages {} with your system's package manager, then run this again",
            names.join(", ")
        ));
    }
    let apt = |args: &[&str]| {
        let mut cmd = match sudo {
            Some(sudo) => {
                let mut c = Command::new(sudo);
                c.arg("apt-get");
                c
            }
            None => Command::new("apt-get"),
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = cmd.status().map_err(|e| format!("running apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`apt-get {}` failed ({status}): install {} by hand",
                args.join(" "),
                names.join(", ")
            ))
        }
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&names);
    apt(&install)
}
