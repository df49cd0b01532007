//! `bf-bench kernels`: the features build's compute phase in memory, without
//! reading or writing the lake: every indicator kernel alone on one core, all
//! of them on one core, and `compute_features` (what the build runs per
//! group) on rayon's threads (every core unless `RAYON_NUM_THREADS` says
//! otherwise). The series are the synthetic generator's.

use std::time::Instant;

use anyhow::Context as _;
use bf_core::tables::col;
use bf_features::feature_set::{FEATURES, Prices, compute_all};
use bf_features::frame::{Stamp, compute_features};
use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use serde::Serialize;

use crate::BenchKernelsArgs;
use crate::benches::{bench_symbols, nth_weekday_from, synthetic_bars};
use crate::present::{Printer, count_text};

/// One series' adjusted prices, as the build hands them to the kernels.
struct Series {
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
}

impl Series {
    /// The adjusted prices and volume of one `features` batch (one series).
    fn of(features: &RecordBatch) -> anyhow::Result<Self> {
        let floats = |name: &str| -> anyhow::Result<Vec<f64>> {
            Ok(features
                .column_by_name(name)
                .with_context(|| format!("no {name} column"))?
                .as_primitive::<Float64Type>()
                .values()
                .to_vec())
        };
        let volume = features
            .column_by_name(col::VOLUME)
            .context("no volume column")?
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|&v| v as f64)
            .collect();
        Ok(Self {
            open: floats(col::ADJ_OPEN)?,
            high: floats(col::ADJ_HIGH)?,
            low: floats(col::ADJ_LOW)?,
            close: floats(col::ADJ_CLOSE)?,
            volume,
        })
    }

    fn prices(&self) -> Prices<'_> {
        Prices {
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            volume: &self.volume,
        }
    }
}

#[derive(Debug, Serialize)]
struct KernelPass {
    /// A kernel's columns, or what ran.
    pass: String,
    cores: usize,
    rows: usize,
    /// The fastest of the runs.
    seconds: f64,
    rows_per_second: f64,
}

const COLUMNS: [&str; 5] = ["pass", "cores", "rows", "best s", "rows/s"];

pub async fn kernels(args: BenchKernelsArgs, printer: &Printer) -> anyhow::Result<()> {
    let start = NaiveDate::from_ymd_opt(2000, 1, 3).expect("valid date");
    let end = nth_weekday_from(start, args.generated.days);
    let prepared = Instant::now();
    let bars = synthetic_bars(&bench_symbols(args.generated.symbols)?, start, end);
    let rows = bars.num_rows();
    let stamp = Stamp {
        ohlcv_version: 0,
        computed_at: 0,
    };
    let series = compute_features(std::slice::from_ref(&bars), stamp)?
        .iter()
        .map(Series::of)
        .collect::<anyhow::Result<Vec<_>>>()?;
    printer.summary(&format!(
        "generated {} bars in {} series in {:.1}s (untimed)",
        count_text(rows),
        series.len(),
        prepared.elapsed().as_secs_f64()
    ));

    let best = |run: &mut dyn FnMut()| {
        (0..args.runs)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let pass = |pass: String, cores: usize, seconds: f64| KernelPass {
        pass,
        cores,
        rows,
        seconds,
        rows_per_second: rows as f64 / seconds,
    };
    let mut passes: Vec<KernelPass> = FEATURES
        .iter()
        .map(|feature| {
            let seconds = best(&mut || {
                for one in &series {
                    std::hint::black_box((feature.compute)(&one.prices()));
                }
            });
            pass(feature.columns.join(", "), 1, seconds)
        })
        .collect();
    let seconds = best(&mut || {
        for one in &series {
            std::hint::black_box(compute_all(&one.prices()));
        }
    });
    passes.push(pass("every kernel".into(), 1, seconds));
    let cores = rayon::current_num_threads();
    let seconds = best(&mut || {
        std::hint::black_box(
            compute_features(std::slice::from_ref(&bars), stamp)
                .expect("the same bars computed before the passes"),
        );
    });
    passes.push(pass(
        "compute_features (adjust, kernels, Arrow columns)".into(),
        cores,
        seconds,
    ));

    if printer.json() {
        printer.json_value(&passes)?;
        return Ok(());
    }
    let table = passes
        .iter()
        .map(|p| {
            vec![
                p.pass.clone(),
                p.cores.to_string(),
                count_text(p.rows),
                format!("{:.3}", p.seconds),
                count_text(p.rows_per_second as usize),
            ]
        })
        .collect();
    printer.table(&COLUMNS, &COLUMNS[1..], table)?;
    printer.summary(&format!(
        "{} symbols × {} days in memory, best of {} runs; no lake read or write",
        args.generated.symbols, args.generated.days, args.runs
    ));
    Ok(())
}
