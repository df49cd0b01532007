//! An exchange's regular trading session as a source reports it, and when the
//! next one opens: what `bf data watch` schedules its polls by.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// The regular session of one trading day, in the exchange's own time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingSession {
    pub zone: Tz,
    pub open: DateTime<Utc>,
    pub close: DateTime<Utc>,
}

impl TradingSession {
    /// The session of the next weekday after this one, at the same local
    /// open and close times (so a daylight-saving change moves it in UTC).
    /// Holidays are not known here: the source's answer on that day tells.
    pub fn next_weekday(&self) -> Self {
        let local_open = self.open.with_timezone(&self.zone);
        let mut date = local_open.date_naive();
        loop {
            date = date.succ_opt().unwrap_or(NaiveDate::MAX);
            if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                break;
            }
        }
        let open = self
            .zone
            .from_local_datetime(&date.and_time(local_open.time()))
            .earliest()
            .map_or(self.open + TimeDelta::days(1), |t| t.to_utc());
        Self {
            zone: self.zone,
            open,
            close: open + (self.close - self.open),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn friday_is_followed_by_monday_at_the_same_local_time() {
        let friday = TradingSession {
            zone: chrono_tz::America::New_York,
            open: utc("2026-12-04T14:30:00Z"),
            close: utc("2026-12-04T21:00:00Z"),
        };
        let monday = friday.next_weekday();
        assert_eq!(monday.open, utc("2026-12-07T14:30:00Z"));
        assert_eq!(monday.close, utc("2026-12-07T21:00:00Z"));
    }

    #[test]
    fn a_daylight_saving_change_moves_the_session_in_utc() {
        // New York springs forward on Sunday 2027-03-14.
        let friday = TradingSession {
            zone: chrono_tz::America::New_York,
            open: utc("2027-03-12T14:30:00Z"),
            close: utc("2027-03-12T21:00:00Z"),
        };
        let monday = friday.next_weekday();
        assert_eq!(monday.open, utc("2027-03-15T13:30:00Z"));
        assert_eq!(monday.close, utc("2027-03-15T20:00:00Z"));
    }

    #[test]
    fn a_session_that_opens_on_the_previous_utc_day_keeps_its_local_day() {
        // Sydney opens at 10:00 local, 23:00 UTC the day before in summer.
        let thursday = TradingSession {
            zone: chrono_tz::Australia::Sydney,
            open: utc("2026-12-02T23:00:00Z"),
            close: utc("2026-12-03T05:00:00Z"),
        };
        let friday = thursday.next_weekday();
        assert_eq!(friday.open, utc("2026-12-03T23:00:00Z"));
        assert_eq!(friday.close, utc("2026-12-04T05:00:00Z"));
    }
}
