//! How far back Yahoo keeps intraday bars, and how much of it one request may
//! span (asking beyond either returns an error or nothing at all, so bf splits
//! requests and refuses an impossible range up front).

use bf_core::Interval;
use chrono::{NaiveDate, TimeDelta};

use super::YahooError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit {
    /// Days of history kept, counted back from today; `None` = all of it.
    pub days_back: Option<i64>,
    /// Longest span of one request, in days; `None` = any.
    pub request_days: Option<i64>,
}

pub const fn history_limit(interval: Interval) -> HistoryLimit {
    let (days_back, request_days) = match interval {
        Interval::M1 => (Some(30), Some(7)),
        Interval::M2 | Interval::M5 | Interval::M15 | Interval::M30 | Interval::M90 => {
            (Some(60), Some(59))
        }
        Interval::M60 => (Some(730), Some(365)),
        Interval::D1 | Interval::W1 | Interval::Mo1 => (None, None),
    };
    HistoryLimit {
        days_back,
        request_days,
    }
}

impl HistoryLimit {
    /// An error naming the interval and its limit when `start` is older than
    /// Yahoo keeps.
    pub fn check(
        &self,
        interval: Interval,
        start: NaiveDate,
        today: NaiveDate,
    ) -> Result<(), YahooError> {
        match self.days_back {
            Some(days) if start < today - TimeDelta::days(days) => Err(YahooError::BeyondHistory {
                interval: interval.as_str(),
                days,
                start,
            }),
            _ => Ok(()),
        }
    }

    pub fn request_span_seconds(&self) -> Option<i64> {
        self.request_days.map(|days| days * 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intraday_history_is_limited_and_daily_is_not() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let limit = history_limit(Interval::M1);
        assert!(
            limit
                .check(Interval::M1, today - TimeDelta::days(30), today)
                .is_ok()
        );
        let err = limit
            .check(Interval::M1, today - TimeDelta::days(31), today)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Yahoo keeps 1m bars for the last 30 days only; --start 2026-10-25 is older"
        );
        assert_eq!(limit.request_span_seconds(), Some(7 * 86_400));
        let daily = history_limit(Interval::D1);
        assert!(daily.check(Interval::D1, NaiveDate::MIN, today).is_ok());
        assert_eq!(daily.request_span_seconds(), None);
    }
}
