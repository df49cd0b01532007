//! A chart response into bars and corporate actions.
//!
//! Daily (and weekly, monthly) bars take their trading date from the exchange's
//! own time zone, not from the UTC date of Yahoo's timestamp (a Sydney session
//! opens on the previous UTC day). Yahoo stamps the still-open day with its last
//! trade time, which moves between fetches; the date does not, and daily bars
//! are keyed by it (see `BarsBuilder::push`). Intraday bars keep their UTC
//! start. Rows with a null price are dropped and counted; rows that fail
//! [`Bar::checked`] (the validation every source applies) are dropped and reported.

use bf_core::Interval;
use bf_core::dates::days_since_epoch;
use bf_core::tables::action_kind;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;

use super::YahooError;
use super::wire::{ChartResult, Events};
use crate::bars::{Bar, RawPrices};
use crate::{InvalidBar, TradingSession};

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub date: NaiveDate,
    pub kind: &'static str,
    pub value: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    pub bars: Vec<Bar>,
    pub actions: Vec<Action>,
    pub null_rows: usize,
    pub invalid: Vec<InvalidBar>,
    pub session: Option<TradingSession>,
}

pub fn convert(
    symbol: &str,
    result: &ChartResult,
    interval: Interval,
) -> Result<Converted, YahooError> {
    let zone: Tz =
        result
            .meta
            .exchange_timezone_name
            .parse()
            .map_err(|_| YahooError::Response {
                symbol: symbol.to_string(),
                message: format!(
                    "unknown exchange time zone {:?}",
                    result.meta.exchange_timezone_name
                ),
            })?;
    let mut out = Converted::default();
    let timestamps = result.timestamp.as_deref().unwrap_or_default();
    let quote = result.indicators.quote.first();
    let adjclose = result
        .indicators
        .adjclose
        .as_ref()
        .and_then(|a| a.first())
        .map(|a| a.adjclose.as_slice())
        .unwrap_or_default();
    check_lengths(symbol, timestamps.len(), quote, adjclose.len())?;
    let value = |column: Option<&Vec<Option<f64>>>, i: usize| {
        column.and_then(|c| c.get(i).copied().flatten())
    };
    for (i, &seconds) in timestamps.iter().enumerate() {
        let start = local_time(&zone, seconds, symbol)?;
        let date = start.date_naive();
        let (open, high, low, close) = (
            value(quote.map(|q| &q.open), i),
            value(quote.map(|q| &q.high), i),
            value(quote.map(|q| &q.low), i),
            value(quote.map(|q| &q.close), i),
        );
        let (Some(open), Some(high), Some(low), Some(close)) = (open, high, low, close) else {
            out.null_rows += 1;
            continue;
        };
        // A null adjusted close or volume is Yahoo's way of saying "same as
        // close" and "no trades".
        let raw = RawPrices {
            open: Some(open),
            high: Some(high),
            low: Some(low),
            close: Some(close),
            adj_close: adjclose.get(i).copied().flatten().map(Some),
            volume: Some(
                quote
                    .and_then(|q| q.volume.get(i).copied().flatten())
                    .unwrap_or(0) as f64,
            ),
        };
        let bar = match Bar::checked(days_since_epoch(date), seconds * 1_000_000, raw) {
            Ok(bar) => bar,
            Err(reason) => {
                out.invalid.push(InvalidBar { date, reason });
                continue;
            }
        };
        // The still-open day can come twice (a separate live row): keep the
        // last. The same timestamp twice with other prices is not that, and
        // is said: the earlier row is not stored.
        match out.bars.last_mut() {
            Some(last) if last.ts / 1_000_000 == seconds && *last != bar => {
                out.invalid.push(InvalidBar {
                    date,
                    reason: format!(
                        "timestamp {seconds} sent twice with different values; the later row is kept"
                    ),
                });
                *last = bar;
            }
            Some(last) if !interval.is_intraday() && last.date == bar.date => *last = bar,
            Some(last) if interval.is_intraday() && last.ts == bar.ts => *last = bar,
            _ => out.bars.push(bar),
        }
    }
    if let Some(events) = &result.events {
        convert_events(symbol, &zone, events, &mut out)?;
    }
    out.session = session(zone, result);
    Ok(out)
}

/// The regular period Yahoo reports, when both of its bounds are valid times.
fn session(zone: Tz, result: &ChartResult) -> Option<TradingSession> {
    let regular = &result.meta.current_trading_period.as_ref()?.regular;
    let (open, close) = (
        DateTime::from_timestamp(regular.start, 0)?,
        DateTime::from_timestamp(regular.end, 0)?,
    );
    (open < close).then_some(TradingSession { zone, open, close })
}

