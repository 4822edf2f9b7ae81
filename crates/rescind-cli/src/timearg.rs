//! Parsing of TIME and DUR arguments.

use std::time::Duration;

/// A duration like `90s`, `15m`, `1h`, `30d` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like 90s, 15m, 1h or 30d ({e})"))
}

/// A point in time, as unix milliseconds: RFC 3339 (`2026-11-23T10:00:00Z`,
/// offsets allowed), unix seconds (`1795000000`), `now`, `now-15m` or `now+1h`.
pub fn parse_time_ms(s: &str, now_ms: u64) -> Result<u64, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "`{s}` is not a time: use RFC 3339 (2026-11-23T10:00:00Z), unix seconds, now, now-15m or now+1h"
        )
    };
    if let Some(rest) = s.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ms);
        }
        let (sign, dur) = rest.split_at(1);
        let d = parse_duration(dur)?.as_millis() as u64;
        return match sign {
            "-" => now_ms.checked_sub(d).ok_or_else(bad),
            "+" => now_ms.checked_add(d).ok_or_else(bad),
            _ => Err(bad()),
        };
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| bad())?;
        return secs.checked_mul(1000).ok_or_else(bad);
    }
    let t =
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| bad())?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| format!("`{s}` is before 1970"))
}

/// RFC 3339 in UTC for unix milliseconds.
pub fn format_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time_ms("2026-11-23T10:00:00Z", 0), Ok(1_795_428_000_000));
        assert_eq!(
            parse_time_ms("2026-11-23T11:00:00+01:00", 0),
            Ok(1_795_428_000_000)
        );
        assert_eq!(parse_time_ms("1795428000", 0), Ok(1_795_428_000_000));
        assert_eq!(parse_time_ms("now", 5_000), Ok(5_000));
        assert_eq!(parse_time_ms("now-2s", 5_000), Ok(3_000));
        assert_eq!(parse_time_ms("now+1m", 0), Ok(60_000));
        assert!(parse_time_ms("now-1h", 5_000).is_err());
        assert!(parse_time_ms("yesterday", 0).is_err());
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(format_ms(1_795_428_000_000), "2026-11-23T10:00:00Z");
    }
}
