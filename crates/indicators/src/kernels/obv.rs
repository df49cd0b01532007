//! OBV: on-balance volume (TA-Lib `TA_OBV`).

/// Starts at the first row's volume (as TA-Lib does, not at 0) and adds or
/// subtracts each row's volume as the price rises or falls.
pub fn obv(price: &[f64], volume: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(price.len());
    let Some((&first_price, &first_volume)) = price.first().zip(volume.first()) else {
        return out;
    };
    let (mut balance, mut previous) = (first_volume, first_price);
    out.push(balance);
    for (&p, &v) in price.iter().zip(volume).skip(1) {
        if p > previous {
            balance += v;
        } else if p < previous {
            balance -= v;
        }
        out.push(balance);
        previous = p;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_on_up_days_and_subtracts_on_down_days() {
        assert_eq!(
            obv(&[10.0, 11.0, 11.0, 9.0], &[100.0, 20.0, 30.0, 5.0]),
            [100.0, 120.0, 120.0, 115.0]
        );
    }
}