/// Dividends and splits, dated in the exchange's zone; a non-positive amount
/// or ratio is reported instead of stored.
fn convert_events(
    symbol: &str,
    zone: &Tz,
    events: &Events,
    out: &mut Converted,
) -> Result<(), YahooError> {
    for dividend in events.dividends.iter().flat_map(|d| d.values()) {
        let date = local_time(zone, dividend.date, symbol)?.date_naive();
        if !(dividend.amount.is_finite() && dividend.amount > 0.0) {
            out.invalid.push(InvalidBar {
                date,
                reason: format!("dividend {} is not a positive amount", dividend.amount),
            });
            continue;
        }
        out.actions.push(Action {
            date,
            kind: action_kind::DIVIDEND,
            value: dividend.amount,
        });
    }
    for split in events.splits.iter().flat_map(|s| s.values()) {
        let date = local_time(zone, split.date, symbol)?.date_naive();
        let ratio = split.numerator / split.denominator;
        if !(ratio.is_finite() && ratio > 0.0) {
            out.invalid.push(InvalidBar {
                date,
                reason: format!(
                    "split {}:{} is not a positive ratio",
                    split.numerator, split.denominator
                ),
            });
            continue;
        }
        out.actions.push(Action {
            date,
            kind: action_kind::SPLIT,
            value: ratio,
        });
    }
    Ok(())
}

/// Every quote array has one value per timestamp; a response where they
/// differ cannot say which value belongs to which bar.
fn check_lengths(
    symbol: &str,
    timestamps: usize,
    quote: Option<&super::wire::Quote>,
    adjclose: usize,
) -> Result<(), YahooError> {
    let mut lengths = vec![("timestamp", timestamps)];
    if let Some(q) = quote {
        lengths.extend([
            ("open", q.open.len()),
            ("high", q.high.len()),
            ("low", q.low.len()),
            ("close", q.close.len()),
            ("volume", q.volume.len()),
        ]);
    }
    if adjclose > 0 {
        lengths.push(("adjclose", adjclose));
    }
    if lengths.iter().all(|&(_, n)| n == timestamps) {
        return Ok(());
    }
    let listed: Vec<String> = lengths
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    Err(YahooError::Response {
        symbol: symbol.to_string(),
        message: format!("arrays of unequal length ({})", listed.join(", ")),
    })
}

fn local_time(zone: &Tz, seconds: i64, symbol: &str) -> Result<DateTime<Tz>, YahooError> {
    DateTime::from_timestamp(seconds, 0)
        .map(|t| t.with_timezone(zone))
        .ok_or_else(|| YahooError::Response {
            symbol: symbol.to_string(),
            message: format!("timestamp {seconds} out of range"),
        })
}

#[cfg(test)]
mod tests {
    use super::super::wire::ChartResponse;
    use super::*;

