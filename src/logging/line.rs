//! One log line, as text or as a JSON object (pure, for the unit tests).

use log::kv::{Error, Key, Value, VisitSource};
use log::Record;
use std::fmt::Write;
use std::str::FromStr;
use std::time::Duration;

/// How lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `2026-12-01T18:30:00.123 WARN  connection cut cause=slow_consumer`
    #[default]
    Text,
    /// `{"ts":"2026-12-01T18:30:00.123Z","level":"warn","msg":"connection
    /// cut","cause":"slow_consumer"}`, one object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("log-format {s:?}: text or json")),
        }
    }
}

/// The line for `record` at `now` (since the Unix epoch), newline included.
pub fn render(format: LogFormat, now: Duration, record: &Record<'_>) -> String {
    let stamp = format!("{}.{:03}", format_utc(now.as_secs()), now.subsec_millis());
    let message = record.args().to_string();
    match format {
        LogFormat::Text => {
            let mut line = format!("{stamp} {:5} {message}", record.level());
            let _ = record.key_values().visit(&mut TextFields(&mut line));
            line.push('\n');
            line
        }
        LogFormat::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("ts".into(), format!("{stamp}Z").into());
            obj.insert(
                "level".into(),
                record.level().as_str().to_ascii_lowercase().into(),
            );
            obj.insert("target".into(), record.target().into());
            obj.insert("msg".into(), message.into());
            let _ = record.key_values().visit(&mut JsonFields(&mut obj));
            let mut line = serde_json::Value::Object(obj).to_string();
            line.push('\n');
            line
        }
    }
}

/// ` key=value` after the message; values with spaces or quotes quoted.
struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), Error> {
        let text = value.to_string();
        if text.is_empty() || text.contains([' ', '"', '=']) || text.contains(char::is_control) {
            let _ = write!(self.0, " {key}={text:?}");
        } else {
            let _ = write!(self.0, " {key}={text}");
        }
        Ok(())
    }
}

/// Fields of the JSON object; numbers stay numbers.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), Error> {
        let v = match value.to_u64() {
            Some(n) => n.into(),
            None => value.to_string().into(),
        };
        self.0.insert(key.as_str().to_string(), v);
        Ok(())
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for a Unix time (civil-from-days, no time zone).
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::kv::ToValue;
    use log::Level;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14T22:13:20");
    }

    fn with_record(f: impl FnOnce(&Record<'_>)) {
        let kvs: [(&str, log::kv::Value<'_>); 3] = [
            ("cause", "slow_consumer".to_value()),
            ("peer", "127.0.0.1:5000".to_value()),
            ("queued", 70_000u64.to_value()),
        ];
        let args = format_args!("connection cut");
        let record = Record::builder()
            .args(args)
            .level(Level::Warn)
            .target("crier::events")
            .key_values(&kvs)
            .build();
        f(&record);
    }

    #[test]
    fn text_lines_carry_fields_after_the_message() {
        with_record(|r| {
            let line = render(LogFormat::Text, Duration::from_millis(1_700_000_000_123), r);
            assert_eq!(
                line,
                "2023-11-14T22:13:20.123 WARN  connection cut cause=slow_consumer \
                 peer=127.0.0.1:5000 queued=70000\n"
            );
        });
    }

    #[test]
    fn json_lines_are_one_object_with_typed_fields() {
        with_record(|r| {
            let line = render(LogFormat::Json, Duration::from_millis(1_700_000_000_123), r);
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["ts"], "2023-11-14T22:13:20.123Z");
            assert_eq!(v["level"], "warn");
            assert_eq!(v["target"], "crier::events");
            assert_eq!(v["msg"], "connection cut");
            assert_eq!(v["cause"], "slow_consumer");
            assert_eq!(v["queued"], 70_000);
        });
    }

    #[test]
    fn text_values_that_could_split_a_line_are_quoted() {
        let kvs: [(&str, log::kv::Value<'_>); 1] = [("why", "a b\nc".to_value())];
        let args = format_args!("m");
        let r = Record::builder()
            .args(args)
            .level(Level::Info)
            .key_values(&kvs)
            .build();
        let line = render(LogFormat::Text, Duration::ZERO, &r);
        assert_eq!(line, "1970-01-01T00:00:00.000 INFO  m why=\"a b\\nc\"\n");
    }
}
