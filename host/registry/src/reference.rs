//! `oci://REGISTRY/REPOSITORY:TAG` and `oci://REGISTRY/REPOSITORY@sha256:HEX`: how a
//! configuration names a plugin in a registry.

use std::fmt;

use crate::digest::Digest;

/// A plugin in a registry, by tag or by manifest digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OciRef {
    /// `host` or `host:port`.
    pub registry: String,
    /// `tenants/bank`.
    pub repository: String,
    pub tag: Option<String>,
    /// A digest in the reference itself pins the manifest: no lock needed to know what runs.
    pub digest: Option<Digest>,
}

/// Why text is not an `oci://` reference, for the configuration's error message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "'{text}' is not an OCI reference: {why} (expected oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:<64 hex>)"
)]
pub struct BadReference {
    pub text: String,
    pub why: &'static str,
}

impl OciRef {
    /// Whether `text` names a registry plugin rather than a file.
    pub fn is_oci(text: &str) -> bool {
        text.starts_with("oci://")
    }

    pub fn parse(text: &str) -> Result<OciRef, BadReference> {
        let bad = |why| BadReference {
            text: text.to_string(),
            why,
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| bad("it does not start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it names no repository"))?;
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad(
                "the registry must be a host name or address, with an optional port",
            ));
        }
        let (path, digest) = match path.split_once('@') {
            Some((path, digest)) => (
                path,
                Some(
                    Digest::parse(digest)
                        .map_err(|_| bad("the digest must be sha256:<64 lowercase hex>"))?,
                ),
            ),
            None => (path, None),
        };
        // A tag follows the last ':' after the last '/'.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        if repository.is_empty()
            || repository.len() > 255
            || !repository.split('/').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    })
            })
        {
            return Err(bad(
                "the repository must be lowercase path components of [a-z0-9._-]",
            ));
        }
        if let Some(tag) = tag
            && (tag.is_empty()
                || tag.len() > 128
                || !tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(bad("a tag is 1 to 128 of [A-Za-z0-9._-]"));
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad("it has neither a tag nor a digest"));
        }
        Ok(OciRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The same repository at `digest`.
    pub fn at(&self, digest: &Digest) -> OciRef {
        OciRef {
            tag: None,
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// The same repository at `tag`.
    pub fn tagged(&self, tag: &str) -> OciRef {
        OciRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Whether the registry is on this machine, where plain HTTP is allowed (as Docker does).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => self.registry.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `registry/repository`, as cosign's payload names the signed image.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The client crate's form of this reference.
    pub(crate) fn client_ref(&self) -> oci_client::Reference {
        match (&self.digest, &self.tag) {
            (Some(d), Some(t)) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
            )
            .clone_with_digest(d.to_string()),
            (Some(d), None) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.to_string(),
            ),
            (None, t) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_digests_and_ports_parse_and_print_back() {
        let d = "sha256:".to_string() + &"ab".repeat(32);
        for text in [
            "oci://127.0.0.1:5000/tenants/bank:v1".to_string(),
            "oci://registry.example.com/bank:1.2.0-rc.1".to_string(),
            format!("oci://localhost:5000/bank@{d}"),
            format!("oci://localhost:5000/bank:v2@{d}"),
        ] {
            let r = OciRef::parse(&text).unwrap();
            assert_eq!(r.to_string(), text);
        }
        let r = OciRef::parse("oci://127.0.0.1:5000/tenants/bank:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "tenants/bank", Some("v1"))
        );
        assert!(r.is_loopback());
        assert!(
            !OciRef::parse("oci://ghcr.io/acme/bank:v1")
                .unwrap()
                .is_loopback()
        );
        assert!(
            OciRef::parse("oci://[::1]:5000/bank:v1")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        for (text, why) in [
            ("oci://127.0.0.1:5000/bank", "neither a tag nor a digest"),
            ("oci://127.0.0.1:5000", "no repository"),
            ("oci://host/Bank:v1", "lowercase"),
            ("oci://host/bank@sha256:abc", "sha256:<64"),
            ("oci://host/bank:", "1 to 128"),
            ("oci://ho st/bank:v1", "host name"),
        ] {
            let e = OciRef::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.contains(text), "{e}");
        }
    }
}
