//! Draws a `ChartSeries`: candlesticks with SMA 50/200 and Bollinger bands and
//! the signals as markers (colour = strategy, ▲ BUY below the bar, ▼ SELL
//! above it), then an RSI pane and a MACD pane on the same dated x axis.
//! Bars are placed by index, not by calendar day, so weekends and holidays
//! leave no gaps, as in trading charts.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::ChartError;
use crate::series::{ChartBar, ChartSeries};

/// Default image size in pixels.
pub const DEFAULT_SIZE: (u32, u32) = (1400, 900);

/// The font every label is drawn with (bundled, so PNGs look the same on
/// every machine; SVGs name `sans-serif` and the viewer picks its own).
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const UP: RGBColor = RGBColor(38, 166, 154);
const DOWN: RGBColor = RGBColor(239, 83, 80);
const SMA_50: RGBColor = RGBColor(33, 150, 243);
const SMA_200: RGBColor = RGBColor(255, 152, 0);
const BANDS: RGBColor = RGBColor(120, 144, 156);
const RSI: RGBColor = RGBColor(126, 87, 194);
const MACD: RGBColor = RGBColor(33, 150, 243);
const MACD_SIGNAL: RGBColor = RGBColor(255, 152, 0);
/// One colour per strategy, in the order of `ChartSeries::strategies`.
const STRATEGY_COLOURS: [RGBColor; 8] = [
    RGBColor(142, 36, 170),
    RGBColor(0, 131, 143),
    RGBColor(216, 27, 96),
    RGBColor(26, 35, 126),
    RGBColor(130, 119, 23),
    RGBColor(121, 85, 72),
    RGBColor(33, 33, 33),
    RGBColor(0, 150, 60),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// The format a file name asks for, by its extension.
    pub fn from_path(path: &Path) -> Result<Self, ChartError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(ChartError::Format {
                path: path.display().to_string(),
            }),
        }
    }
}

/// Writes the chart to `path` as PNG or SVG (by extension), `size` pixels.
pub fn render_to_file(
    series: &ChartSeries,
    path: &Path,
    size: (u32, u32),
) -> Result<(), ChartError> {
    register_font();
    let failed = |e: &dyn std::fmt::Display| ChartError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    match ImageFormat::from_path(path)? {
        ImageFormat::Png => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(&root, series).map_err(|e| failed(&e))?;
            root.present().map_err(|e| failed(&e))
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(&root, series).map_err(|e| failed(&e))?;
            root.present().map_err(|e| failed(&e))
        }
    }
}

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bytes are a valid TrueType font checked in with the crate.
            let _ = plotters::style::register_font(FONT, style, FONT_BYTES);
        }
    });
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, series: &ChartSeries) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (_, height) = root.dim_in_pixel();
    let text = (height / 64).max(11);
    let bars = &series.bars;
    let (first, last) = (bars[0].date, bars[bars.len() - 1].date);
    let title = format!(
        "{} · {} · {first} – {last} · adjusted prices   ▲ BUY  ▼ SELL",
        series.symbol, series.interval
    );
    let body = root.titled(&title, (FONT, text + 6).into_font().style(FontStyle::Bold))?;
    let (_, body_height) = body.dim_in_pixel();
    let (price_area, lower) = body.split_vertically(body_height * 60 / 100);
    let (rsi_area, macd_area) = lower.split_vertically(body_height * 17 / 100);
    draw_price(&price_area, series, text)?;
    draw_rsi(&rsi_area, bars, text)?;
    draw_macd(&macd_area, bars, text)
}

/// The x axis: one step per bar, labelled with the bar's date.
fn x_range(bars: &[ChartBar]) -> std::ops::Range<f64> {
    -0.5..bars.len() as f64 - 0.5
}

fn date_label(bars: &[ChartBar], x: f64) -> String {
    let index = x.round();
    if index < 0.0 || index as usize >= bars.len() {
        return String::new();
    }
    bars[index as usize].date.format("%Y-%m-%d").to_string()
}

