//! One module per command family; each turns parsed arguments into library calls
//! and hands the results to the printer.

mod charts;
mod cluster;
mod config;
mod data;
mod es;
mod features;
mod infra;
mod kibana;
mod lake;
mod run;
mod signals;
mod sql;
mod stream;
mod symbols;
mod watch;

use std::collections::HashSet;

use bf_core::{Symbol, SymbolLists, parse_symbol_csv};
use clap::ArgMatches;

use crate::args::{Cli, Command, SymbolSelection};
use crate::present::Printer;

/// Whether every item of a command succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    SomeFailed,
}

/// What every command may need besides its own arguments.
pub struct Context {
    pub printer: Printer,
    /// Keys that `.env` set (and the environment did not).
    pub dotenv_keys: HashSet<String>,
    pub matches: ArgMatches,
}

pub async fn run(cli: Cli, context: &Context) -> anyhow::Result<Outcome> {
    let global = &cli.global;
    let lists = SymbolLists::new(global.symbol_lists.clone());
    match cli.command {
        Command::Symbols(command) => symbols::run(command, &lists, &context.printer),
        Command::Data(command) => data::run(command, global, &lists, &context.printer).await,
        Command::Features(command) => {
            features::run(command, global, &lists, &context.printer).await
        }
        Command::Signals(command) => signals::run(command, global, &lists, &context.printer).await,
        Command::Run(args) => run::run(args, global, &lists, &context.printer).await,
        Command::Chart(args) => charts::chart(args, global, &context.printer).await,
        Command::Report(args) => charts::report(args, global, &lists, &context.printer).await,
        Command::Sql(args) => sql::run(args, global, &context.printer).await,
        Command::Lake(command) => lake::run(command, global, &context.printer).await,
        Command::Es(command) => es::run(command, global, &context.printer).await,
        Command::Kibana(command) => kibana::run(command, &context.printer).await,
        Command::Infra(command) => infra::run(command, &context.printer).await,
        Command::Cluster(command) => cluster::run(command, &context.printer).await,
        Command::Stream(command) => stream::run(command, global, &context.printer).await,
        Command::Config => config::run(context),
    }
}

/// The symbols a `--symbol-list` / `--symbols` pair names.
pub fn resolve_symbols(
    selection: &SymbolSelection,
    lists: &SymbolLists,
) -> anyhow::Result<Vec<Symbol>> {
    match (&selection.symbol_list, &selection.symbols) {
        (Some(name), _) => Ok(lists.load(name)?.symbols),
        (None, Some(csv)) => {
            let symbols = parse_symbol_csv(csv)?;
            anyhow::ensure!(!symbols.is_empty(), "--symbols names no symbol");
            Ok(symbols)
        }
        (None, None) => anyhow::bail!("name the symbols with --symbol-list NAME or --symbols A,B"),
    }
}

/// Ctrl-C or SIGTERM (what `docker stop` sends), so that a long-running
/// command stops cleanly (a consumer leaves its group at once, a watch after
/// its commit). The handlers are installed on the call, not on the first
/// poll, so a signal that arrives while the command works is not missed.
pub fn stop_requested() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler installs");
    let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler installs");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}
