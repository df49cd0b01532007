//! Annualised volatility: sample standard deviation of one-row log returns.

use super::returns::log_return;
use super::undefined;

/// Trading days per year used to annualise daily volatility.
pub const TRADING_DAYS: f64 = 252.0;

/// Sample (n − 1) standard deviation of the last `period` log returns × √252.
/// First value on row `period` (the first return is on row 1).
pub fn volatility(price: &[f64], period: usize) -> Vec<f64> {
    volatility_of_log_returns(&log_return(price), period)
}

/// As [`volatility`], from log returns already computed (row 0 has none). Each
/// window is computed in two passes (mean, then squared deviations), so a long
/// series accumulates no drift and constant returns give exactly 0.
pub fn volatility_of_log_returns(returns: &[f64], period: usize) -> Vec<f64> {
    let mut out = undefined(returns.len());
    if period < 2 || returns.len() <= period {
        return out;
    }
    let n = period as f64;
    let annualise = TRADING_DAYS.sqrt();
    for (today, window) in returns[1..].windows(period).enumerate() {
        let mean = window.iter().sum::<f64>() / n;
        let squares: f64 = window.iter().map(|r| (r - mean) * (r - mean)).sum();
        out[today + period] = (squares / (n - 1.0)).sqrt() * annualise;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_growth_has_no_volatility() {
        let price: Vec<f64> = (0..30).map(|i| 1.01f64.powi(i)).collect();
        let out = volatility(&price, 20);
        assert!(out[19].is_nan());
        assert!(out[20].abs() < 1e-12);
    }
}
