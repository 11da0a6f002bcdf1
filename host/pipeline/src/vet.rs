//! Vetting a plugin before the night: is it a component, what was it written in, does every
//! import resolve against the linker its tenant gets, how big is it, and what does compiling
//! it cost. The night loads every plugin through [`vet`], so a plugin `sluice vet` accepts
//! does not fail at load, and a refusal reads the same in both.

use std::time::Duration;

use serde::Serialize;
use sluice_sandbox::{Sandbox, Transform};
use wasmparser::{Parser, Payload};

use crate::config::Language;
use crate::outcome::PluginLoad;

/// What vetting found, for the operator and the audit.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VetReport {
    /// Bytes of the component.
    pub size: u64,
    /// What its producers section says it was built with (`rust`, `python`, `js`), if it says.
    pub built_with: Option<&'static str>,
    /// Its top-level imports (all resolved by the tenant's linker, or it was refused).
    pub imports: Vec<String>,
    /// How it was loaded: compiled, cached, and how long it took.
    pub load: PluginLoad,
}

/// The vetted plugin, ready to run.
pub struct Vetted {
    pub transform: Transform,
    pub report: VetReport,
}

/// Vets `bytes` (whose SHA-256 is `sha256`, lowercase hex) as a plugin in `language`, at most
/// `max_bytes` long, and loads it; `name` names it in the one-line refusal.
pub fn vet(
    sandbox: &Sandbox,
    bytes: &[u8],
    sha256: &str,
    name: &str,
    language: Language,
    max_bytes: u64,
) -> Result<Vetted, String> {
    if bytes.len() as u64 > max_bytes {
        return Err(format!(
            "'{name}' is {} bytes, more than the {max_bytes} a plugin may be ([plugins] max_bytes)",
            bytes.len()
        ));
    }
    let (built_with, imports) = inspect(bytes);
    if let Some(built) = built_with
        && built != language.name()
        // A JS component imports no WASI at all, so it runs on either surface; a Rust one
        // declared python would get the interpreter's wider surface, and a Python one declared
        // rust would fail its imports with a less helpful message.
        && !(built == "js" && language == Language::Rust)
    {
        return Err(format!(
            "'{name}' was built with {} but its tenant says language = \"{}\": set language = \
             \"{built}\"",
            producer_name(built),
            language.name()
        ));
    }
    let transform = sandbox
        .load_pinned(bytes, sha256, name, language.surface())
        .map_err(|e| format!("{e:#}"))?;
    let load = PluginLoad::new(language.name(), &transform);
    Ok(Vetted {
        transform,
        report: VetReport {
            size: bytes.len() as u64,
            built_with,
            imports,
            load,
        },
    })
}

fn producer_name(built: &str) -> &'static str {
    match built {
        "python" => "componentize-py (Python)",
        "js" => "ComponentizeJS (JavaScript)",
        _ => "rustc (Rust)",
    }
}

/// What built the component, from its producers sections (nested modules' included), and its
/// top-level imports. Malformed bytes yield what was read so far: the compile says what is wrong.
fn inspect(bytes: &[u8]) -> (Option<&'static str>, Vec<String>) {
    let (mut python, mut js, mut rust) = (false, false, false);
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader.into_iter().flatten() {
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::CustomSection(section) if section.name() == "producers" => {
                let text = String::from_utf8_lossy(section.data());
                python |= text.contains("componentize-py");
                js |= text.contains("ComponentizeJS") || text.contains("componentize-js");
                rust |= text.contains("rustc");
            }
            // componentize-py links CPython as shared libraries; their dynamic-linking
            // sections name them (its producers sections say only rustc and wit-component).
            Payload::CustomSection(section) if section.name() == "dylink.0" => {
                let text = String::from_utf8_lossy(section.data());
                python |= text.contains("libpython") || text.contains("componentize_py");
            }
            _ => {}
        }
    }
    // CPython and StarlingMonkey are themselves built with rustc and clang: the interpreter
    // decides.
    let built = if python {
        Some("python")
    } else if js {
        Some("js")
    } else if rust {
        Some("rust")
    } else {
        None
    };
    (built, imports)
}

impl VetReport {
    /// One line for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "{} bytes, built with {}, {} import(s) all provided, {} in {}",
            self.size,
            self.built_with
                .map_or("an unknown toolchain", producer_name),
            self.imports.len(),
            self.load.origin,
            fmt_ms(Duration::from_millis(self.load.load_ms)),
        )
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
