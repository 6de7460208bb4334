//! Channel patterns: what a token's `channels` and `publish` claims list.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

use crate::pubsub::channel::valid_channel_id;

/// A channel pattern: an exact channel id (`news`), or a prefix followed by
/// `*` (`chat-*`, matching every channel that starts with `chat-`,
/// including `chat-` itself; `*` alone matches every channel). `*` is
/// allowed only as the last character, so matching is one comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
}

/// A pattern that breaks the rule; says nothing about the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternError;

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a channel pattern is a channel id (1-128 characters of A-Z a-z 0-9 _ . : @ -), \
             or such a prefix (possibly empty) followed by a final *",
        )
    }
}

impl std::error::Error for PatternError {}

impl Pattern {
    /// Parses a pattern. Exact ids follow the channel id rule; a prefix
    /// follows it too except that it may be empty (`*`).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        match text.strip_suffix('*') {
            Some("") => Ok(Pattern::Prefix(String::new())),
            Some(prefix) if valid_channel_id(prefix) => Ok(Pattern::Prefix(prefix.to_string())),
            Some(_) => Err(PatternError),
            None if valid_channel_id(text) => Ok(Pattern::Exact(text.to_string())),
            None => Err(PatternError),
        }
    }

    /// Does this pattern cover `channel`?
    pub fn matches(&self, channel: &str) -> bool {
        match self {
            Pattern::Exact(id) => id == channel,
            Pattern::Prefix(prefix) => channel.starts_with(prefix.as_str()),
        }
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(text: &str) -> Result<Pattern, PatternError> {
        Pattern::parse(text)
    }
}

/// Writes the pattern as it is spelled in a token (`news`, `chat-*`).
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(id) => f.write_str(id),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
