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

/// As [`volatility`], from log returns already computed (row 0 has none).
/// Running sums of deviations from an origin reset to the window's mean every
/// `period` rows (so no drift accumulates); a window whose mean has moved far
/// from the origin relative to its spread, where Σd² − (Σd)²/n would cancel
/// away digits, is recomputed in two passes (constant growth gives exactly 0).
pub fn volatility_of_log_returns(returns: &[f64], period: usize) -> Vec<f64> {
    let mut out = undefined(returns.len());
    if period < 2 || returns.len() <= period {
        return out;
    }
    let n = period as f64;
    let annualise = TRADING_DAYS.sqrt();
    let (mut origin, mut sum, mut sum_sq) = (0.0, 0.0, 0.0);
    for today in period..returns.len() {
        let window = &returns[today + 1 - period..=today];
        if (today - period).is_multiple_of(period) {
            origin = window.iter().sum::<f64>() / n;
            (sum, sum_sq) = (0.0, 0.0);
            for &r in &window[..period - 1] {
                sum += r - origin;
                sum_sq += (r - origin) * (r - origin);
            }
        }
        let added = returns[today] - origin;
        sum += added;
        sum_sq += added * added;
        let mut centered = sum_sq - sum * sum / n;
        if centered <= sum_sq * 1e-4 {
            let mean = window.iter().sum::<f64>() / n;
            centered = window.iter().map(|r| (r - mean) * (r - mean)).sum();
        }
        out[today] = (centered / (n - 1.0)).sqrt() * annualise;
        let dropped = window[0] - origin;
        sum -= dropped;
        sum_sq -= dropped * dropped;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_after_a_regime_change() {
        // Volatile start, then near-constant growth: a stale origin would cancel badly.
        let mut price = vec![100.0];
        for i in 1..400 {
            let r = if i < 100 {
                0.03 * (f64::from(i) * 1.7).sin()
            } else {
                0.01 + 1e-6 * (f64::from(i)).cos()
            };
            price.push(price[i as usize - 1] * f64::exp(r));
        }
        let returns = log_return(&price);
        let out = volatility_of_log_returns(&returns, 20);
        for today in 20..price.len() {
            let window = &returns[today - 19..=today];
            let mean = window.iter().sum::<f64>() / 20.0;
            let var = window.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / 19.0;
            let expected = var.sqrt() * TRADING_DAYS.sqrt();
            assert!(
                (out[today] - expected).abs() <= 1e-9 * expected.max(1e-6),
                "row {today}: {} vs {expected}",
                out[today]
            );
        }
    }

    #[test]
    fn constant_growth_has_no_volatility() {
        let price: Vec<f64> = (0..30).map(|i| 1.01f64.powi(i)).collect();
        let out = volatility(&price, 20);
        assert!(out[19].is_nan());
        assert!(out[20].abs() < 1e-12);
    }
}
