//! Reading one cell of a vendor file: numbers and dates.

use bf_core::dates::{MICROS_PER_DAY, date_from_days, days_since_epoch};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Parses a number cell; empty, `null`, `NaN` and `-` are missing values.
///
/// A number is plain (`1234.5`, `-0.25`, `1e6`) or uses commas only as
/// thousands separators in their strict form (`1,234,567.89`). Anything else
/// with a comma (`10,5`, `1.234,5`, `10,50`) is rejected rather than guessed:
/// it is a decimal comma or a misaligned column.
pub(super) fn parse_number(name: &str, text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text.eq_ignore_ascii_case("nan")
        || text == "-"
    {
        return Ok(None);
    }
    let unparsable = || format!("unparsable {name} {text:?}");
    let cleaned;
    let plain = if text.contains(',') {
        if !is_grouped_by_thousands(text) {
            return Err(format!(
                "{name} {text:?} is not a plain number (commas are accepted only as thousands separators, as in 1,234,567.5)"
            ));
        }
        cleaned = text.replace(',', "");
        cleaned.as_str()
    } else {
        text
    };
    // Rust also reads "inf" and "infinity"; prices must be finite, which
    // `Bar::checked` enforces with its own message.
    plain.parse::<f64>().map(Some).map_err(|_| unparsable())
}

/// `1,234` or `-12,345,678.25`: one to three leading digits, then groups of
/// exactly three, then an optional fraction.
fn is_grouped_by_thousands(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (1..=3).contains(&first.len())
        && digits(first)
        && groups.all(|group| group.len() == 3 && digits(group))
        && digits(fraction)
}

/// Parses a date cell into (trading date, bar start in UTC microseconds).
/// A plain date starts at midnight UTC; a date-time with an offset keeps its local
/// date and converts its instant to UTC (yfinance writes `2024-01-02 00:00:00-05:00`).
pub(super) fn parse_date(text: &str) -> Result<(i32, i64), String> {
    let text = text.trim();
    for format in ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"] {
        if let Ok(date) = NaiveDate::parse_from_str(text, format) {
            let days = days_since_epoch(date);
            return Ok((days, i64::from(days) * MICROS_PER_DAY));
        }
    }
    let with_offset = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%:z"))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%z"));
    if let Ok(instant) = with_offset {
        return Ok((
            days_since_epoch(instant.date_naive()),
            instant.timestamp_micros(),
        ));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Ok((
                days_since_epoch(naive.date()),
                naive.and_utc().timestamp_micros(),
            ));
        }
    }
    Err(format!("unparsable date {text:?}"))
}

pub(super) fn format_date(days: i32) -> String {
    date_from_days(days).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_are_accepted_only_as_strict_thousands_separators() {
        for (text, value) in [
            ("1,234", 1234.0),
            ("1,234,567", 1_234_567.0),
            ("-12,345.25", -12_345.25),
            ("999", 999.0),
            ("1.5e3", 1500.0),
        ] {
            assert_eq!(parse_number("volume", text), Ok(Some(value)), "{text}");
        }
        for text in [
            "10,5",
            "1.234,5",
            "10,50",
            "1,2345",
            ",123",
            "1,,234",
            "1,234.5,6",
            "12,34.5",
        ] {
            let err = parse_number("close", text).unwrap_err();
            assert!(err.contains("not a plain number"), "{text}: {err}");
        }
        assert!(parse_number("close", "12abc").is_err());
    }

    #[test]
    fn placeholder_dates_are_rejected() {
        let prices = crate::bars::RawPrices {
            open: Some(10.0),
            high: Some(11.0),
            low: Some(9.0),
            close: Some(10.0),
            adj_close: None,
            volume: Some(1.0),
        };
        for text in ["0000-01-01", "9999-12-31", "1799-12-31", "2200-01-01"] {
            let (date, ts) = parse_date(text).unwrap();
            let err = crate::bars::Bar::checked(date, ts, prices).unwrap_err();
            assert!(
                err.starts_with(&format!("date {text} is outside the years 1800–2199")),
                "{err}"
            );
        }
        let (date, ts) = parse_date("1800-01-01").unwrap();
        assert!(crate::bars::Bar::checked(date, ts, prices).is_ok());
    }
}
