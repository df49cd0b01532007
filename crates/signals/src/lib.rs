//! bf's signals: strategies from a TOML file (SPEC's built-in rules and user
//! rules in SQL), evaluated by DataFusion over the `features` table into the
//! `signals` table.

pub mod crossing;
pub mod engine;
mod error;
mod frame;
pub mod generate;
mod handed;
pub mod stats;
pub mod strategy;

pub use error::SignalsError;
