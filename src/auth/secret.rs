//! Secrets as configured: never printed, compared in constant time.

use sha2::{Digest, Sha256};
use std::fmt;

/// A configured secret (publish secret, status secret, token key). Its
/// `Debug` output is redacted so a config dump or a log line cannot leak
/// it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret's text, for the few places that need the key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret. Both are hashed first, so the
    /// comparison takes the same time whatever the candidate's length or
    /// how much of it matches.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(candidate.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Whether `candidate` matches any of `secrets` (several allow rotation).
/// Every secret is compared, so timing does not tell which one matched.
pub fn any_matches(secrets: &[Secret], candidate: &str) -> bool {
    secrets
        .iter()
        .fold(false, |found, s| s.matches(candidate) | found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_redaction() {
        let s = Secret::new("hunter2-hunter2");
        assert!(s.matches("hunter2-hunter2"));
        assert!(!s.matches("hunter2"));
        assert!(!s.matches(""));
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let both = [Secret::new("old"), Secret::new("new")];
        assert!(any_matches(&both, "old") && any_matches(&both, "new"));
        assert!(!any_matches(&both, "neither"));
        assert!(!any_matches(&[], "x"));
    }
}
