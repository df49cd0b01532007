use std::fmt;
use std::str::FromStr;

use crate::CoreError;

/// A bar length, spelled as Yahoo spells it; the lake stores the spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    M1,
    M2,
    M5,
    M15,
    M30,
    M60,
    M90,
    D1,
    W1,
    Mo1,
}

impl Interval {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M2 => "2m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::M30 => "30m",
            Self::M60 => "60m",
            Self::M90 => "90m",
            Self::D1 => "1d",
            Self::W1 => "1wk",
            Self::Mo1 => "1mo",
        }
    }

    /// The length of an intraday bar in minutes; `None` for daily and longer.
    pub const fn minutes(self) -> Option<u32> {
        Some(match self {
            Self::M1 => 1,
            Self::M2 => 2,
            Self::M5 => 5,
            Self::M15 => 15,
            Self::M30 => 30,
            Self::M60 => 60,
            Self::M90 => 90,
            Self::D1 | Self::W1 | Self::Mo1 => return None,
        })
    }

    /// Whether a bar is shorter than a trading day (stored with its UTC start time).
    pub const fn is_intraday(self) -> bool {
        !matches!(self, Self::D1 | Self::W1 | Self::Mo1)
    }
}

impl FromStr for Interval {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "1m" => Self::M1,
            "2m" => Self::M2,
            "5m" => Self::M5,
            "15m" => Self::M15,
            "30m" => Self::M30,
            "60m" | "1h" => Self::M60,
            "90m" => Self::M90,
            "1d" => Self::D1,
            "1wk" => Self::W1,
            "1mo" => Self::Mo1,
            other => return Err(CoreError::UnknownInterval(other.to_string())),
        })
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_aliases_1h() {
        for s in ["1m", "5m", "60m", "1d", "1wk", "1mo"] {
            assert_eq!(s.parse::<Interval>().unwrap().as_str(), s);
        }
        assert_eq!("1h".parse::<Interval>().unwrap(), Interval::M60);
        assert!("3d".parse::<Interval>().is_err());
        assert!(Interval::M5.is_intraday() && !Interval::D1.is_intraday());
        assert_eq!(Interval::M90.minutes(), Some(90));
        assert_eq!(Interval::W1.minutes(), None);
    }
}
