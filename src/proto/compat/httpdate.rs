//! HTTP dates (RFC 9110 §5.6.7) for `Last-Modified` / `If-Modified-Since`,
//! which push-stream's and Nchan's long-poll clients use as half of their
//! position. Pure: seconds since the Unix epoch in, text out, and back.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `secs` as an IMF-fixdate: `Tue, 01 Dec 2026 18:19:07 GMT`.
pub fn format(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, also with a
/// one-digit day as some clients write it), an RFC 850 date
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) or an asctime date
/// (`Sun Nov  6 08:49:37 1994`); None for anything else.
pub fn parse(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        [_, d, mon, y, t, "GMT"] => (*d, *mon, *y, *t),
        [_, dmy, t, "GMT"] => {
            let mut parts = dmy.split('-');
            let (d, mon, y) = (parts.next()?, parts.next()?, parts.next()?);
            (d, mon, y, *t)
        }
        [_, mon, d, t, y] => (*d, *mon, *y, *t),
        _ => return None,
    };
    let day: u32 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let mut year: i64 = year.parse().ok()?;
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    // Four-digit years only, as every form writes them: an unbounded year
    // (an `If-Modified-Since` of `1 Jan 99999999999999999`) overflowed the
    // day and second arithmetic below, a panic with overflow checks on and
    // a wrapped resume time without (found by the route fuzz target).
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days as u64 * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number, inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        assert_eq!(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format(1_796_149_147), "Tue, 01 Dec 2026 18:19:07 GMT");
        assert_eq!(format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        for secs in [0, 951_782_400, 1_709_210_096, 1_796_149_147, 4_102_444_800] {
            assert_eq!(parse(&format(secs)), Some(secs), "{secs}");
        }
    }

    #[test]
    fn other_forms_and_junk() {
        assert_eq!(parse("Thu, 1 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse("null"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn years_past_9999_are_refused_not_overflowed() {
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
        for year in ["10000", "2000000000", "20222222222226", "99999999999999999"] {
            assert_eq!(parse(&format!("Thu, 01 Jan {year} 00:00:00 GMT")), None);
            assert_eq!(parse(&format!("Thu Jan  1 00:00:00 {year}")), None);
            assert_eq!(
                parse(&format!("Thursday, 01-Jan-{year} 00:00:00 GMT")),
                None
            );
        }
        assert_eq!(
            parse("Thu, 01 Jan +02666666666666666666 00:00:00 GMT"),
            None
        );
    }
}
