//! Annualised volatility: sample standard deviation of one-row log returns.

use super::returns::log_return;
use super::undefined;

/// Trading days per year used to annualise daily volatility.
pub const TRADING_DAYS: f64 = 252.0;

/// Sample (n − 1) standard deviation of the last `period` log returns × √252.
/// Each window is computed in two passes (mean, then squared deviations), so a
/// long series accumulates no drift. First value on row `period` (the first
/// return is on row 1).
pub fn volatility(price: &[f64], period: usize) -> Vec<f64> {
    let returns = log_return(price);
    let mut out = undefined(price.len());
    if period < 2 || price.len() <= period {
        return out;
    }
    let n = period as f64;
    let annualise = TRADING_DAYS.sqrt();
    for today in period..price.len() {
        let window = &returns[today + 1 - period..=today];
        let mean = window.iter().sum::<f64>() / n;
        let squares: f64 = window.iter().map(|r| (r - mean) * (r - mean)).sum();
        out[today] = (squares / (n - 1.0)).sqrt() * annualise;
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
