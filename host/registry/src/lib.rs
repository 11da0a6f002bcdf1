//! Tenant plugins as OCI artifacts: `oci://` references, a pull client (oci-client, with the
//! user's Docker or Podman credentials), a content-addressed store that verifies every read, and
//! cosign-format signatures checked with the tenant's P-256 key.

pub mod artifact;
mod credentials;
mod digest;
mod pull;
mod reference;
pub mod signature;
mod store;

pub use digest::{BadDigest, Digest};
pub use pull::{PullError, Pulled, Registry, StoredPlugin};
pub use reference::{BadReference, OciRef};
pub use signature::{SignerKey, Unsigned};
pub use store::{BlobStore, StoreError, default_store_dir};

/// The largest plugin pulled by default: CPython linked into a component is ~19 MB.
pub const DEFAULT_MAX_PLUGIN_BYTES: u64 = 64 << 20;
