//! `bf`: parses the command line, runs one command, presents its result, and
//! turns the outcome into an exit code (0 ok, 1 some items failed, 2 error).

mod args;
mod commands;
mod hints;
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
    report_panics_as_internal_errors();
    // A panic that reaches here is a bug; it must still end as exit 2, not 101.
    std::panic::catch_unwind(run).unwrap_or(ExitCode::from(2))
}

/// Libraries panic on some paths bf cannot reach around (object_store aborts
/// an upload after its store was shut down when a disk fills up). Whatever
/// panics, the user gets one line that says it is a bug and where, and the
/// command's own error (a panicking task surfaces as an error) decides the
/// exit code.
fn report_panics_as_internal_errors() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        // object_store's BufWriter::abort panics when delta-rs aborts an upload
        // that already failed (a full disk, a store that died); it does so in
        // a background task after the write returned its own error, which bf
        // reports. Known upstream; said only in the log.
        if message == "Already shut down"
            && location.is_some_and(|l| l.file().contains("object_store"))
        {
            tracing::debug!("object_store panicked aborting a failed upload (upstream bug)");
            return;
        }
        let location =
            location.map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        present::internal_error(&format!("{message}{location}"));
    }));
}

fn run() -> ExitCode {
    let dotenv = load_dotenv();
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => return usage_error(err),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    init_logging(cli.global.verbose);
    let printer = Printer::new(cli.global.json, cli.global.quiet);
    for problem in &dotenv.problems {
        printer.warn(problem);
    }
    let dotenv_keys = dotenv.keys;
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

/// What `.env` set, and the lines it could not use.
struct Dotenv {
    keys: HashSet<String>,
    problems: Vec<String>,
}

/// Loads `.env` from the working directory without overriding the environment,
/// and returns the keys it set so `bf config` can name that origin. A line it
/// cannot parse is skipped and named; the lines after it still count.
fn load_dotenv() -> Dotenv {
    let mut dotenv = Dotenv {
        keys: HashSet::new(),
        problems: Vec::new(),
    };
    let Ok(entries) = dotenvy::from_path_iter(".env") else {
        return dotenv;
    };
    let text = std::fs::read_to_string(".env").unwrap_or_default();
    let mut bad_lines = HashSet::new();
    for entry in entries {
        match entry {
            Ok((key, _)) => {
                if std::env::var_os(&key).is_none() {
                    dotenv.keys.insert(key);
                }
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let line = line.trim_end().to_string();
                let number = text
                    .lines()
                    .position(|l| l.trim_end() == line)
                    .map_or_else(String::new, |i| format!(":{}", i + 1));
                dotenv.problems.push(format!(
                    ".env{number}: cannot parse {line:?}; the line is ignored (lines look like KEY=value)"
                ));
                bad_lines.insert(line);
            }
            Err(err) => dotenv
                .problems
                .push(format!(".env: {err}; the rest of it is ignored")),
        }
    }
    // dotenvy stops loading at its first bad line: load the file without them.
    let good: String = text
        .lines()
        .filter(|line| !bad_lines.contains(line.trim_end()))
        .flat_map(|line| [line, "\n"])
        .collect();
    if let Err(err) = dotenvy::from_read(good.as_bytes()) {
        dotenv.problems.push(format!(".env: {err}"));
    }
    dotenv
}

/// A clap error, plus the variable a bad value came from when it came from
/// the environment or `.env` rather than the command line.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue};
    let _ = err.print();
    if let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) {
        let long = arg.split_whitespace().next().unwrap_or_default();
        let on_command_line =
            std::env::args().any(|a| a == long || a.starts_with(&format!("{long}=")));
        if let Some(variable) = env_of(&Cli::command(), long.trim_start_matches("--"))
            && !on_command_line
            && std::env::var_os(&variable).is_some()
        {
            Printer::value_origin(&variable);
        }
    }
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// The environment variable of a `--long` flag anywhere in the command tree.
fn env_of(command: &clap::Command, long: &str) -> Option<String> {
    command
        .get_arguments()
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| command.get_subcommands().find_map(|sub| env_of(sub, long)))
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
