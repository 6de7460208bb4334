//! Query strings: the one decoder every parameter goes through, so that
//! `?id=`, `?last_event_id=` and friends cannot disagree on escaping.

/// Percent-decoded value of the first `name` parameter of a raw query string
/// (`+` is a space). Keys are decoded before comparing. A bare `name` (no
/// `=`) yields `Some("")`. Invalid `%` escapes are kept literally; invalid
/// UTF-8 is replaced (lossy).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
}

/// `application/x-www-form-urlencoded` style decoding.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_val(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_val(b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Value of one hex digit, either case.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = "a=1&b=hello+world&c=%41%62&d=%zz%4&e&last%5Fid=9&a=2&f=%E2%82%AC&g=";
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "b").as_deref(), Some("hello world"));
        assert_eq!(query_param(q, "c").as_deref(), Some("Ab"));
        assert_eq!(query_param(q, "d").as_deref(), Some("%zz%4"));
        assert_eq!(query_param(q, "e").as_deref(), Some(""));
        assert_eq!(query_param(q, "last_id").as_deref(), Some("9"));
        assert_eq!(query_param(q, "f").as_deref(), Some("\u{20ac}"));
        assert_eq!(query_param(q, "g").as_deref(), Some(""));
        assert_eq!(query_param(q, "zz"), None);
        assert_eq!(query_param("", "a"), None);
        assert_eq!(query_param("&&", ""), None);
        assert_eq!(query_param("x=%ff", "x").as_deref(), Some("\u{fffd}"));
        assert_eq!(query_param("x=a=b", "x").as_deref(), Some("a=b"));
        assert_eq!(query_param("x=%", "x").as_deref(), Some("%"));
    }
}
