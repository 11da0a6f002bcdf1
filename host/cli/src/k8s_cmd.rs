//! `sluice k8s`: the manifests of a sharded night on Kubernetes, printed as YAML.

use std::io::Write as _;

use sluice_k8s::{ManifestOptions, manifests};
use sluice_pipeline::config;

use crate::args::K8sArgs;
use crate::exit;
use crate::print::reader_gone;

pub fn k8s(args: K8sArgs) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", args.config.display()))?;
    let config = config::load(&args.config)?;
    let options = ManifestOptions {
        name: args.name,
        shards: args.shards,
        parallelism: args.parallelism,
        image: args.image,
        schedule: args.schedule,
        secret: args.secret,
        retries_per_shard: args.retries_per_shard,
        storage_secret: args.storage_secret,
    };
    let yaml = manifests(&config, &text, &options)?;
    reader_gone(std::io::stdout().lock().write_all(yaml.as_bytes()))?;
    Ok(exit::OK)
}
