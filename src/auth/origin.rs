//! Which browser origins may use crier: drives CORS on every HTTP response
//! and the `Origin` check of the WebSocket handshake (browsers do not apply
//! CORS to WebSocket, so the server must).

/// The configured origins (`--allow-origins`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin. CORS answers `*`; no WebSocket origin check.
    Any,
    /// Only these origins (`https://example.com`, compared without case and
    /// without a trailing slash). Empty: CORS headers are never sent and
    /// every browser WebSocket is refused.
    List(Vec<String>),
}

/// Why an origin list did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError(String);

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid origin {:?}: use * or scheme://host[:port], comma-separated",
            self.0
        )
    }
}

impl std::error::Error for OriginError {}

impl AllowedOrigins {
    /// Parses `*` or `https://a.example,http://localhost:3000`.
    pub fn parse(list: &str) -> Result<AllowedOrigins, OriginError> {
        let list = list.trim();
        if list == "*" {
            return Ok(AllowedOrigins::Any);
        }
        let mut origins = Vec::new();
        for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let normal = normalise(o);
            let host = normal
                .strip_prefix("https://")
                .or_else(|| normal.strip_prefix("http://"));
            let valid = host.is_some_and(|h| {
                !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
            });
            if !valid {
                return Err(OriginError(o.to_string()));
            }
            origins.push(normal);
        }
        Ok(AllowedOrigins::List(origins))
    }

    /// Whether a request with this `Origin` header may proceed. Requests
    /// without one come from non-browser clients and are not judged here.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (AllowedOrigins::Any, _) | (_, None) => true,
            (AllowedOrigins::List(list), Some(o)) => {
                let o = normalise(o);
                list.contains(&o)
            }
        }
    }

    /// The `Access-Control-Allow-Origin` value for a response to a request
    /// with this `Origin`, if any: `*`, or the origin itself when listed
    /// (then the response also needs `Vary: Origin`).
    pub fn cors_value<'a>(&self, origin: Option<&'a str>) -> Option<CorsOrigin<'a>> {
        match self {
            AllowedOrigins::Any => Some(CorsOrigin::Any),
            AllowedOrigins::List(_) => origin
                .filter(|o| self.allows(Some(o)))
                .map(CorsOrigin::Echo),
        }
    }
}

/// What to put in `Access-Control-Allow-Origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorsOrigin<'a> {
    /// `*`.
    Any,
    /// The request's own origin (listed), with `Vary: Origin`.
    Echo(&'a str),
}

/// Lower case without a trailing slash: browsers send `https://a.example`,
/// operators may write `https://A.example/`.
fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_and_lists() {
        let any = AllowedOrigins::parse("*").unwrap();
        assert!(any.allows(Some("https://evil.example")));
        assert_eq!(any.cors_value(Some("https://x")), Some(CorsOrigin::Any));
        let list = AllowedOrigins::parse("https://A.example/, http://localhost:3000").unwrap();
        assert!(list.allows(Some("https://a.example")));
        assert!(list.allows(Some("http://localhost:3000")));
        assert!(!list.allows(Some("http://localhost:3001")));
        assert!(!list.allows(Some("https://a.example.evil.com")));
        assert!(list.allows(None), "non-browser clients send no Origin");
        assert_eq!(
            list.cors_value(Some("https://a.example")),
            Some(CorsOrigin::Echo("https://a.example"))
        );
        assert_eq!(list.cors_value(Some("https://b.example")), None);
        assert_eq!(list.cors_value(None), None);
        let none = AllowedOrigins::parse("").unwrap();
        assert!(!none.allows(Some("https://a.example")));
    }

    #[test]
    fn bad_lists_are_refused() {
        for bad in ["example.com", "ftp://x", "https://a/b", "https://a b"] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