    fn result(zone: &str, timestamps: &str, quote: &str) -> ChartResult {
        let body = format!(
            r#"{{"chart":{{"result":[{{"meta":{{"symbol":"X","exchangeTimezoneName":"{zone}"}},
              "timestamp":{timestamps},
              "events":{{"dividends":{{"1700000000":{{"amount":0.5,"date":1700000000}}}},
                "splits":{{"1700100000":{{"date":1700100000,"numerator":3,"denominator":2}}}}}},
              "indicators":{{"quote":[{quote}],"adjclose":[{{"adjclose":[9.5,null,9.0,8.0]}}]}}}}],"error":null}}}}"#
        );
        serde_json::from_str::<ChartResponse>(&body)
            .unwrap()
            .chart
            .result
            .unwrap()
            .remove(0)
    }

    #[test]
    fn the_regular_period_becomes_the_session_in_the_exchange_zone() {
        let mut result = result(
            "America/New_York",
            "[1704817800,1704817860,1704817920,1704817980]",
            QUOTE,
        );
        assert_eq!(convert("X", &result, Interval::M1).unwrap().session, None);
        let period = |start, end| super::super::wire::TradingPeriod {
            timezone: "EST".into(),
            start,
            end,
            gmtoffset: -18000,
        };
        result.meta.current_trading_period = Some(super::super::wire::CurrentTradingPeriod {
            pre: None,
            regular: period(1704810600, 1704834000),
            post: None,
        });
        let session = convert("X", &result, Interval::M1)
            .unwrap()
            .session
            .unwrap();
        assert_eq!(session.zone, chrono_tz::America::New_York);
        assert_eq!(
            (session.open.timestamp(), session.close.timestamp()),
            (1704810600, 1704834000)
        );
        // An empty or inverted period is no session.
        result.meta.current_trading_period.as_mut().unwrap().regular =
            period(1704834000, 1704810600);
        assert_eq!(convert("X", &result, Interval::M1).unwrap().session, None);
    }

    const QUOTE: &str = r#"{"open":[10,null,10,10],"high":[11,null,9,11],"low":[9,null,9.5,9],"close":[10,null,9.2,10.5],"volume":[100,null,5,null]}"#;

    #[test]
    fn dates_come_from_the_exchange_zone_and_bad_rows_are_counted() {
        // 2024-01-08 23:00 UTC is 10:00 on the 9th in Sydney.
        let converted = convert(
            "X",
            &result(
                "Australia/Sydney",
                "[1704754800,1704841200,1704927600,1705014000]",
                QUOTE,
            ),
            Interval::D1,
        )
        .unwrap();
        assert_eq!(converted.null_rows, 1);
        assert_eq!(converted.invalid.len(), 1);
        assert!(converted.invalid[0].reason.contains("high 9 < low 9.5"));
        let dates: Vec<i32> = converted.bars.iter().map(|b| b.date).collect();
        let jan = |d| days_since_epoch(NaiveDate::from_ymd_opt(2024, 1, d).unwrap());
        assert_eq!(dates, vec![jan(9), jan(12)]);
        assert_eq!(converted.bars[0].adj_close, 9.5);
        assert_eq!(converted.bars[1].adj_close, 8.0);
        assert_eq!(
            converted.bars[1].volume, 0,
            "a null volume is 0, the bar is kept"
        );
        let kinds: Vec<(&str, f64)> = converted
            .actions
            .iter()
            .map(|a| (a.kind, a.value))
            .collect();
        assert_eq!(kinds, vec![("dividend", 0.5), ("split", 1.5)]);
    }

    #[test]
    fn intraday_bars_keep_their_utc_start_and_a_repeated_live_bar_is_replaced() {
        let converted = convert(
            "X",
            &result(
                "America/New_York",
                "[1704817800,1704818100,1704818400,1704818400]",
                r#"{"open":[10,10,10,10],"high":[11,11,11,12],"low":[9,9,9,9],"close":[10,10,10,11],"volume":[1,2,3,4]}"#,
            ),
            Interval::M5,
        )
        .unwrap();
        let ts: Vec<i64> = converted.bars.iter().map(|b| b.ts / 1_000_000).collect();
        assert_eq!(ts, vec![1704817800, 1704818100, 1704818400]);
        assert_eq!(converted.bars[2].close, 11.0);
        assert_eq!(converted.invalid.len(), 1, "the replaced row is said");
        assert!(
            converted.invalid[0]
                .reason
                .contains("timestamp 1704818400 sent twice with different values")
        );
    }

    #[test]
    fn a_row_repeated_with_the_same_values_is_kept_once_without_a_word() {
        let converted = convert(
            "X",
            &result(
                "America/New_York",
                "[1704817800,1704818100,1704818100,1704818400]",
                r#"{"open":[10,10,10,10],"high":[11,11,11,11],"low":[9,9,9,9],"close":[10,9,9,10],"volume":[1,1,1,1]}"#,
            ),
            Interval::M5,
        )
        .unwrap();
        assert_eq!(converted.bars.len(), 3);
        assert!(converted.invalid.is_empty());
    }

    #[test]
    fn quote_arrays_of_unequal_length_are_an_error_naming_the_symbol() {
        let err = convert(
            "X",
            &result(
                "America/New_York",
                "[1704817800,1704818100,1704818400,1704818700]",
                r#"{"open":[10,10,10],"high":[11,11,11,11],"low":[9,9,9,9],"close":[10,10,10,10],"volume":[1,2,3,4]}"#,
            ),
            Interval::D1,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("X"), "{err}");
        assert!(
            err.contains("arrays of unequal length (timestamp 4, open 3"),
            "{err}"
        );
    }

    #[test]
    fn negative_dividends_and_impossible_splits_are_reported_not_stored() {
        let body = r#"{"chart":{"result":[{"meta":{"symbol":"X","exchangeTimezoneName":"America/New_York"},
            "timestamp":[1704817800],
            "events":{"dividends":{"1700000000":{"amount":-0.5,"date":1700000000}},
              "splits":{"1700100000":{"date":1700100000,"numerator":3,"denominator":0}}},
            "indicators":{"quote":[{"open":[10],"high":[11],"low":[9],"close":[10],"volume":[1]}]}}],"error":null}}"#;
        let result = serde_json::from_str::<ChartResponse>(body)
            .unwrap()
            .chart
            .result
            .unwrap()
            .remove(0);
        let converted = convert("X", &result, Interval::D1).unwrap();
        assert!(converted.actions.is_empty());
        let reasons: Vec<&str> = converted
            .invalid
            .iter()
            .map(|i| i.reason.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "dividend -0.5 is not a positive amount",
                "split 3:0 is not a positive ratio"
            ]
        );
    }
}
