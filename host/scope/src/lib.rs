//! AgentWrit's scope grammar and coverage rule: the only implementation of it in Sluice, a crate
//! of its own so the sandbox asks it without linking an HTTP client.
//!
//! The rule is the broker's (contract section 6), not the Python SDK's looser one: a scope is
//! valid when splitting on the first two colons gives three non-empty parts; `*` is special only
//! as the whole identifier of the *held* scope. Comparisons are case-sensitive and nothing is
//! trimmed. A [`Scope`] is parsed once, where it enters (a configuration, a broker's answer), and
//! travels typed from there; it (de)serializes as its text, refusing malformed text.

use std::fmt;

/// A parsed `action:resource:identifier` scope.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    text: String,
    // Byte offsets of the two separating colons.
    first: usize,
    second: usize,
}

/// Why a string is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope '{input}': expected action:resource:identifier with three non-empty parts")]
pub struct ScopeError {
    /// The text that failed to parse.
    pub input: String,
}

impl Scope {
    /// Parses `text`, splitting on the first two colons (`a:b:c:d` has identifier `c:d`).
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        let err = || ScopeError {
            input: text.to_string(),
        };
        let first = text.find(':').ok_or_else(err)?;
        let second = first + 1 + text[first + 1..].find(':').ok_or_else(err)?;
        if first == 0 || second == first + 1 || second + 1 == text.len() {
            return Err(err());
        }
        Ok(Scope {
            text: text.to_string(),
            first,
            second,
        })
    }

    /// Builds `action:resource:identifier`, checking the result parses back to the same parts.
    pub fn new(action: &str, resource: &str, identifier: &str) -> Result<Scope, ScopeError> {
        let scope = Scope::parse(&format!("{action}:{resource}:{identifier}"))?;
        if scope.action() != action || scope.resource() != resource {
            // A colon inside `action` or `resource` would shift the parts.
            return Err(ScopeError { input: scope.text });
        }
        Ok(scope)
    }

    pub fn action(&self) -> &str {
        &self.text[..self.first]
    }

    pub fn resource(&self) -> &str {
        &self.text[self.first + 1..self.second]
    }

    pub fn identifier(&self) -> &str {
        &self.text[self.second + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether holding `self` grants `requested`: same action, same resource, and the same
    /// identifier or a held identifier of exactly `*`.
    pub fn covers(&self, requested: &Scope) -> bool {
        self.action() == requested.action()
            && self.resource() == requested.resource()
            && (self.identifier() == "*" || self.identifier() == requested.identifier())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.text)
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(d)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

/// Whether one held scope covers `requested`, on raw strings. Invalid scopes never cover and are
/// never covered.
pub fn scope_covers(held: &str, requested: &str) -> bool {
    match (Scope::parse(held), Scope::parse(requested)) {
        (Ok(held), Ok(requested)) => held.covers(&requested),
        _ => false,
    }
}

/// Whether every requested scope is covered by at least one held scope, as the broker decides it.
/// An empty request is vacuously covered; an invalid requested scope never is.
pub fn scope_is_subset<R, H>(requested: &[R], held: &[H]) -> bool
where
    R: AsRef<str>,
    H: AsRef<str>,
{
    let held: Vec<Scope> = held
        .iter()
        .filter_map(|h| Scope::parse(h.as_ref()).ok())
        .collect();
    requested.iter().all(|r| match Scope::parse(r.as_ref()) {
        Ok(r) => held.iter().any(|h| h.covers(&r)),
        Err(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_three_non_empty_parts() {
        for ok in [
            "read:data:x",
            "a:b:c:d",
            "*:*:*",
            " read:data:x",
            "read:data:cust*",
        ] {
            assert!(Scope::parse(ok).is_ok(), "{ok} should parse");
        }
        let s = Scope::parse("a:b:c:d").unwrap();
        assert_eq!(
            (s.action(), s.resource(), s.identifier()),
            ("a", "b", "c:d")
        );
    }

    #[test]
    fn parse_rejects_missing_or_empty_parts() {
        for bad in [
            "",
            "read",
            "read:data",
            "read::x",
            ":a:b",
            "a:b:",
            "::",
            "a::",
        ] {
            let err = Scope::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid scope '{bad}': expected action:resource:identifier with three non-empty parts"
                )
            );
        }
    }

    #[test]
    fn wildcard_identifier_on_held_side_accepts_any_identifier() {
        assert!(scope_covers("read:data:*", "read:data:x"));
        assert!(scope_covers("read:data:*", "read:data:*"));
        assert!(scope_covers("read:data:*", "read:data:c:d"));
    }

    #[test]
    fn wildcard_on_requested_side_does_not_accept() {
        assert!(!scope_covers("read:data:x", "read:data:*"));
    }

    #[test]
    fn star_action_or_resource_is_literal() {
        assert!(!scope_covers("*:*:*", "read:data:customers"));
        assert!(!scope_covers("*:data:customers", "read:data:customers"));
        assert!(!scope_covers("read:*:customers", "read:data:customers"));
        assert!(scope_covers("*:*:*", "*:*:x"));
        assert!(!scope_covers("read:data:cust*", "read:data:customers"));
    }

    #[test]
    fn different_tenant_identifier_is_not_covered() {
        assert!(!scope_covers(
            "read:analytics:hospital",
            "read:analytics:bank"
        ));
        assert!(!scope_covers(
            "write:reports:hospital",
            "write:reports:retail"
        ));
        assert!(!scope_covers(
            "read:analytics:hospital",
            "write:analytics:hospital"
        ));
        assert!(!scope_covers(
            "read:analytics:hospital",
            "read:reports:hospital"
        ));
    }

    #[test]
    fn comparison_is_case_sensitive_and_untrimmed() {
        assert!(!scope_covers("read:data:X", "read:data:x"));
        assert!(!scope_covers("read:data:x", " read:data:x"));
    }

    #[test]
    fn invalid_scopes_never_cover_or_get_covered() {
        assert!(!scope_covers("foo", "foo"));
        assert!(!scope_covers("read::*", "read::x"));
        assert!(!scope_is_subset(&["foo"], &["foo"]));
    }

    #[test]
    fn scopes_travel_as_their_text_and_malformed_text_is_refused() {
        let s: Scope = serde_json::from_str("\"read:analytics:bank\"").unwrap();
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"read:analytics:bank\""
        );
        let err = serde_json::from_str::<Scope>("\"read:analytics\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid scope 'read:analytics'"),
            "{err}"
        );
    }

    #[test]
    fn subset_rules() {
        let empty: [&str; 0] = [];
        assert!(scope_is_subset(&empty, &empty));
        assert!(!scope_is_subset(&["read:data:x"], &empty));
        assert!(scope_is_subset(
            &["read:analytics:hospital", "write:reports:hospital"],
            &["read:analytics:*", "write:reports:*"]
        ));
        assert!(!scope_is_subset(
            &["read:analytics:hospital", "admin:revoke:*"],
            &["read:analytics:*", "write:reports:*"]
        ));
        assert!(scope_is_subset(&["a:b:c:d"], &["a:b:*"]));
    }
}
