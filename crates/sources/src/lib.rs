//! Where bf's price history comes from. Each source turns symbols into Arrow
//! batches in the lake's `ohlcv` / `corporate_actions` schemas behind the
//! [`Source`] trait; vendor files are read by [`import`], which is driven by
//! files rather than symbols. Sources never touch the lake themselves.

mod bars;
mod error;
pub mod import;
mod session;
mod source;
pub mod synthetic;
pub mod yahoo;

pub use bars::{ActionsBuilder, Bar, BarsBuilder, RawPrices, batches_of_symbols};
pub use error::SourceError;
pub use session::TradingSession;
pub use source::{
    FetchWindow, InvalidBar, OnDone, RequestCounts, Source, SourceSettings, SymbolBars,
    SymbolRequest,
};
