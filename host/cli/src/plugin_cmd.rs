//! `sluice lock`, `sluice vet` and `sluice promote`: registry plugins pinned, checked and
//! promoted. The work is `sluice_pipeline::{locker, lock, vet}`'s; this prints it.

use crate::print::safe;
use sluice_pipeline::config::{self, PluginSource};
use sluice_pipeline::lock::{self, Lock, Slot};
use sluice_pipeline::locker::Locker;
use sluice_registry::OciRef;

use crate::args::{LockArgs, PromoteArgs, VetArgs};
use crate::exit;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn lock(args: LockArgs) -> anyhow::Result<u8> {
    let mut config = config::load(&args.config)?;
    config.cache_dir = args.cache.dir();
    let previous = Lock::read(&args.config).map_err(anyhow::Error::msg)?;
    let locker = Locker::new(&config)?;
    let (lock, lines) = runtime()?.block_on(locker.lock(&config, &previous));
    if lines.is_empty() {
        println!("{}: no oci:// plugins to lock", args.config.display());
        return Ok(exit::OK);
    }
    let mut refused = 0;
    for line in &lines {
        let who = match line.slot {
            Slot::Current => safe(&line.tenant).to_string(),
            Slot::Candidate => format!("{} (candidate)", safe(&line.tenant)),
        };
        match &line.verdict {
            Ok((locked, vet)) => println!(
                "  {who}  {}  {}  signer {}  {}",
                safe(&locked.reference),
                locked.digest,
                locked.signer,
                vet.summary()
            ),
            Err(why) => {
                refused += 1;
                let kept = match &line.kept {
                    Some(old) => format!("; the lock keeps {}", old.digest),
                    None => "; it has no locked version and will not run".into(),
                };
                println!("  {who}  REFUSED  {}{kept}", safe(why));
            }
        }
    }
    let path = lock.write(&args.config).map_err(anyhow::Error::msg)?;
    println!(
        "{}: {} plugin(s) locked, {refused} refused; {} written",
        args.config.display(),
        lines.len() - refused,
        path.display()
    );
    Ok(if refused > 0 { exit::FAILED } else { exit::OK })
}

pub fn vet(args: VetArgs) -> anyhow::Result<u8> {
    let mut config = config::load(&args.config)?;
    config.cache_dir = args.cache.dir();
    let tenant = config
        .tenants
        .iter()
        .find(|t| t.id == args.tenant)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!("{} has no tenant '{}'", args.config.display(), args.tenant)
        })?;
    let locker = Locker::new(&config)?;
    let max = config.plugins.max_bytes;
    let (bytes, sha256, signed) = if OciRef::is_oci(&args.plugin) {
        let reference = OciRef::parse(&args.plugin)?;
        let pulled = runtime()?.block_on(locker.registry().pull(&reference))?;
        let store = locker.registry().store();
        let plugin = store
            .plugin(&pulled.digest, pulled.signatures.as_ref(), max)
            .map_err(anyhow::Error::msg)?;
        let signed = match &tenant.signer {
            None => "no signer configured".to_string(),
            Some(signer) => match sluice_registry::signature::verify(
                &signer.key,
                &pulled.digest,
                &plugin.signatures,
            ) {
                Ok(()) => format!("signed by {}", signer.key.fingerprint()),
                Err(e) => {
                    println!("{}: REFUSED: {}", safe(&args.plugin), safe(&e.to_string()));
                    return Ok(exit::FAILED);
                }
            },
        };
        println!("{}: {}", safe(&args.plugin), pulled.digest);
        (plugin.wasm, plugin.wasm_digest.hex().to_string(), signed)
    } else {
        let bytes = std::fs::read(&args.plugin)
            .map_err(|e| anyhow::anyhow!("cannot read {} ({e})", args.plugin))?;
        let sha = sluice_registry::Digest::of(&bytes).hex().to_string();
        (
            bytes,
            sha,
            "a file: pinned by sha256, not signed".to_string(),
        )
    };
    match sluice_pipeline::vet::vet(
        locker.sandbox(),
        &bytes,
        &sha256,
        &args.plugin,
        tenant.language,
        max,
    ) {
        Ok(vetted) => {
            let r = &vetted.report;
            println!(
                "  accepted for tenant {}: {}",
                safe(&tenant.id),
                r.summary()
            );
            println!("  {signed}");
            println!(
                "  imports: {}",
                r.imports
                    .iter()
                    .map(|i| safe(i).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(note) = &r.load.cache_note {
                println!("  cache: {}", safe(note));
            }
            Ok(exit::OK)
        }
        Err(why) => {
            println!("{}: REFUSED: {}", safe(&args.plugin), safe(&why));
            Ok(exit::FAILED)
        }
    }
}

pub fn promote(args: PromoteArgs) -> anyhow::Result<u8> {
    // The configuration must be valid before and after.
    let before = config::load(&args.config)?;
    if !before.tenants.iter().any(|t| t.id == args.tenant) {
        anyhow::bail!("{} has no tenant '{}'", args.config.display(), args.tenant);
    }
    let (reference, digest) =
        lock::promote(&args.config, &args.tenant).map_err(anyhow::Error::msg)?;
    let after = config::load(&args.config)?;
    debug_assert!(
        after
            .tenants
            .iter()
            .any(|t| matches!(&t.plugin, PluginSource::Oci(r) if r.to_string() == reference))
    );
    println!(
        "{}: tenant {} now runs {} ({digest}); its candidate line is gone",
        args.config.display(),
        safe(&args.tenant),
        safe(&reference)
    );
    Ok(exit::OK)
}
