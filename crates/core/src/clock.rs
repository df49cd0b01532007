//! The wall clock of long-running commands. `bf data watch` decides from it
//! whether an exchange is open; a simulated clock (a start instant running at
//! a multiple of real time) replays a trading day in seconds, for tests and
//! demonstrations against the local Yahoo server.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Simulated {
        start: DateTime<Utc>,
        started: Instant,
        /// Simulated seconds per real second.
        speed: f64,
    },
}

impl Clock {
    /// A clock at `start` from now on, running `speed` times faster than real
    /// time (speed must be positive and finite; anything else counts as 1).
    pub fn simulated(start: DateTime<Utc>, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        Self::Simulated {
            start,
            started: Instant::now(),
            speed,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Simulated {
                start,
                started,
                speed,
            } => {
                let elapsed = started.elapsed().as_secs_f64() * speed;
                *start + TimeDelta::microseconds((elapsed * 1e6) as i64)
            }
        }
    }

    /// How long to really wait until the clock shows `until` (zero when past).
    pub fn real_wait(&self, until: DateTime<Utc>) -> Duration {
        let ahead = (until - self.now()).to_std().unwrap_or_default();
        match self {
            Self::System => ahead,
            Self::Simulated { speed, .. } => ahead.div_f64(*speed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_starts_where_told_and_runs_faster() {
        let start = DateTime::parse_from_rfc3339("2026-11-30T14:25:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::simulated(start, 600.0);
        assert!(clock.now() >= start && clock.now() < start + TimeDelta::seconds(60));
        let wait = clock.real_wait(start + TimeDelta::minutes(10));
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(500));
        assert_eq!(clock.real_wait(start - TimeDelta::hours(1)), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(50));
        assert!(clock.now() >= start + TimeDelta::seconds(30));
    }

    #[test]
    fn the_system_clock_is_utc_now() {
        let drift = (Clock::System.now() - Utc::now()).num_seconds().abs();
        assert!(drift <= 1);
        assert_eq!(
            Clock::System.real_wait(Utc::now() - TimeDelta::seconds(5)),
            Duration::ZERO
        );
    }
}
