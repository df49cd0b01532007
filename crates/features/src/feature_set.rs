//! The registry of SPEC's feature columns: which kernel fills which column.
//! Adding a feature is its kernel module, one line here, and its name in
//! `bf_core::tables::FEATURE_COLUMNS`.

use bf_core::tables::FEATURE_COLUMNS;

use bf_indicators::kernels::{
    adx::adx, atr::atr, bbands::bbands, ema::ema, macd::macd, obv::obv, returns, rsi::rsi,
    sma::sma, stoch::stoch, volatility::volatility_of_log_returns, volume_z::volume_z,
};

/// One symbol's bars in date order, on adjusted prices (SPEC: f = adj_close /
/// close; adjusted open/high/low = raw × f; adjusted close = adj_close).
#[derive(Debug, Clone, Copy)]
pub struct Prices<'a> {
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
}

/// Columns filled by one kernel call, in the order it returns them.
#[derive(Debug)]
pub struct Feature {
    pub columns: &'static [&'static str],
    pub compute: fn(&Prices) -> Vec<Vec<f64>>,
}

/// Every feature; together they fill each of `FEATURE_COLUMNS` once.
pub static FEATURES: &[Feature] = &[
    Feature {
        columns: &["ret_1"],
        compute: |p| vec![returns::simple_return(p.close)],
    },
    // One logarithm per row serves both columns.
    Feature {
        columns: &["log_ret_1", "vol_20"],
        compute: |p| {
            let log_returns = returns::log_return(p.close);
            let volatility = volatility_of_log_returns(&log_returns, 20);
            vec![log_returns, volatility]
        },
    },
    Feature {
        columns: &["sma_20"],
        compute: |p| vec![sma(p.close, 20)],
    },
    Feature {
        columns: &["sma_50"],
        compute: |p| vec![sma(p.close, 50)],
    },
    Feature {
        columns: &["sma_200"],
        compute: |p| vec![sma(p.close, 200)],
    },
    Feature {
        columns: &["ema_12"],
        compute: |p| vec![ema(p.close, 12)],
    },
    Feature {
        columns: &["ema_26"],
        compute: |p| vec![ema(p.close, 26)],
    },
    Feature {
        columns: &["macd", "macd_signal", "macd_hist"],
        compute: |p| {
            let m = macd(p.close, 12, 26, 9);
            vec![m.macd, m.signal, m.hist]
        },
    },
    Feature {
        columns: &["rsi_14"],
        compute: |p| vec![rsi(p.close, 14)],
    },
    Feature {
        columns: &["bb_upper", "bb_middle", "bb_lower"],
        compute: |p| {
            let b = bbands(p.close, 20, 2.0, 2.0);
            vec![b.upper, b.middle, b.lower]
        },
    },
    Feature {
        columns: &["atr_14"],
        compute: |p| vec![atr(p.high, p.low, p.close, 14)],
    },
    Feature {
        columns: &["adx_14"],
        compute: |p| vec![adx(p.high, p.low, p.close, 14)],
    },
    Feature {
        columns: &["stoch_k", "stoch_d"],
        compute: |p| {
            let s = stoch(p.high, p.low, p.close, 14, 3, 3);
            vec![s.k, s.d]
        },
    },
    Feature {
        columns: &["obv"],
        compute: |p| vec![obv(p.close, p.volume)],
    },
    Feature {
        columns: &["volume_z_20"],
        compute: |p| vec![volume_z(p.volume, 20)],
    },
];

/// Every feature column for one symbol, in `FEATURE_COLUMNS` order.
pub fn compute_all(prices: &Prices) -> Vec<Vec<f64>> {
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); FEATURE_COLUMNS.len()];
    for feature in FEATURES {
        for (name, values) in feature.columns.iter().zip((feature.compute)(prices)) {
            columns[column_index(name)] = values;
        }
    }
    columns
}

fn column_index(name: &str) -> usize {
    FEATURE_COLUMNS
        .iter()
        .position(|c| *c == name)
        .expect("registry names are table columns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_fills_every_table_column_once() {
        let mut names: Vec<&str> = FEATURES
            .iter()
            .flat_map(|f| f.columns.iter().copied())
            .collect();
        names.sort_unstable();
        let mut expected = FEATURE_COLUMNS.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected);
    }

    #[test]
    fn every_kernel_returns_its_columns_at_full_length() {
        let series: Vec<f64> = (0..30).map(|i| 10.0 + f64::from(i % 7)).collect();
        let prices = Prices {
            open: &series,
            high: &series,
            low: &series,
            close: &series,
            volume: &series,
        };
        for feature in FEATURES {
            let columns = (feature.compute)(&prices);
            assert_eq!(
                columns.len(),
                feature.columns.len(),
                "{:?}",
                feature.columns
            );
            assert!(columns.iter().all(|c| c.len() == series.len()));
        }
    }
}