/// Candles, Bollinger bands, SMA 50/200 and each strategy's markers.
fn draw_price<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &ChartSeries,
    text: u32,
) -> DrawResult<DB> {
    let bars = &series.bars;
    let mut price =
        pane(area, text, false).build_cartesian_2d(x_range(bars), padded(price_range(series)))?;
    price
        .configure_mesh()
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&|x| date_label(bars, *x))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .y_desc("price")
        .label_style((FONT, text))
        .light_line_style(BLACK.mix(0.04))
        .bold_line_style(BLACK.mix(0.1))
        .draw()?;
    draw_bands(&mut price, bars)?;
    let width = candle_width(price.plotting_area().dim_in_pixel().0, bars.len());
    price.draw_series(bars.iter().enumerate().map(|(i, b)| {
        CandleStick::new(
            i as f64,
            b.open,
            b.high,
            b.low,
            b.close,
            UP.filled(),
            DOWN.filled(),
            width,
        )
    }))?;
    labelled_line(&mut price, bars, "SMA 50", SMA_50, |b| b.sma_50)?;
    labelled_line(&mut price, bars, "SMA 200", SMA_200, |b| b.sma_200)?;
    draw_markers(&mut price, series)?;
    draw_legend(&mut price, text)
}

/// The Bollinger band, shaded between its two lines.
fn draw_bands<'a, DB: DrawingBackend + 'a>(
    price: &mut Pane<'a, DB>,
    bars: &[ChartBar],
) -> DrawResult<DB> {
    let band: Vec<(f64, f64, f64)> = bars
        .iter()
        .enumerate()
        .filter_map(|(i, b)| Some((i as f64, b.bb_upper?, b.bb_lower?)))
        .collect();
    if !band.is_empty() {
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|&(x, upper, _)| (x, upper))
            .chain(band.iter().rev().map(|&(x, _, lower)| (x, lower)))
            .collect();
        price.draw_series(std::iter::once(Polygon::new(
            outline,
            BANDS.mix(0.12).filled(),
        )))?;
        for (pick, label) in [(0usize, Some("Bollinger 20, 2σ")), (1, None::<&str>)] {
            let line = band
                .iter()
                .map(move |&(x, upper, lower)| (x, if pick == 0 { upper } else { lower }));
            let drawn = price.draw_series(LineSeries::new(line, BANDS.mix(0.8).stroke_width(1)))?;
            if let Some(label) = label {
                drawn.label(label).legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], BANDS.mix(0.3).filled())
                });
            }
        }
    }
    Ok(())
}

/// A triangle under the bar for each BUY and over it for each SELL, one
/// colour per strategy.
fn draw_markers<'a, DB: DrawingBackend + 'a>(
    price: &mut Pane<'a, DB>,
    series: &ChartSeries,
) -> DrawResult<DB> {
    let bars = &series.bars;
    for (k, strategy) in series.strategies().into_iter().enumerate() {
        let colour = STRATEGY_COLOURS[k % STRATEGY_COLOURS.len()];
        // Markers of later strategies sit further from the bar, so signals of
        // several strategies on one day stay visible.
        let offset = 4 + 9 * k as i32;
        let markers = series
            .markers
            .iter()
            .filter(|m| m.strategy == strategy)
            .map(|m| {
                let bar = &bars[m.bar];
                let (anchor, tip, base) = if m.buy {
                    (bar.low, offset, offset + 8)
                } else {
                    (bar.high, -offset, -offset - 8)
                };
                EmptyElement::at((m.bar as f64, anchor))
                    + Polygon::new(vec![(0, tip), (-5, base), (5, base)], colour.filled())
            });
        price
            .draw_series(markers)?
            .label(strategy)
            .legend(move |(x, y)| {
                Polygon::new(
                    vec![(x + 6, y - 5), (x, y + 4), (x + 12, y + 4)],
                    colour.filled(),
                )
            });
    }
    Ok(())
}

/// RSI with the 30 and 70 levels the reversion rule uses.
fn draw_rsi<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bars: &[ChartBar],
    text: u32,
) -> DrawResult<DB> {
    let x_range = x_range(bars);
    let mut rsi = pane(area, text, false).build_cartesian_2d(x_range.clone(), 0.0..100.0)?;
    rsi.configure_mesh()
        .x_labels(10)
        .y_labels(3)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("RSI 14")
        .label_style((FONT, text))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    rsi.draw_series(std::iter::once(Rectangle::new(
        [(x_range.start, 30.0), (x_range.end, 70.0)],
        RSI.mix(0.06).filled(),
    )))?;
    for level in [30.0, 70.0] {
        rsi.draw_series(DashedLineSeries::new(
            [(x_range.start, level), (x_range.end, level)],
            6,
            4,
            BLACK.mix(0.4).stroke_width(1),
        ))?;
    }
    rsi.draw_series(LineSeries::new(
        indicator_points(bars, |b| b.rsi_14),
        RSI.stroke_width(2),
    ))?;

    Ok(())
}

