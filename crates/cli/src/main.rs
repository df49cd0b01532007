//! `bf`: parses the command line, runs one command, presents its result, and
//! turns the outcome into an exit code (0 ok, 1 some items failed, 2 error).

mod args;
mod commands;
mod present;

use std::collections::HashSet;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use crate::args::Cli;
use crate::commands::{Context, Outcome};
use crate::present::Printer;

// glibc returns large freed blocks to the kernel and faults fresh pages in on
// the next allocation; a features build allocates and frees hundreds of MiB per
// group, and mimalloc's reuse made its compute phase markedly faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let dotenv_keys = load_dotenv();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    init_logging(cli.global.verbose);
    let printer = Printer::new(cli.global.json, cli.global.quiet);
    let context = Context {
        printer,
        dotenv_keys,
        matches,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            Printer::error(&anyhow::Error::new(err).context("cannot start the async runtime"));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli, &context)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            Printer::error(&err);
            ExitCode::from(2)
        }
    }
}

/// Loads `.env` from the working directory without overriding the environment,
/// and returns the keys it set so `bf config` can name that origin.
fn load_dotenv() -> HashSet<String> {
    let Ok(entries) = dotenvy::from_path_iter(".env") else {
        return HashSet::new();
    };
    let keys: HashSet<String> = entries
        .filter_map(Result::ok)
        .map(|(key, _)| key)
        .filter(|key| std::env::var_os(key).is_none())
        .collect();
    let _ = dotenvy::dotenv();
    keys
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // delta-rs logs the errors it also returns; bf prints them once, in words.
        0 => "warn,buoyant_kernel=off,deltalake_core=off,deltalake_aws=off",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("BF_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The `hint:` line for errors a user can fix.
pub(crate) fn hint_for(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        if let Some(lake) = cause.downcast_ref::<bf_lake::LakeError>() {
            return lake.hint();
        }
        if let Some(features) = cause.downcast_ref::<bf_features::FeaturesError>() {
            return features.hint();
        }
        if let Some(signals) = cause.downcast_ref::<bf_signals::SignalsError>() {
            return signals.hint();
        }
        if let Some(charts) = cause.downcast_ref::<bf_charts::ChartError>() {
            return charts.hint();
        }
        match cause.downcast_ref::<bf_core::CoreError>() {
            Some(bf_core::CoreError::UnknownSymbolList { .. }) => Some(
                "`bf symbols list` shows every list; BF_SYMBOL_LISTS adds a folder of your own"
                    .into(),
            ),
            Some(bf_core::CoreError::SymbolListEntry { .. }) => Some(
                "symbols use letters, digits, '.', '-', '^' and '='; '#' starts a comment".into(),
            ),
            _ => None,
        }
    })
}
