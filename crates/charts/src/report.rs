//! `bf report`: one static HTML page for a symbol list — the signal statistics
//! of its symbols, then every symbol's chart (an SVG file beside the page) with
//! its latest signals. The page needs no server and no script.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bf_core::tables::{SIGNALS, col};
use bf_lake::Lake;
use bf_signals::stats::{HORIZONS, SideStats, side_stats};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type};

use crate::ChartError;
use crate::draw::{DEFAULT_SIZE, render_to_file};
use crate::series::ChartSeries;

/// Latest signals listed under each chart.
pub const LATEST_SIGNALS: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    pub page: PathBuf,
    pub charts: usize,
    pub signals: usize,
    /// Symbols without a chart, and why.
    pub missing: Vec<(String, String)>,
}

/// One row of a symbol's latest signals.
#[derive(Debug, Clone, PartialEq)]
struct LatestSignal {
    date: String,
    strategy: String,
    side: String,
    strength: Option<f64>,
    price: Option<f64>,
}

/// Writes `DIR/LIST.html` and `DIR/charts/SYMBOL.svg` for `symbols` at
/// `interval`. A symbol without features is listed as missing, not fatal.
/// `progress` hears how many symbols are done.
pub async fn write_report(
    lake: &Lake,
    list: &str,
    symbols: &[String],
    interval: &str,
    dir: &Path,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ReportSummary, ChartError> {
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|source| ChartError::Io {
        path: charts_dir.display().to_string(),
        source,
    })?;
    let ctx = lake.session().await?;
    let stats = side_stats(lake, Some(symbols)).await?;
    let latest = latest_signals(lake, symbols, interval).await?;

    let mut sections = String::new();
    let mut missing = Vec::new();
    let mut charts = 0;
    for (done, symbol) in symbols.iter().enumerate() {
        progress(done);
        let series = match ChartSeries::load(&ctx, symbol, interval, None).await {
            Ok(series) => series,
            Err(err @ ChartError::NoBars { .. }) => {
                missing.push((symbol.clone(), err.to_string()));
                continue;
            }
            Err(err) => return Err(err),
        };
        let file = format!("{}.svg", file_stem(symbol));
        render_to_file(&series, &charts_dir.join(&file), DEFAULT_SIZE)?;
        charts += 1;
        symbol_section(&mut sections, &series, &file, latest.get(symbol));
    }

    let page = dir.join(format!("{}.html", file_stem(list)));
    let html = page_html(list, interval, symbols.len(), &stats, &sections, &missing);
    std::fs::write(&page, html).map_err(|source| ChartError::Io {
        path: page.display().to_string(),
        source,
    })?;
    Ok(ReportSummary {
        page,
        charts,
        signals: stats.iter().map(|s| s.signals as usize).sum(),
        missing,
    })
}

/// The newest `LATEST_SIGNALS` signals of each symbol.
async fn latest_signals(
    lake: &Lake,
    symbols: &[String],
    interval: &str,
) -> Result<BTreeMap<String, Vec<LatestSignal>>, ChartError> {
    let mut latest: BTreeMap<String, Vec<LatestSignal>> = BTreeMap::new();
    if lake.version(&SIGNALS).await?.is_none() {
        return Ok(latest);
    }
    let query = format!(
        "SELECT {sym}, {date}, {strategy}, {side}, {strength}, {price} FROM (\
           SELECT *, row_number() OVER (PARTITION BY {sym} ORDER BY {date} DESC, {strategy}) AS n \
           FROM {table} {filter} AND \"{interval_col}\" = {interval}) \
         WHERE n <= {LATEST_SIGNALS} \
         ORDER BY {sym}, {date} DESC, {strategy}",
        sym = col::SYMBOL,
        date = col::DATE,
        strategy = col::STRATEGY,
        side = col::SIDE,
        strength = col::STRENGTH,
        price = col::PRICE,
        table = SIGNALS.name,
        filter = bf_lake::symbol_filter(Some(symbols)),
        interval_col = col::INTERVAL,
        interval = bf_lake::sql_literal(interval),
    );
    for batch in lake.sql(&query).await?.batches {
        let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
        let (symbols, strategies, sides) = (text(0)?, text(2)?, text(3)?);
        let dates = batch.column(1).as_primitive::<Date32Type>();
        let strengths = batch.column(4).as_primitive::<Float64Type>();
        let prices = batch.column(5).as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let number = |a: &datafusion::arrow::array::Float64Array| {
                (!a.is_null(row)).then(|| a.value(row))
            };
            latest
                .entry(symbols.as_string::<i32>().value(row).to_string())
                .or_default()
                .push(LatestSignal {
                    date: dates
                        .value_as_date(row)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    strategy: strategies.as_string::<i32>().value(row).to_string(),
                    side: sides.as_string::<i32>().value(row).to_string(),
                    strength: number(strengths),
                    price: number(prices),
                });
        }
    }
    Ok(latest)
}

