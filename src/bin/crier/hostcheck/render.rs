//! The report: findings in, text out. Pure, like the checks; the number
//! formats are here because the checks use them for their table cells too.

use std::fmt::Write as _;

use super::Finding;

/// Renders the findings as a table (status, item, have, need), the fix
/// under each failure, and a closing verdict line, so the output answers
/// "can this host hold N?" in its last line and says what to do above it.
pub fn render(findings: &[Finding], connections: u64) -> String {
    let headers = ["", "item", "have", "need"];
    let status = |f: &Finding| if f.ok { "ok" } else { "FAIL" };
    let mut widths = headers.map(str::len);
    for f in findings {
        widths[0] = widths[0].max(status(f).len());
        widths[1] = widths[1].max(f.item.len());
        widths[2] = widths[2].max(f.have.len());
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "crier --check-host {}: what stands between this host and {} connections",
        connections,
        group(connections)
    );
    let _ = writeln!(
        s,
        "{:w0$}  {:w1$}  {:w2$}  {}",
        headers[0],
        headers[1],
        headers[2],
        headers[3],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for f in findings {
        let _ = writeln!(
            s,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            status(f),
            f.item,
            f.have,
            f.need,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        if !f.ok && !f.fix.is_empty() {
            let _ = writeln!(s, "{:w0$}  fix: {}", "", f.fix, w0 = widths[0]);
        }
    }
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        let _ = writeln!(
            s,
            "verdict: OK, nothing found that stands between this host and {} connections",
            group(connections)
        );
    } else {
        let _ = writeln!(
            s,
            "verdict: NOT READY, {} item{} stand{} between this host and {} connections (fixes above; tuning/README.md)",
            failed,
            if failed == 1 { "" } else { "s" },
            if failed == 1 { "s" } else { "" },
            group(connections)
        );
    }
    s
}

/// Limits print "unlimited" for RLIM_INFINITY, as `ulimit` does.
pub fn limit_text(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        group(v)
    }
}

/// 1000000 → "1,000,000": limits are long numbers, and a misread digit
/// group is a factor of 1000.
pub fn group(v: u64) -> String {
    let digits = v.to_string();
    let mut s = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// Bytes in binary units with one decimal, for memory figures.
pub fn bytes(v: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = v as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn number_formatting() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_101_024), "1,101,024");
        assert_eq!(group(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8 * GIB + GIB / 10), "8.1 GiB");
        assert_eq!(limit_text(u64::MAX), "unlimited");
    }
}
