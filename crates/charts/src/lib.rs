//! Pictures of what bf found: a symbol's chart (candles, averages, bands,
//! signals, RSI and MACD panes) as PNG or SVG, and a static HTML report per
//! symbol list.

pub mod draw;
mod error;
pub mod report;
pub mod series;

pub use draw::{DEFAULT_SIZE, ImageFormat, render_to_file};
pub use error::ChartError;
pub use report::{ReportSummary, write_report};
pub use series::{ChartBar, ChartSeries, Marker};
