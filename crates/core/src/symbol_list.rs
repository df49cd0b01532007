//! Named lists of symbols: shipped with bf (compiled in from `config/symbols/`),
//! from the user's folder (`BF_SYMBOL_LISTS`), or from any file path.
//!
//! A list file holds one symbol per line; `#` starts a comment.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::{CoreError, Symbol};

/// The lists shipped in the binary, so `bf` works from any directory.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "demo_small",
        include_str!("../../../config/symbols/demo_small.txt"),
    ),
    (
        "demo_large",
        include_str!("../../../config/symbols/demo_large.txt"),
    ),
];

/// A resolved list: its name, where it came from, and its validated symbols.
#[derive(Debug, Clone)]
pub struct SymbolList {
    pub name: String,
    pub origin: String,
    pub symbols: Vec<Symbol>,
}

/// Finds symbol lists by name or path. A user folder shadows a built-in list of the
/// same name, so a team can redefine `demo_small` without rebuilding.
#[derive(Debug, Clone, Default)]
pub struct SymbolLists {
    user_dir: Option<PathBuf>,
}

impl SymbolLists {
    pub fn new(user_dir: Option<PathBuf>) -> Self {
        Self { user_dir }
    }

    /// Every list bf can find, built-in ones first; a malformed user list is still
    /// listed so `bf symbols list` can show its error.
    pub fn all(&self) -> Vec<Result<SymbolList, CoreError>> {
        let mut names: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
        if let Some(dir) = &self.user_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut user: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let path = e.path();
                    (path.extension()? == "txt")
                        .then(|| path.file_stem()?.to_str().map(String::from))?
                })
                .filter(|n| !names.contains(n))
                .collect();
            user.sort();
            names.extend(user);
        }
        names.iter().map(|n| self.load(n)).collect()
    }

    /// Resolves `name_or_path`: an existing file path, else `<user dir>/<name>.txt`,
    /// else a built-in list.
    pub fn load(&self, name_or_path: &str) -> Result<SymbolList, CoreError> {
        let as_path = Path::new(name_or_path);
        if as_path.is_file() {
            return load_file(as_path);
        }
        if let Some(dir) = &self.user_dir {
            let candidate = dir.join(format!("{name_or_path}.txt"));
            if candidate.is_file() {
                return load_file(&candidate);
            }
        }
        if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            let origin = format!("built-in (config/symbols/{name}.txt)");
            return parse(name, &origin, text);
        }
        let mut known: Vec<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
        if let Some(dir) = &self.user_dir {
            known.push(format!("*.txt in {}", dir.display()));
        }
        Err(CoreError::UnknownSymbolList {
            name: name_or_path.to_string(),
            known: known.join(", "),
        })
    }
}

fn load_file(path: &Path) -> Result<SymbolList, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| CoreError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("list")
        .to_string();
    parse(&name, &path.display().to_string(), &text)
}

fn parse(name: &str, origin: &str, text: &str) -> Result<SymbolList, CoreError> {
    let mut seen = HashSet::new();
    let mut symbols = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let entry = raw_line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let symbol = Symbol::parse(entry).map_err(|e| CoreError::SymbolListEntry {
            file: origin.to_string(),
            line: index + 1,
            source: Box::new(e),
        })?;
        if seen.insert(symbol.clone()) {
            symbols.push(symbol);
        }
    }
    if symbols.is_empty() {
        return Err(CoreError::EmptySymbolList {
            file: origin.to_string(),
        });
    }
    Ok(SymbolList {
        name: name.to_string(),
        origin: origin.to_string(),
        symbols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_lists_are_valid_and_sized() {
        let lists = SymbolLists::default();
        assert_eq!(lists.load("demo_small").unwrap().symbols.len(), 5);
        let large = lists.load("demo_large").unwrap().symbols.len();
        assert!((90..=120).contains(&large), "demo_large has {large}");
    }

    #[test]
    fn user_list_dedups_uppercases_and_shadows_built_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("demo_small.txt"),
            "ibm\n# c\nIBM  # again\nbrk-b\n",
        )
        .unwrap();
        let list = SymbolLists::new(Some(dir.path().into()))
            .load("demo_small")
            .unwrap();
        let got: Vec<_> = list.symbols.iter().map(Symbol::as_str).collect();
        assert_eq!(got, ["IBM", "BRK-B"]);
        assert!(list.origin.ends_with("demo_small.txt"));
    }

    #[test]
    fn bad_entry_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.txt");
        std::fs::write(&path, "AAPL\n\nMS FT\n").unwrap();
        let err = SymbolLists::default()
            .load(path.to_str().unwrap())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mine.txt:3"), "{msg}");
        assert!(msg.contains("MS FT"), "{msg}");
    }

    #[test]
    fn unknown_list_names_the_known_ones() {
        let err = SymbolLists::default().load("nope").unwrap_err().to_string();
        assert!(err.contains("demo_small") && err.contains("nope"), "{err}");
    }
}
