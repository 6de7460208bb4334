//! The compatibility settings' types: which server crier imitates
//! (`--compat`), where a subscriber without a resume point starts
//! (`--first-message`) and push-stream's publisher mode. Each parses from
//! the flag's text and from the TOML file, and fails with a message that
//! names the accepted values.

use std::fmt;
use std::str::FromStr;

use crate::pubsub::channel::Resume;

/// Which server's HTTP API crier speaks besides its own (`--compat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compat {
    /// crier's own API only (the default).
    #[default]
    Off,
    /// nginx-push-stream-module: replies, `/channels-stats`, Event-Id,
    /// If-Modified-Since / If-None-Match long-polling, JSONP.
    PushStream,
    /// Nchan: 201/202 publish replies with channel info, `/pub/CH` and
    /// `/sub/CH` locations, `T:N` message ids, one message per long-poll.
    Nchan,
}

impl FromStr for Compat {
    type Err = String;

    fn from_str(s: &str) -> Result<Compat, String> {
        match s {
            "off" | "" => Ok(Compat::Off),
            "push-stream" => Ok(Compat::PushStream),
            "nchan" => Ok(Compat::Nchan),
            _ => Err(format!(
                "unknown compat {s:?}: use off, push-stream or nchan"
            )),
        }
    }
}

impl fmt::Display for Compat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compat::Off => "off",
            Compat::PushStream => "push-stream",
            Compat::Nchan => "nchan",
        })
    }
}

/// Where a new subscriber that names no resume point starts
/// (`--first-message`, Nchan's `nchan_subscriber_first_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstMessage {
    /// The mode's default: `live` for crier and push-stream, `oldest`
    /// for Nchan.
    #[default]
    Auto,
    /// Only messages published from now on (`live`, or Nchan's `newest`).
    Live,
    /// Every stored message first (`oldest`).
    Oldest,
    /// `N`: from the Nth stored message counted from the oldest (1 = the
    /// oldest); `-N`: the newest N stored messages. 0 is `live`.
    Nth(i64),
}

impl FromStr for FirstMessage {
    type Err = String;

    fn from_str(s: &str) -> Result<FirstMessage, String> {
        match s.trim() {
            "auto" | "" => Ok(FirstMessage::Auto),
            "live" | "newest" => Ok(FirstMessage::Live),
            "oldest" => Ok(FirstMessage::Oldest),
            n => match n.parse::<i64>() {
                Ok(0) => Ok(FirstMessage::Live),
                Ok(n) => Ok(FirstMessage::Nth(n)),
                Err(_) => Err(format!(
                    "invalid first-message {s:?}: use oldest, newest, live, auto or a number"
                )),
            },
        }
    }
}

impl fmt::Display for FirstMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirstMessage::Auto => f.write_str("auto"),
            FirstMessage::Live => f.write_str("live"),
            FirstMessage::Oldest => f.write_str("oldest"),
            FirstMessage::Nth(n) => write!(f, "{n}"),
        }
    }
}

impl FirstMessage {
    /// The policy in force once `auto` is resolved for `compat`.
    pub fn resolve(self, compat: Compat) -> FirstMessage {
        match (self, compat) {
            (FirstMessage::Auto, Compat::Nchan) => FirstMessage::Oldest,
            (FirstMessage::Auto, _) => FirstMessage::Live,
            (other, _) => other,
        }
    }

    /// The resume point of a subscriber that asked for none (`Resume::Live`
    /// and no backtrack); any other request is left alone.
    pub fn apply(self, resume: Resume, backtrack: bool) -> Resume {
        if resume != Resume::Live || backtrack {
            return resume;
        }
        match self {
            FirstMessage::Auto | FirstMessage::Live => Resume::Live,
            FirstMessage::Oldest => Resume::Stored(0),
            FirstMessage::Nth(n) if n > 0 => Resume::Stored(n.unsigned_abs() - 1),
            FirstMessage::Nth(n) => Resume::Newest(n.unsigned_abs()),
        }
    }
}

/// push-stream's `push_stream_publisher normal | admin`: only an admin
/// publisher location may DELETE channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublisherMode {
    /// POST, PUT and GET; DELETE answers 405 (push-stream's default).
    #[default]
    Normal,
    /// DELETE deletes channels as well.
    Admin,
}

impl FromStr for PublisherMode {
    type Err = String;

    fn from_str(s: &str) -> Result<PublisherMode, String> {
        match s {
            "normal" => Ok(PublisherMode::Normal),
            "admin" => Ok(PublisherMode::Admin),
            _ => Err(format!("unknown publisher mode {s:?}: use normal or admin")),
        }
    }
}

impl fmt::Display for PublisherMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublisherMode::Normal => "normal",
            PublisherMode::Admin => "admin",
        })
    }
}

/// TOML values go through the same parser as flags.
macro_rules! deserialize_from_str {
    ($($ty:ty),*) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(serde::Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Text(String),
                    Number(i64),
                }
                let text = match Raw::deserialize(d)? {
                    Raw::Text(s) => s,
                    Raw::Number(n) => n.to_string(),
                };
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

deserialize_from_str!(Compat, FirstMessage, PublisherMode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_print_back() {
        for s in ["off", "push-stream", "nchan"] {
            assert_eq!(s.parse::<Compat>().unwrap().to_string(), s);
        }
        assert!("pushstream".parse::<Compat>().is_err());
        assert_eq!("newest".parse::<FirstMessage>(), Ok(FirstMessage::Live));
        assert_eq!("0".parse::<FirstMessage>(), Ok(FirstMessage::Live));
        assert_eq!("-3".parse::<FirstMessage>(), Ok(FirstMessage::Nth(-3)));
        assert!("soon".parse::<FirstMessage>().is_err());
        assert!("root".parse::<PublisherMode>().is_err());
    }

    #[test]
    fn auto_follows_the_mode_and_only_fills_an_empty_resume_point() {
        let auto = FirstMessage::Auto;
        assert_eq!(auto.resolve(Compat::Nchan), FirstMessage::Oldest);
        assert_eq!(auto.resolve(Compat::PushStream), FirstMessage::Live);
        let oldest = FirstMessage::Oldest;
        assert_eq!(oldest.apply(Resume::Live, false), Resume::Stored(0));
        assert_eq!(oldest.apply(Resume::Live, true), Resume::Live);
        assert_eq!(
            oldest.apply(Resume::AfterSeq(4), false),
            Resume::AfterSeq(4)
        );
        assert_eq!(
            FirstMessage::Nth(2).apply(Resume::Live, false),
            Resume::Stored(1)
        );
        assert_eq!(
            FirstMessage::Nth(-2).apply(Resume::Live, false),
            Resume::Newest(2)
        );
    }

    #[test]
    fn toml_takes_text_and_numbers() {
        #[derive(serde::Deserialize)]
        struct T {
            a: FirstMessage,
            b: FirstMessage,
            c: Compat,
        }
        let t: T = toml::from_str("a = 5\nb = \"oldest\"\nc = \"nchan\"").unwrap();
        assert_eq!(
            (t.a, t.b, t.c),
            (FirstMessage::Nth(5), FirstMessage::Oldest, Compat::Nchan)
        );
    }
}
