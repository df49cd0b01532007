//! How the lake stores time: a date as days since 1970-01-01 (Arrow Date32), an
//! instant as microseconds since the epoch, UTC (Arrow Timestamp(µs, UTC)).

use chrono::NaiveDate;

pub const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

const UNIX_EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// A date as Arrow's Date32: days since 1970-01-01.
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - UNIX_EPOCH).num_days() as i32
}

/// The date of a Date32 value.
pub fn date_from_days(days: i32) -> NaiveDate {
    UNIX_EPOCH + chrono::Duration::days(i64::from(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(days_since_epoch(date), 19_782);
        assert_eq!(date_from_days(19_782), date);
        assert_eq!(date_from_days(-1).to_string(), "1969-12-31");
    }
}
