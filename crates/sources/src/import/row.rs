//! Turning one row's raw values into a [`Bar`], or the reason it cannot be one.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::bars::Bar;

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;
const UNIX_EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

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

/// Parses a number cell; empty, `null`, `NaN` and `-` are missing values.
pub(super) fn parse_number(name: &str, text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text.eq_ignore_ascii_case("nan")
        || text == "-"
    {
        return Ok(None);
    }
    let cleaned;
    let text = if text.contains(',') {
        // Thousands separators, as in "1,234,567" volumes.
        cleaned = text.replace(',', "");
        cleaned.as_str()
    } else {
        text
    };
    text.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("unparsable {name} {text:?}"))
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

pub(super) fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - UNIX_EPOCH).num_days() as i32
}

pub(super) fn format_date(days: i32) -> String {
    (UNIX_EPOCH + chrono::Duration::days(i64::from(days))).to_string()
}
