//! `bf symbols list | show NAME`.

use bf_core::SymbolLists;

use super::Outcome;
use crate::args::SymbolsCommand;
use crate::present::Printer;

pub fn run(
    command: SymbolsCommand,
    lists: &SymbolLists,
    printer: &Printer,
) -> anyhow::Result<Outcome> {
    match command {
        SymbolsCommand::List => list(lists, printer),
        SymbolsCommand::Show { name } => {
            let list = lists.load(&name)?;
            if printer.json() {
                let symbols: Vec<&str> = list.symbols.iter().map(|s| s.as_str()).collect();
                printer.json_value(&serde_json::json!({
                    "name": list.name, "origin": list.origin, "symbols": symbols,
                }))?;
            } else {
                for symbol in &list.symbols {
                    printer.line(symbol.as_str())?;
                }
                printer.summary(&format!(
                    "{}: {} symbols from {}",
                    list.name,
                    list.symbols.len(),
                    list.origin
                ));
            }
            Ok(Outcome::Success)
        }
    }
}

fn list(lists: &SymbolLists, printer: &Printer) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::Success;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for entry in lists.all() {
        match entry {
            Ok(list) => {
                let preview: Vec<&str> = list.symbols.iter().take(6).map(|s| s.as_str()).collect();
                let more = if list.symbols.len() > preview.len() {
                    ", …"
                } else {
                    ""
                };
                rows.push(vec![
                    list.name.clone(),
                    list.symbols.len().to_string(),
                    format!("{}{more}", preview.join(", ")),
                    list.origin.clone(),
                ]);
                json.push(serde_json::json!({"name": list.name, "symbols": list.symbols.len(), "origin": list.origin}));
            }
            Err(err) => {
                outcome = Outcome::SomeFailed;
                printer.warn(&err.to_string());
                json.push(serde_json::json!({"error": err.to_string()}));
            }
        }
    }
    if printer.json() {
        printer.json_value(&json)?;
    } else {
        printer.table(&["list", "symbols", "first", "origin"], &["symbols"], rows)?;
    }
    Ok(outcome)
}
