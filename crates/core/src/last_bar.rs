use chrono::NaiveDate;

/// A symbol's last bar in the lake: where an incremental fetch starts, and what
/// it compares to see whether the vendor re-adjusted history since.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastBar {
    pub date: NaiveDate,
    /// Bar start, microseconds since the epoch, UTC (a daily bar's is its date).
    pub ts: i64,
    pub close: f64,
    pub adj_close: f64,
}