/// A file name for a symbol or list: symbols may hold `^` or `=` (indices,
/// futures), which are kept out of file names.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn symbol_section(
    out: &mut String,
    series: &ChartSeries,
    chart_file: &str,
    latest: Option<&Vec<LatestSignal>>,
) {
    let symbol = escape(&series.symbol);
    let last = &series.bars[series.bars.len() - 1];
    let previous = series.bars.len().checked_sub(2).map(|i| &series.bars[i]);
    let change = previous.map_or_else(String::new, |p| {
        format!(" ({:+.2}%)", (last.close / p.close - 1.0) * 100.0)
    });
    let _ = write!(
        out,
        "<section id=\"{symbol}\"><h2>{symbol}</h2>\
         <p class=\"quote\">last close {:.2}{change} on {}</p>\
         <img src=\"charts/{}\" alt=\"{symbol} chart\" width=\"{}\" height=\"{}\" loading=\"lazy\">",
        last.close,
        last.date,
        escape(chart_file),
        DEFAULT_SIZE.0,
        DEFAULT_SIZE.1,
    );
    match latest {
        Some(rows) if !rows.is_empty() => {
            out.push_str(
                "<table><thead><tr><th>date</th><th>strategy</th><th>side</th>\
                 <th class=\"num\">strength</th><th class=\"num\">price</th></tr></thead><tbody>",
            );
            for s in rows {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    escape(&s.date),
                    escape(&s.strategy),
                    s.side.to_ascii_lowercase(),
                    escape(&s.side),
                    s.strength.map_or_else(String::new, |v| format!("{v:.3}")),
                    s.price.map_or_else(String::new, |v| format!("{v:.2}")),
                );
            }
            out.push_str("</tbody></table>");
        }
        _ => out.push_str("<p>No signals for this symbol.</p>"),
    }
    out.push_str("</section>\n");
}

fn page_html(
    list: &str,
    interval: &str,
    symbol_count: usize,
    stats: &[SideStats],
    sections: &str,
    missing: &[(String, String)],
) -> String {
    let list = escape(list);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>bf report: {list}</title><style>{STYLE}</style></head><body>\
         <h1>Signals report: {list}</h1>\
         <p>{symbol_count} symbols, interval {}, generated by bf {} at {} UTC. \
         Prices are split- and dividend-adjusted.</p>",
        escape(interval),
        env!("CARGO_PKG_VERSION"),
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
    );
    html.push_str("<h2>Signal statistics</h2>");
    if stats.is_empty() {
        html.push_str("<p>No signals yet for these symbols.</p>");
    } else {
        html.push_str(
            "<table><thead><tr><th>strategy</th><th>side</th><th class=\"num\">signals</th>",
        );
        for h in HORIZONS {
            let _ = write!(
                html,
                "<th class=\"num\">hit {h}</th><th class=\"num\">mean {h}</th>"
            );
        }
        html.push_str("</tr></thead><tbody>");
        for s in stats {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td>",
                escape(&s.strategy),
                s.side.to_ascii_lowercase(),
                escape(&s.side),
                s.signals
            );
            for h in &s.horizons {
                let _ = write!(
                    html,
                    "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                    percent(h.hit_rate),
                    percent(h.mean_return)
                );
            }
            html.push_str("</tr>");
        }
        html.push_str(
            "</tbody></table><p class=\"note\">hit: share of signals whose forward return over \
             that many bars had the signal's sign (BUY &gt; 0, SELL &lt; 0); mean: average \
             forward return; — = no signal that old yet.</p>",
        );
    }
    if !missing.is_empty() {
        html.push_str("<h2>Symbols without a chart</h2><ul>");
        for (symbol, reason) in missing {
            let _ = write!(html, "<li>{}: {}</li>", escape(symbol), escape(reason));
        }
        html.push_str("</ul>");
    }
    html.push_str(sections);
    html.push_str("</body></html>\n");
    html
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1440px;\
color:#222}table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{padding:.25rem .7rem;\
border-bottom:1px solid #ddd;text-align:left}th.num,td.num{text-align:right}\
td.buy{color:#00897b;font-weight:600}td.sell{color:#e53935;font-weight:600}\
img{max-width:100%;height:auto;border:1px solid #eee}section{margin-top:2.5rem}\
.quote,.note{color:#555}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_file_safe() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(file_stem("^GSPC"), "_GSPC");
        assert_eq!(file_stem("BRK-B"), "BRK-B");
        assert_eq!(file_stem("../lists/x"), ".._lists_x");
    }
}
