//! What a plugin's manifest and its cosign signature manifest must say, parsed from the bytes
//! a registry (or the store) holds, bounded before they are parsed.

use serde::Deserialize;

use crate::digest::Digest;

/// The wasm layer's media type (what `wkg`, `oras` and Spin push).
pub const WASM_LAYER: &str = "application/wasm";
/// The config media type of a WebAssembly component artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// cosign's layer of a simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosignproject.cosign/simplesigning.v1+json";
/// cosign's annotation holding the base64 signature over the layer's payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A manifest is small: Distribution refuses to store one over 4 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// A simple-signing payload is a few hundred bytes.
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 10;
/// Signatures considered per plugin: cosign appends one layer per signature.
pub const MAX_SIGNATURES: usize = 32;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    config: RawDescriptor,
    layers: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// A blob a manifest points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

/// A plugin artifact's manifest: one wasm layer.
#[derive(Clone, Debug)]
pub struct PluginManifest {
    pub config_media_type: String,
    pub wasm: Blob,
}

/// One signature of a cosign signature manifest: the payload blob and the signature over it.
#[derive(Clone, Debug)]
pub struct SignatureLayer {
    pub payload: Blob,
    /// The DER signature, decoded from base64.
    pub signature: Vec<u8>,
}

fn parse(bytes: &[u8], what: &str) -> Result<RawManifest, String> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "its {what} is {} bytes, more than {MAX_MANIFEST_BYTES}",
            bytes.len()
        ));
    }
    let raw: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("its {what} is not an OCI image manifest ({e})"))?;
    if raw.schema_version != 2 {
        return Err(format!(
            "its {what} has schemaVersion {}, not 2",
            raw.schema_version
        ));
    }
    if let Some(t) = &raw.media_type
        && t != OCI_MANIFEST
        && t != DOCKER_MANIFEST
    {
        return Err(format!(
            "its {what} is a {t}, not an image manifest (an index names no single plugin)"
        ));
    }
    Ok(raw)
}

fn blob(d: &RawDescriptor, what: &str) -> Result<Blob, String> {
    Ok(Blob {
        digest: Digest::parse(&d.digest).map_err(|e| format!("its {what}: {e}"))?,
        size: d.size,
    })
}

impl PluginManifest {
    pub fn parse(bytes: &[u8]) -> Result<PluginManifest, String> {
        let raw = parse(bytes, "manifest")?;
        let wasm: Vec<&RawDescriptor> = raw
            .layers
            .iter()
            .filter(|l| l.media_type == WASM_LAYER)
            .collect();
        match (wasm.as_slice(), raw.layers.len()) {
            ([layer], 1) => Ok(PluginManifest {
                config_media_type: raw.config.media_type.clone(),
                wasm: blob(layer, "wasm layer")?,
            }),
            ([], n) => Err(format!(
                "its manifest has {n} layer(s) and none is {WASM_LAYER}: push the component as \
                 one {WASM_LAYER} layer (e.g. `oras push REF plugin.wasm:{WASM_LAYER} --config \
                 config.json:{WASM_CONFIG}`)"
            )),
            (_, n) => Err(format!(
                "its manifest has {n} layers: a plugin is exactly one {WASM_LAYER} layer"
            )),
        }
    }
}

/// The signatures of a cosign signature manifest.
pub fn signature_layers(bytes: &[u8]) -> Result<Vec<SignatureLayer>, String> {
    use base64::Engine as _;
    let raw = parse(bytes, "signature manifest")?;
    let mut layers = Vec::new();
    for layer in raw
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .take(MAX_SIGNATURES)
    {
        let Some(encoded) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            continue;
        };
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            continue;
        };
        let payload = blob(layer, "signature payload")?;
        if payload.size > MAX_PAYLOAD_BYTES {
            continue;
        }
        layers.push(SignatureLayer { payload, signature });
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &str) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{WASM_CONFIG}","digest":"sha256:{z}","size":2}},"layers":[{layers}]}}"#,
            z = "0".repeat(64)
        )
        .into_bytes()
    }

    #[test]
    fn a_plugin_is_exactly_one_wasm_layer() {
        let wasm = format!(
            r#"{{"mediaType":"{WASM_LAYER}","digest":"sha256:{}","size":9}}"#,
            "a".repeat(64)
        );
        let tar = format!(
            r#"{{"mediaType":"application/tar","digest":"sha256:{}","size":9}}"#,
            "b".repeat(64)
        );
        let m = PluginManifest::parse(&manifest(&wasm)).unwrap();
        assert_eq!(
            (m.wasm.size, m.config_media_type.as_str()),
            (9, WASM_CONFIG)
        );
        let e = PluginManifest::parse(&manifest(&tar)).unwrap_err();
        assert!(e.contains("none is application/wasm"), "{e}");
        let e = PluginManifest::parse(&manifest(&format!("{wasm},{tar}"))).unwrap_err();
        assert!(e.contains("2 layers"), "{e}");
        let e = PluginManifest::parse(b"{\"schemaVersion\":1}").unwrap_err();
        assert!(e.contains("not an OCI image manifest"), "{e}");
    }
}
