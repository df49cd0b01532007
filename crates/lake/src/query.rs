//! A user's SQL over the lake: queries only, of bounded size, streamed.
//!
//! `bf sql` must not change the lake or reach outside it: `INSERT` would store
//! keys twice without validation, `COPY` writes arbitrary files and `CREATE
//! EXTERNAL TABLE` reads them. A statement allow-list on the parsed statement
//! says so in one line; DataFusion's own [`SQLOptions`] check the plan too.
//! Expressions are bounded because DataFusion plans them recursively: a few
//! thousand chained `OR`s overflow the stack and abort the process.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::LakeError;

/// Most binary operators (`AND`, `OR`, `+`, `=`, …) in one statement or
/// strategy expression. DataFusion's planner recurses once per operator of a
/// chain; far beyond this it overflows the stack, and well before that its
/// planning time grows quickly. `IN (…)` lists are not chains and not counted.
pub const MAX_OPERATORS: usize = 1_000;

/// A query's rows as they are computed, with their schema.
pub struct QueryStream {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Runs one read-only statement (`SELECT`, `WITH`, `VALUES`, `EXPLAIN` of
/// those) and streams its rows; anything else is [`LakeError::NotAQuery`].
pub async fn run_read_only(ctx: &SessionContext, sql: &str) -> Result<QueryStream, LakeError> {
    let frame = plan_read_only(ctx, sql).await?;
    let schema = SchemaRef::new(frame.schema().as_arrow().clone());
    let stream = frame.execute_stream().await.map_err(LakeError::Query)?;
    Ok(QueryStream { schema, stream })
}

/// Plans one read-only statement (see [`run_read_only`]) without running it.
pub async fn plan_read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame, LakeError> {
    check_expression_size(sql)?;
    check_is_query(sql)?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options)
        .await
        .map_err(LakeError::Query)
}

/// Refuses an expression too large to plan safely (see [`MAX_OPERATORS`]).
pub fn check_expression_size(sql: &str) -> Result<(), LakeError> {
    // A text that does not tokenize is left to the parser's own message.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let operators = tokens
        .iter()
        .filter(|token| {
            matches!(
                token,
                Token::Plus
                    | Token::Minus
                    | Token::Mul
                    | Token::Div
                    | Token::Mod
                    | Token::Eq
                    | Token::DoubleEq
                    | Token::Neq
                    | Token::Lt
                    | Token::Gt
                    | Token::LtEq
                    | Token::GtEq
                    | Token::StringConcat
                    | Token::Caret
                    | Token::Ampersand
                    | Token::Pipe
            ) || matches!(token, Token::Word(word) if matches!(word.keyword, Keyword::AND | Keyword::OR))
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(LakeError::ExpressionTooLarge {
            operators,
            limit: MAX_OPERATORS,
        });
    }
    Ok(())
}

fn check_is_query(sql: &str) -> Result<(), LakeError> {
    let statements = DFParserBuilder::new(sql)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(LakeError::Query)?;
    if statements.len() > 1 {
        return Err(LakeError::NotAQuery {
            statement: format!("{} statements", statements.len()),
        });
    }
    match statements.front() {
        Some(statement) if is_query(statement) => Ok(()),
        // An empty text gets DataFusion's own message from the planner.
        None => Ok(()),
        Some(_) => Err(LakeError::NotAQuery {
            statement: leading_words(sql),
        }),
    }
}

fn is_query(statement: &Statement) -> bool {
    match statement {
        Statement::Statement(inner) => matches!(inner.as_ref(), SqlStatement::Query(_)),
        Statement::Explain(explain) => is_query(&explain.statement),
        Statement::CreateExternalTable(_) | Statement::CopyTo(_) | Statement::Reset(_) => false,
    }
}

/// The statement's kind as written (`INSERT INTO`, `DROP TABLE`), for the message.
fn leading_words(sql: &str) -> String {
    sql.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_pass_the_statement_check() {
        for sql in [
            "SELECT 1",
            "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
            "VALUES (1), (2)",
            "EXPLAIN SELECT 1",
            "EXPLAIN ANALYZE SELECT 1",
        ] {
            check_is_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        for (sql, kind) in [
            ("INSERT INTO ohlcv SELECT * FROM ohlcv", "INSERT INTO"),
            ("insert into t values (1)", "INSERT INTO"),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY (SELECT"),
            (
                "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL",
            ),
            ("DROP TABLE ohlcv", "DROP TABLE"),
            ("DELETE FROM ohlcv", "DELETE FROM"),
            ("UPDATE ohlcv SET close = 0", "UPDATE OHLCV"),
            (
                "SET datafusion.execution.batch_size = 1",
                "SET DATAFUSION.EXECUTION.BATCH_SIZE",
            ),
            ("EXPLAIN INSERT INTO t VALUES (1)", "EXPLAIN INSERT"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("SELECT 1; DROP TABLE ohlcv", "2 statements"),
        ] {
            match check_is_query(sql) {
                Err(LakeError::NotAQuery { statement }) => assert_eq!(statement, kind, "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[test]
    fn long_operator_chains_are_refused_before_planning() {
        let chain = |n: usize| {
            let terms: Vec<String> = (0..n).map(|i| format!("x = {i}")).collect();
            format!("SELECT 1 WHERE {}", terms.join(" OR "))
        };
        // n terms: n `=` and n − 1 `OR`.
        check_expression_size(&chain(500)).unwrap();
        match check_expression_size(&chain(501)) {
            Err(LakeError::ExpressionTooLarge { operators, limit }) => {
                assert_eq!((operators, limit), (1001, MAX_OPERATORS));
            }
            other => panic!("{other:?}"),
        }
        let in_list: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
        check_expression_size(&format!("SELECT 1 WHERE x IN ({})", in_list.join(", "))).unwrap();
    }
}
