//! Secrets that cannot be printed: their `Debug` says `[redacted]`, they have no `Display`, and
//! the value comes out only through `secret()`.

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            /// The secret value.
            ///
            /// # Security warning
            /// Do not log it or put it in an error message.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// An app's `client_secret`.
    ClientSecret
);
secret_type!(
    /// A bearer JWT: an agent's, an app's or an admin's access token.
    AccessToken
);
secret_type!(
    /// The broker's admin secret.
    AdminSecret
);
secret_type!(
    /// A single-use launch token.
    LaunchToken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = ClientSecret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(
            format!("{:?}", AccessToken::new("eyJ.x.y")),
            "AccessToken([redacted])"
        );
        assert_eq!(s.secret(), "hunter2-very-secret");
    }
}
