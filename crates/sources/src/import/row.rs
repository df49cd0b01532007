//! Turning one row's raw values into a [`Bar`], or the reason it cannot be one.

use bf_core::dates::{MICROS_PER_DAY, date_from_days, days_since_epoch};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::bars::Bar;

/// A row's numbers as read; `None` is a missing value. `adj_close` is `None` when
/// the file has no such column, and then equals `close`.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawPrices {
    pub open: Option<f64>,
    pub high: Option<f64>,
    pub low: Option<f64>,
    pub close: Option<f64>,
    pub adj_close: Option<Option<f64>>,
    pub volume: Option<f64>,
}

/// Validates a row. The checks are those a vendor file most often fails: missing
/// or non-positive prices, high below low, open/close outside the day's range,
/// negative or fractional volume.
pub(super) fn check(date: i32, ts: i64, raw: RawPrices) -> Result<Bar, String> {
    if !(plausible_days().contains(&date)) {
        return Err(format!(
            "date {} is outside the years {}–{} (a placeholder or a misread column)",
            format_date(date),
            FIRST_PLAUSIBLE_YEAR,
            LAST_PLAUSIBLE_YEAR
        ));
    }
    let present = |name: &str, value: Option<f64>| -> Result<f64, String> {
        match value {
            None => Err(format!("missing {name}")),
            Some(v) if !v.is_finite() => Err(format!("{name} is not a finite number")),
            Some(v) if v <= 0.0 && name != "volume" => Err(format!("non-positive {name} {v}")),
            Some(v) => Ok(v),
        }
    };
    let open = present("open", raw.open)?;
    let high = present("high", raw.high)?;
    let low = present("low", raw.low)?;
    let close = present("close", raw.close)?;
    let adj_close = match raw.adj_close {
        None => close,
        Some(value) => present("adj_close", value)?,
    };
    let volume = present("volume", raw.volume)?;
    if high < low {
        return Err(format!("high {high} < low {low}"));
    }
    for (name, value) in [("open", open), ("close", close)] {
        if value < low || value > high {
            return Err(format!("{name} {value} outside [low {low}, high {high}]"));
        }
    }
    if volume < 0.0 {
        return Err(format!("negative volume {volume}"));
    }
    if volume.fract() != 0.0 || volume > i64::MAX as f64 {
        return Err(format!("volume {volume} is not a whole number"));
    }
    Ok(Bar {
        date,
        ts,
        open,
        high,
        low,
        close,
        adj_close,
        volume: volume as i64,
    })
}

/// Bars dated outside these years are vendor placeholders (0000-01-01,
/// 9999-12-31) or a column read as a date by mistake.
const FIRST_PLAUSIBLE_YEAR: i32 = 1800;
const LAST_PLAUSIBLE_YEAR: i32 = 2199;

fn plausible_days() -> std::ops::RangeInclusive<i32> {
    let day = |year, month, day| {
        days_since_epoch(NaiveDate::from_ymd_opt(year, month, day).expect("valid date"))
    };
    day(FIRST_PLAUSIBLE_YEAR, 1, 1)..=day(LAST_PLAUSIBLE_YEAR, 12, 31)
}

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
    // `check` enforces with its own message.
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
        let prices = RawPrices {
            open: Some(10.0),
            high: Some(11.0),
            low: Some(9.0),
            close: Some(10.0),
            adj_close: None,
            volume: Some(1.0),
        };
        for text in ["0000-01-01", "9999-12-31", "1799-12-31", "2200-01-01"] {
            let (date, ts) = parse_date(text).unwrap();
            let err = check(date, ts, prices).unwrap_err();
            assert!(
                err.starts_with(&format!("date {text} is outside the years 1800–2199")),
                "{err}"
            );
        }
        let (date, ts) = parse_date("1800-01-01").unwrap();
        assert!(check(date, ts, prices).is_ok());
    }
}
