//! Where bf's price history comes from. Each source turns symbols (or files) into
//! Arrow batches in the lake's `ohlcv` / `corporate_actions` schemas; sources never
//! touch the lake themselves.

mod bars;
mod error;
pub mod import;
pub mod synthetic;
pub mod yahoo;

pub use bars::{ActionsBuilder, Bar, BarsBuilder};
pub use error::SourceError;