fn draw_macd<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    bars: &[ChartBar],
    text: u32,
) -> DrawResult<DB> {
    let macd_values = bars
        .iter()
        .flat_map(|b| [b.macd, b.macd_signal, b.macd_hist])
        .flatten();
    let mut macd = pane(area, text, true).build_cartesian_2d(
        x_range(bars),
        padded(span(macd_values).unwrap_or(-1.0..1.0)),
    )?;
    macd.configure_mesh()
        .x_labels(10)
        .y_labels(4)
        .x_label_formatter(&|x| date_label(bars, *x))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .y_desc("MACD 12/26/9")
        .label_style((FONT, text))
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    macd.draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
        let hist = b.macd_hist?;
        let colour = if hist >= 0.0 { UP } else { DOWN };
        let x = i as f64;
        Some(Rectangle::new(
            [(x - 0.35, 0.0), (x + 0.35, hist)],
            colour.mix(0.6).filled(),
        ))
    }))?;
    labelled_line(&mut macd, bars, "MACD", MACD, |b| b.macd)?;
    labelled_line(&mut macd, bars, "signal", MACD_SIGNAL, |b| b.macd_signal)?;
    draw_legend(&mut macd, text)
}

type Pane<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// An indicator's line, where it is defined, with its legend entry.
fn labelled_line<'a, DB: DrawingBackend + 'a>(
    pane: &mut Pane<'a, DB>,
    bars: &[ChartBar],
    label: &str,
    colour: RGBColor,
    value: fn(&ChartBar) -> Option<f64>,
) -> DrawResult<DB> {
    pane.draw_series(LineSeries::new(
        indicator_points(bars, value),
        colour.stroke_width(2),
    ))?
    .label(label)
    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    Ok(())
}

/// (bar index, value) for the bars where an indicator is past its lookback.
fn indicator_points(
    bars: &[ChartBar],
    value: fn(&ChartBar) -> Option<f64>,
) -> impl Iterator<Item = (f64, f64)> + '_ {
    bars.iter()
        .enumerate()
        .filter_map(move |(i, b)| Some((i as f64, value(b)?)))
}

fn draw_legend<'a, DB: DrawingBackend + 'a>(pane: &mut Pane<'a, DB>, text: u32) -> DrawResult<DB> {
    pane.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, text))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
}

/// A pane's chart builder: every pane has the same left label area so their
/// x axes line up; only the bottom one (`dated`) shows dates.
fn pane<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    text: u32,
    dated: bool,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin_left(8)
        .margin_right(text * 3)
        .margin_top(text)
        .y_label_area_size(text * 6)
        .x_label_area_size(if dated { text * 3 } else { 0 });
    builder
}

/// Lowest and highest price the price pane must show: bars, bands and averages.
fn price_range(series: &ChartSeries) -> Range<f64> {
    let values = series.bars.iter().flat_map(|b| {
        [
            Some(b.low),
            Some(b.high),
            b.bb_upper,
            b.bb_lower,
            b.sma_50,
            b.sma_200,
        ]
    });
    span(values.flatten()).unwrap_or(0.0..1.0)
}

fn span(values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |range: Option<Range<f64>>, v| match range {
            None => Some(v..v),
            Some(r) => Some(r.start.min(v)..r.end.max(v)),
        })
}

/// `range` with 8% of room above and below (room for the signal markers), and
/// never empty.
fn padded(range: Range<f64>) -> Range<f64> {
    let pad = ((range.end - range.start) * 0.08)
        .max(range.end.abs() * 0.01)
        .max(1e-6);
    range.start - pad..range.end + pad
}

/// Candle body width in pixels: 70% of a bar's slot, at least one pixel.
fn candle_width(plot_width: u32, bars: usize) -> u32 {
    ((plot_width as f64 / bars.max(1) as f64) * 0.7).max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("x/a.svg")).unwrap(),
            ImageFormat::Svg
        );
        let err = ImageFormat::from_path(Path::new("a.jpg")).unwrap_err();
        assert!(err.to_string().contains("a.jpg"), "{err}");
    }

    #[test]
    fn ranges_leave_room_and_are_never_empty() {
        let r = padded(span([10.0, 20.0, f64::NAN].into_iter()).unwrap());
        assert!(
            (r.start - 9.2).abs() < 1e-9 && (r.end - 20.8).abs() < 1e-9,
            "{r:?}"
        );
        let flat = padded(5.0..5.0);
        assert!(flat.start < 5.0 && flat.end > 5.0);
        assert_eq!(candle_width(1000, 100), 7);
        assert_eq!(candle_width(100, 5000), 1);
    }
}
