//! The shared vocabulary of bf: symbols and symbol lists, bar intervals, and the
//! names, keys and Arrow schemas of every lake table. Every other crate speaks in
//! these types, so a table or column name is written exactly once, here.

mod clock;
pub mod dates;
mod error;
mod groups;
mod interval;
mod last_bar;
mod progress;
pub mod retry;
mod symbol;
pub mod symbol_list;
pub mod tables;

pub use clock::Clock;
pub use error::{CoreError, error_chain};
pub use groups::row_groups;
pub use interval::Interval;
pub use last_bar::LastBar;
pub use progress::Progress;
pub use symbol::{Symbol, parse_symbol_csv};
pub use symbol_list::{SymbolList, SymbolLists};
