use std::fmt;
use std::str::FromStr;

use crate::CoreError;

/// A ticker in Yahoo's syntax (`AAPL`, `BRK-B`, `^GSPC`, `EURUSD=X`, `002032.SZ`),
/// upper-cased on parse so that `aapl` and `AAPL` are one key in the lake.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(String);

/// Longer than any ticker Yahoo serves; guards against a whole CSV line read as a symbol.
const MAX_LEN: usize = 24;

impl Symbol {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let trimmed = raw.trim();
        let invalid = |reason| CoreError::InvalidSymbol {
            symbol: raw.to_string(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        if trimmed.len() > MAX_LEN {
            return Err(invalid("longer than 24 characters"));
        }
        if !trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^' | '='))
        {
            return Err(invalid(
                "only letters, digits, '.', '-', '^' and '=' are allowed",
            ));
        }
        if !trimmed.chars().any(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("needs at least one letter or digit"));
        }
        Ok(Self(trimmed.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Symbol {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a comma-separated list (`--symbols A,B`), upper-casing and de-duplicating
/// while keeping the user's order.
pub fn parse_symbol_csv(raw: &str) -> Result<Vec<Symbol>, CoreError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
        let symbol = Symbol::parse(part)?;
        if seen.insert(symbol.clone()) {
            out.push(symbol);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_yahoo_syntax_and_upper_cases() {
        for (raw, want) in [
            ("aapl", "AAPL"),
            ("BRK-B", "BRK-B"),
            ("^gspc", "^GSPC"),
            ("eurusd=x", "EURUSD=X"),
            (" 002032.sz ", "002032.SZ"),
        ] {
            assert_eq!(Symbol::parse(raw).unwrap().as_str(), want);
        }
    }

    #[test]
    fn rejects_bad_characters_and_empty() {
        for raw in ["", "  ", "AA PL", "A/B", "ÄPPLE", "^^", "A;DROP"] {
            assert!(Symbol::parse(raw).is_err(), "{raw:?} should be rejected");
        }
    }

    #[test]
    fn csv_list_dedups_keeping_order() {
        let got = parse_symbol_csv("msft,AAPL,,MSFT,aapl").unwrap();
        let got: Vec<_> = got.iter().map(Symbol::as_str).collect();
        assert_eq!(got, ["MSFT", "AAPL"]);
    }
}
