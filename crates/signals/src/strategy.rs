//! Strategies from TOML: the built-in rules of SPEC "Signals" and user rules
//! written as SQL, each turned into SQL over the signal frame (the features
//! columns, `close` = adj_close, and `prev_<column>` for the previous row).

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SignalsError;
use crate::crossing::{Crossing, Operand};

/// The strategies shipped with bf.
pub const DEFAULT_STRATEGIES: &str = include_str!("../../../config/strategies.toml");

/// Where the default strategies come from, for messages.
pub const DEFAULT_PATH: &str = "config/strategies.toml (built in)";

/// A strategy's rule and its parameters, as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    SmaCross {
        fast: usize,
        slow: usize,
    },
    GoldenCross {
        fast: usize,
        slow: usize,
    },
    RsiReversion {
        period: usize,
        lower: f64,
        upper: f64,
    },
    MacdCross {
        fast: usize,
        slow: usize,
        signal: usize,
    },
    BollingerReversion {
        period: usize,
        deviations: usize,
    },
    Sql {
        buy: String,
        sell: String,
        strength: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Strategy {
    pub name: String,
    #[serde(flatten)]
    pub rule: Rule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StrategiesFile {
    #[serde(default, rename = "strategy")]
    strategies: Vec<Strategy>,
}

/// Strategies parsed from one file, with the file's name for messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Strategies {
    pub path: String,
    pub strategies: Vec<Strategy>,
}

impl Strategies {
    /// The built-in file.
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_STRATEGIES, DEFAULT_PATH).expect("the shipped strategies parse")
    }

    pub fn load(path: &Path) -> Result<Self, SignalsError> {
        let text = std::fs::read_to_string(path).map_err(|e| SignalsError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks what can be checked without data: names unique and
    /// well-formed, parameters in range.
    pub fn parse(text: &str, path: &str) -> Result<Self, SignalsError> {
        let file: StrategiesFile = toml::from_str(text).map_err(|e| SignalsError::File {
            path: path.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let strategies = Self {
            path: path.to_string(),
            strategies: file.strategies,
        };
        if strategies.strategies.is_empty() {
            return Err(SignalsError::File {
                path: path.to_string(),
                message: "no [[strategy]] entries".into(),
            });
        }
        for (index, strategy) in strategies.strategies.iter().enumerate() {
            let fail = |message: String| strategies.error(&strategy.name, message);
            if !strategy
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                || strategy.name.is_empty()
            {
                return Err(fail("names use letters, digits, '_' and '-'".into()));
            }
            if strategies.strategies[..index]
                .iter()
                .any(|s| s.name == strategy.name)
            {
                return Err(fail("defined twice".into()));
            }
            check_parameters(&strategy.rule).map_err(fail)?;
        }
        Ok(strategies)
    }

    pub fn error(&self, name: &str, message: String) -> SignalsError {
        SignalsError::Strategy {
            path: self.path.clone(),
            name: name.to_string(),
            message,
        }
    }
}

fn check_parameters(rule: &Rule) -> Result<(), String> {
    let positive = |name: &str, value: usize| {
        if value == 0 {
            Err(format!("{name} must be at least 1"))
        } else {
            Ok(())
        }
    };
    match rule {
        Rule::SmaCross { fast, slow } | Rule::GoldenCross { fast, slow } => {
            positive("fast", *fast)?;
            positive("slow", *slow)?;
            if fast >= slow {
                return Err(format!("fast ({fast}) must be shorter than slow ({slow})"));
            }
        }
        Rule::RsiReversion {
            period,
            lower,
            upper,
        } => {
            positive("period", *period)?;
            if !(0.0 < *lower && lower < upper && *upper < 100.0) {
                return Err(format!("need 0 < lower ({lower}) < upper ({upper}) < 100"));
            }
        }
        Rule::MacdCross { fast, slow, signal } => {
            positive("fast", *fast)?;
            positive("slow", *slow)?;
            positive("signal", *signal)?;
            if fast >= slow {
                return Err(format!("fast ({fast}) must be shorter than slow ({slow})"));
            }
        }
        Rule::BollingerReversion { period, deviations } => {
            positive("period", *period)?;
            positive("deviations", *deviations)?;
        }
        Rule::Sql { buy, sell, .. } => {
            if buy.trim().is_empty() || sell.trim().is_empty() {
                return Err("buy and sell must both be SQL conditions".into());
            }
        }
    }
    Ok(())
}

/// A column of the signal frame that a stored feature does not provide: an
/// indicator function of `bf_indicators` over the adjusted close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedSeries {
    pub name: String,
    pub function: &'static str,
    pub params: Vec<usize>,
}

/// A strategy as SQL over the signal frame.
#[derive(Debug, Clone)]
pub struct CompiledStrategy {
    pub name: String,
    pub buy: String,
    pub sell: String,
    /// Strength of a BUY and of a SELL, before clamping to [0, 1].
    pub buy_strength: String,
    pub sell_strength: String,
    /// Frame columns recorded in `inputs`, with their previous-row values.
    pub inputs: Vec<String>,
    /// The buy and sell conditions as crossings, for the built-in rules:
    /// `buy` and `sell` are their SQL.
    pub crossings: Option<(Crossing, Crossing)>,
    pub computed: Vec<ComputedSeries>,
    /// Frame columns the SQL uses (without `prev_`); filled when the strategy
    /// is checked, so the frame computes only those.
    pub columns: BTreeSet<String>,
}

/// Stored SMA periods of the features table.
const STORED_SMA: [usize; 3] = [20, 50, 200];

fn series(
    stored: bool,
    name: String,
    function: &'static str,
    params: Vec<usize>,
    computed: &mut Vec<ComputedSeries>,
) -> String {
    if !stored {
        computed.push(ComputedSeries {
            name: name.clone(),
            function,
            params,
        });
    }
    name
}

fn column(name: &str) -> Operand {
    Operand::Column(name.to_string())
}

/// `part / whole`, or 0 where `whole` is not positive.
fn ratio(part: &str, whole: &str) -> String {
    format!("CASE WHEN {whole} > 0 THEN ({part}) / ({whole}) ELSE 0.0 END")
}

impl Strategy {
    /// The strategy as SQL. Strengths (documented in README "Signals"):
    /// SMA crosses: the gap between the averages as a share of the slow one,
    /// 1 at 1 %; RSI: how far past the threshold, as a share of the distance
    /// from threshold to 0 (BUY) or 100 (SELL); MACD: the gap between MACD and
    /// signal as a share of 1 % of the price; Bollinger: how far outside the
    /// band, as a share of the band width.
    pub fn compile(&self) -> CompiledStrategy {
        let mut computed = Vec::new();
        let conditions = match &self.rule {
            Rule::SmaCross { fast, slow } | Rule::GoldenCross { fast, slow } => {
                sma_cross(*fast, *slow, &mut computed)
            }
            Rule::RsiReversion {
                period,
                lower,
                upper,
            } => rsi_reversion(*period, *lower, *upper, &mut computed),
            Rule::MacdCross { fast, slow, signal } => {
                macd_cross(*fast, *slow, *signal, &mut computed)
            }
            Rule::BollingerReversion { period, deviations } => {
                bollinger_reversion(*period, *deviations, &mut computed)
            }
            Rule::Sql {
                buy,
                sell,
                strength,
            } => {
                let strength = strength.clone().unwrap_or_else(|| "1.0".into());
                Conditions::from_parts(
                    format!("({buy})"),
                    format!("({sell})"),
                    strength.clone(),
                    strength,
                    Vec::new(),
                )
            }
        };
        CompiledStrategy {
            name: self.name.clone(),
            buy: conditions.buy,
            sell: conditions.sell,
            buy_strength: conditions.buy_strength,
            sell_strength: conditions.sell_strength,
            inputs: conditions.inputs,
            crossings: conditions.crossings,
            computed,
            columns: BTreeSet::new(),
        }
    }
}

/// A rule's SQL: when it buys and sells, how strongly, and the frame columns
/// recorded as its inputs.
struct Conditions {
    buy: String,
    sell: String,
    buy_strength: String,
    sell_strength: String,
    inputs: Vec<String>,
    crossings: Option<(Crossing, Crossing)>,
}

impl Conditions {
    fn from_parts(
        buy: String,
        sell: String,
        buy_strength: String,
        sell_strength: String,
        inputs: Vec<String>,
    ) -> Self {
        Self {
            buy,
            sell,
            buy_strength,
            sell_strength,
            inputs,
            crossings: None,
        }
    }

    /// A rule that buys and sells on crossings.
    fn crossings(
        buy: Crossing,
        sell: Crossing,
        buy_strength: String,
        sell_strength: String,
        inputs: Vec<String>,
    ) -> Self {
        Self {
            crossings: Some((buy.clone(), sell.clone())),
            ..Self::from_parts(buy.sql(), sell.sql(), buy_strength, sell_strength, inputs)
        }
    }
}

fn sma_cross(fast: usize, slow: usize, computed: &mut Vec<ComputedSeries>) -> Conditions {
    let sma = |n: usize, computed: &mut Vec<ComputedSeries>| {
        series(
            STORED_SMA.contains(&n),
            format!("sma_{n}"),
            "sma",
            vec![n],
            computed,
        )
    };
    let (f, s) = (sma(fast, computed), sma(slow, computed));
    let strength = ratio(&format!("abs({f} - {s})"), &format!("0.01 * {s}"));
    Conditions::crossings(
        Crossing::above(column(&f), column(&s)),
        Crossing::below(column(&f), column(&s)),
        strength.clone(),
        strength,
        vec![f, s],
    )
}

fn rsi_reversion(
    period: usize,
    lower: f64,
    upper: f64,
    computed: &mut Vec<ComputedSeries>,
) -> Conditions {
    let rsi = series(
        period == 14,
        format!("rsi_{period}"),
        "rsi",
        vec![period],
        computed,
    );
    Conditions::crossings(
        Crossing::below(column(&rsi), Operand::Value(lower)),
        Crossing::above(column(&rsi), Operand::Value(upper)),
        ratio(&format!("{lower:?} - {rsi}"), &format!("{lower:?}")),
        ratio(&format!("{rsi} - {upper:?}"), &format!("100.0 - {upper:?}")),
        vec![rsi],
    )
}

fn macd_cross(
    fast: usize,
    slow: usize,
    signal: usize,
    computed: &mut Vec<ComputedSeries>,
) -> Conditions {
    let stored = (fast, slow, signal) == (12, 26, 9);
    let suffix = if stored {
        String::new()
    } else {
        format!("_{fast}_{slow}_{signal}")
    };
    let line = series(
        stored,
        format!("macd{suffix}"),
        "macd",
        vec![fast, slow, signal],
        computed,
    );
    let signal_line = series(
        stored,
        format!("macd_signal{suffix}"),
        "macd_signal",
        vec![fast, slow, signal],
        computed,
    );
    let strength = ratio(&format!("abs({line} - {signal_line})"), "0.01 * close");
    Conditions::crossings(
        Crossing::above(column(&line), column(&signal_line)),
        Crossing::below(column(&line), column(&signal_line)),
        strength.clone(),
        strength,
        vec![line, signal_line],
    )
}

fn bollinger_reversion(
    period: usize,
    deviations: usize,
    computed: &mut Vec<ComputedSeries>,
) -> Conditions {
    let stored = (period, deviations) == (20, 2);
    let suffix = if stored {
        String::new()
    } else {
        format!("_{period}_{deviations}")
    };
    let upper = series(
        stored,
        format!("bb_upper{suffix}"),
        "bb_upper",
        vec![period, deviations],
        computed,
    );
    let lower = series(
        stored,
        format!("bb_lower{suffix}"),
        "bb_lower",
        vec![period, deviations],
        computed,
    );
    let width = format!("{upper} - {lower}");
    Conditions::crossings(
        Crossing::below(column("close"), column(&lower)),
        Crossing::above(column("close"), column(&upper)),
        ratio(&format!("{lower} - close"), &width),
        ratio(&format!("close - {upper}"), &width),
        vec!["close".to_string(), lower, upper],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> String {
        Strategies::parse(text, "my.toml").unwrap_err().to_string()
    }

    #[test]
    fn the_shipped_file_has_the_five_builtins() {
        let names: Vec<String> = Strategies::builtin()
            .strategies
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "sma_cross",
                "golden_cross",
                "rsi_reversion",
                "macd_cross",
                "bollinger_reversion"
            ]
        );
    }

    #[test]
    fn bad_files_name_the_file_and_strategy() {
        let twice = "[[strategy]]\nname = \"a\"\nrule = \"sma_cross\"\nfast = 5\nslow = 10\n\
                     [[strategy]]\nname = \"a\"\nrule = \"sma_cross\"\nfast = 5\nslow = 10\n";
        assert_eq!(
            parse_error(twice),
            "strategies file my.toml: strategy \"a\": defined twice"
        );
        let inverted = "[[strategy]]\nname = \"x\"\nrule = \"sma_cross\"\nfast = 50\nslow = 10\n";
        assert!(parse_error(inverted).contains("strategy \"x\": fast (50) must be shorter"));
        let unknown = "[[strategy]]\nname = \"x\"\nrule = \"moon_phase\"\n";
        let message = parse_error(unknown);
        assert!(
            message.starts_with("strategies file my.toml:") && message.contains("moon_phase"),
            "{message}"
        );
        let missing = "[[strategy]]\nname = \"x\"\nrule = \"rsi_reversion\"\nperiod = 14\n";
        assert!(
            parse_error(missing).contains("lower"),
            "{}",
            parse_error(missing)
        );
    }

    #[test]
    fn stored_periods_use_columns_and_others_are_computed() {
        let stored = Strategy {
            name: "s".into(),
            rule: Rule::SmaCross { fast: 20, slow: 50 },
        }
        .compile();
        assert!(stored.computed.is_empty());
        assert_eq!(
            stored.buy,
            "(prev_sma_20 <= prev_sma_50 AND sma_20 > sma_50)"
        );
        let other = Strategy {
            name: "s".into(),
            rule: Rule::SmaCross { fast: 10, slow: 50 },
        }
        .compile();
        assert_eq!(
            other.computed,
            [ComputedSeries {
                name: "sma_10".into(),
                function: "sma",
                params: vec![10],
            }]
        );
    }
}
