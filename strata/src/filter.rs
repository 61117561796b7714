//! Filters on the rows of a diff (`diff --where`): which changed rows to show.
//!
//! The syntax, parsed by [`RowFilter::parse`]:
//!
//! ```text
//! expr       := or
//! or         := and ("or" and)*
//! and        := not ("and" not)*
//! not        := "not" not | "(" expr ")" | test
//! test       := column ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
//!             | column "is" ["not"] "null"
//! value      := number | 'text' (a quote doubled inside) | true | false | null
//! column     := a name (letters, digits, _), or one in "double quotes" or `backticks`
//! ```
//!
//! Keywords are case-insensitive; `not` binds tighter than `and`, which binds tighter than
//! `or`. A column named `from_NAME` or `to_NAME` (when the table has no column of that very
//! name) tests the old or the new value of `NAME`; a row that did not exist on that side (an
//! added row's old side) has nulls there. A column without a prefix tests each version of the
//! row that exists (the old and the new of a modified row), and holds if it holds for either.
//!
//! Values compare by the column's type: the literal is converted to it (`'2024-01-31'` to a
//! date, `10` to a float64), and one that does not convert is an error naming the column.
//! Numbers compare only with number columns, `true`/`false` only with bool columns; quoted
//! text converts to any type. Nulls follow SQL: a comparison with a null value is unknown,
//! `not` of unknown is unknown, and a row is shown only when the filter is true. `= null` and
//! `!= null` (or `<> null`) mean `is null` and `is not null`.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, Schema, SortOptions};

/// Why a filter was refused: its syntax, or a column or value that does not fit a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The text is not a filter; `position` is the character (1-based) where it went wrong.
    #[error("invalid filter \"{filter}\" at character {position}: {message}")]
    Syntax {
        filter: String,
        position: usize,
        message: String,
    },
    /// The filter names a column that the table has on neither side of the diff.
    #[error("table '{table}' has no column '{column}' to filter on (its columns: {columns}; from_COLUMN and to_COLUMN test the old and the new value)")]
    UnknownColumn {
        table: String,
        column: String,
        /// The table's columns, comma-separated.
        columns: String,
    },
    /// A value that does not convert to its column's type.
    #[error("the filter compares column '{column}' of table '{table}' ({data_type}) with {value}, which {reason}")]
    BadValue {
        table: String,
        column: String,
        data_type: String,
        /// The value as written.
        value: String,
        reason: String,
    },
}

/// A filter on a diff's changed rows, parsed from text ([`RowFilter::parse`]; the syntax is
/// in this module's documentation). It is checked against each table's columns when the
/// diff starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    text: String,
    expr: Expr,
}

impl std::fmt::Display for RowFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for RowFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, FilterError> {
        RowFilter::parse(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    /// A number as written.
    Number(String),
    Text(String),
    Bool(bool),
}

impl Literal {
    fn shown(&self) -> String {
        match self {
            Literal::Number(n) => n.clone(),
            Literal::Text(t) => format!("'{}'", t.replace('\'', "''")),
            Literal::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Compare(Op, Literal),
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Test { column: String, test: Test },
}

// ---- parsing ----

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A name; `quoted` when written in quotes (never a keyword).
    Name {
        text: String,
        quoted: bool,
    },
    Number(String),
    Text(String),
    Op(Op),
    Open,
    Close,
}

struct Lexer<'a> {
    filter: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Lexer<'_> {
    fn error(&self, at: usize, message: impl Into<String>) -> FilterError {
        FilterError::Syntax {
            filter: self.filter.to_string(),
            position: at + 1,
            message: message.into(),
        }
    }

    /// Every token with the position (0-based character) it starts at.
    fn tokens(mut self) -> Result<Vec<(usize, Token)>, FilterError> {
        let mut out = Vec::new();
        while let Some(&c) = self.chars.get(self.pos) {
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += 1;
                continue;
            }
            let token = match c {
                '(' => {
                    self.pos += 1;
                    Token::Open
                }
                ')' => {
                    self.pos += 1;
                    Token::Close
                }
                '=' => {
                    self.pos += 1;
                    Token::Op(Op::Eq)
                }
                '!' => {
                    if self.chars.get(self.pos + 1) != Some(&'=') {
                        return Err(self.error(start, "'!' must be followed by '=' (!=)"));
                    }
                    self.pos += 2;
                    Token::Op(Op::Ne)
                }
                '<' | '>' => {
                    let next = self.chars.get(self.pos + 1).copied();
                    let (op, len) = match (c, next) {
                        ('<', Some('=')) => (Op::Le, 2),
                        ('<', Some('>')) => (Op::Ne, 2),
                        ('<', _) => (Op::Lt, 1),
                        ('>', Some('=')) => (Op::Ge, 2),
                        _ => (Op::Gt, 1),
                    };
                    self.pos += len;
                    Token::Op(op)
                }
                '\'' => Token::Text(self.quoted('\'', "text")?),
                '"' | '`' => Token::Name {
                    text: self.quoted(c, "column name")?,
                    quoted: true,
                },
                c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => self.number()?,
                c if c.is_alphabetic() || c == '_' => {
                    while self
                        .chars
                        .get(self.pos)
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                    {
                        self.pos += 1;
                    }
                    Token::Name {
                        text: self.chars[start..self.pos].iter().collect(),
                        quoted: false,
                    }
                }
                other => return Err(self.error(start, format!("unexpected character '{other}'"))),
            };
            out.push((start, token));
        }
        Ok(out)
    }

    /// Text between `quote`s (a doubled quote stands for one), the opening one at `pos`.
    fn quoted(&mut self, quote: char, what: &str) -> Result<String, FilterError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => {
                    return Err(self.error(
                        start,
                        format!("the {what} starting here has no closing {quote}"),
                    ))
                }
                Some(&c) if c == quote => {
                    if self.chars.get(self.pos + 1) == Some(&quote) {
                        text.push(quote);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(text);
                    }
                }
                Some(&c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A number: an optional sign, digits with an optional fraction, an optional exponent.
    fn number(&mut self) -> Result<Token, FilterError> {
        let start = self.pos;
        let mut end = self.pos;
        if matches!(self.chars.get(end), Some('-' | '+')) {
            end += 1;
        }
        let mut digits = 0;
        let mut dot = false;
        while let Some(&c) = self.chars.get(end) {
            if c.is_ascii_digit() {
                digits += 1;
            } else if c == '.' && !dot {
                dot = true;
            } else {
                break;
            }
            end += 1;
        }
        if digits > 0 && matches!(self.chars.get(end), Some('e' | 'E')) {
            let mut e = end + 1;
            if matches!(self.chars.get(e), Some('-' | '+')) {
                e += 1;
            }
            if self.chars.get(e).is_some_and(char::is_ascii_digit) {
                while self.chars.get(e).is_some_and(char::is_ascii_digit) {
                    e += 1;
                }
                end = e;
            }
        }
        let followed_by_name = self
            .chars
            .get(end)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_');
        if digits == 0 || followed_by_name {
            let word: String = self.chars[start..]
                .iter()
                .take_while(|c| !c.is_whitespace() && !"()".contains(**c))
                .collect();
            return Err(self.error(start, format!("'{word}' is not a number")));
        }
        self.pos = end;
        Ok(Token::Number(self.chars[start..end].iter().collect()))
    }
}

struct Parser<'a> {
    filter: &'a str,
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// Characters in the filter, for the position of its end.
    len: usize,
}

fn keyword(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Name { text, quoted: false }) if text.eq_ignore_ascii_case(word))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.next).map_or(self.len, |(p, _)| *p)
    }

    fn error(&self, message: impl Into<String>) -> FilterError {
        let found = match self.tokens.get(self.next) {
            None => "the end".to_string(),
            Some((p, _)) => {
                let rest: String = self.filter.chars().skip(*p).collect();
                let word: String = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(20)
                    .collect();
                format!("'{word}'")
            }
        };
        FilterError::Syntax {
            filter: self.filter.to_string(),
            position: self.at() + 1,
            message: format!("expected {}, found {found}", message.into()),
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if keyword(self.peek(), word) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.not()?;
        while self.eat_keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, FilterError> {
        if self.eat_keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return Err(self.error("')' or a logical operator (and, or)"));
            }
            self.next += 1;
            return Ok(inner);
        }
        self.test()
    }

    fn test(&mut self) -> Result<Expr, FilterError> {
        let column = match self.peek() {
            Some(Token::Name { text, quoted })
                if *quoted
                    || !["and", "or", "not", "is", "null", "true", "false"]
                        .iter()
                        .any(|k| text.eq_ignore_ascii_case(k)) =>
            {
                text.clone()
            }
            _ => return Err(self.error("a column name")),
        };
        self.next += 1;
        if self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            if !self.eat_keyword("null") {
                return Err(self.error("null (IS NULL or IS NOT NULL)"));
            }
            let test = if negated {
                Test::IsNotNull
            } else {
                Test::IsNull
            };
            return Ok(Expr::Test { column, test });
        }
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(self.error("a comparison (=, !=, <>, <, <=, >, >=) or IS [NOT] NULL")),
        };
        self.next += 1;
        let value = match self.peek() {
            Some(Token::Number(n)) => Some(Literal::Number(n.clone())),
            Some(Token::Text(t)) => Some(Literal::Text(t.clone())),
            _ if keyword(self.peek(), "true") => Some(Literal::Bool(true)),
            _ if keyword(self.peek(), "false") => Some(Literal::Bool(false)),
            _ if keyword(self.peek(), "null") => None,
            _ => return Err(self.error("a value (a number, 'text', true, false or null)")),
        };
        let test =
            match (value, op) {
                (Some(v), op) => Test::Compare(op, v),
                (None, Op::Eq) => Test::IsNull,
                (None, Op::Ne) => Test::IsNotNull,
                (None, _) => return Err(self.error(
                    "a value other than null after <, <=, > or >= (null is tested with IS NULL)",
                )),
            };
        self.next += 1;
        Ok(Expr::Test { column, test })
    }
}

impl RowFilter {
    /// Parses a filter (syntax in this module's documentation). Only the text is checked
    /// here; its columns and values are checked against each table when a diff starts.
    pub fn parse(text: &str) -> Result<RowFilter, FilterError> {
        let lexer = Lexer {
            filter: text,
            chars: text.chars().collect(),
            pos: 0,
        };
        let len = lexer.chars.len();
        let tokens = lexer.tokens()?;
        let mut parser = Parser {
            filter: text,
            tokens,
            next: 0,
            len,
        };
        if parser.peek().is_none() {
            return Err(parser.error("a condition such as price > 10"));
        }
        let expr = parser.or()?;
        if parser.peek().is_some() {
            return Err(parser.error("a logical operator (and, or) or the end"));
        }
        Ok(RowFilter {
            text: text.to_string(),
            expr,
        })
    }

    /// The filter for one table, whose schema is `old` before and `new` after (absent on a
    /// side where the table does not exist): checks its columns and converts its values.
    pub(crate) fn bind(
        &self,
        table: &str,
        old: Option<&Schema>,
        new: Option<&Schema>,
    ) -> Result<BoundFilter, FilterError> {
        Ok(BoundFilter {
            expr: bind(&self.expr, table, old, new)?,
        })
    }
}

// ---- binding to a table and evaluating ----

/// Which version of a row a test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Old,
    New,
    /// Each version that exists; true if it holds for either.
    Either,
}

#[derive(Debug, Clone)]
enum Bound {
    And(Box<Bound>, Box<Bound>),
    Or(Box<Bound>, Box<Bound>),
    Not(Box<Bound>),
    Test {
        column: String,
        side: Side,
        test: Test,
        /// For comparisons: the value as the column's type on each side (old, new); none on
        /// a side that does not have the column (its values are null there).
        values: [Option<ArrayRef>; 2],
    },
}

/// A [`RowFilter`] checked against one table, ready to test its changed rows.
#[derive(Debug, Clone)]
pub(crate) struct BoundFilter {
    expr: Bound,
}

fn has_column(schema: Option<&Schema>, name: &str) -> bool {
    schema.is_some_and(|s| s.index_of(name).is_ok())
}

/// The column and side a name in a filter stands for.
fn resolve(
    name: &str,
    table: &str,
    old: Option<&Schema>,
    new: Option<&Schema>,
) -> Result<(String, Side), FilterError> {
    let known = |n: &str| has_column(old, n) || has_column(new, n);
    if known(name) {
        return Ok((name.to_string(), Side::Either));
    }
    for (prefix, side) in [("from_", Side::Old), ("to_", Side::New)] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if known(rest) {
                return Ok((rest.to_string(), side));
            }
        }
    }
    let mut columns: Vec<String> = Vec::new();
    for s in [new, old].into_iter().flatten() {
        for f in s.fields() {
            if !columns.contains(f.name()) {
                columns.push(f.name().clone());
            }
        }
    }
    Err(FilterError::UnknownColumn {
        table: table.to_string(),
        column: name.to_string(),
        columns: columns.join(", "),
    })
}

fn bind(
    expr: &Expr,
    table: &str,
    old: Option<&Schema>,
    new: Option<&Schema>,
) -> Result<Bound, FilterError> {
    Ok(match expr {
        Expr::And(a, b) => Bound::And(
            Box::new(bind(a, table, old, new)?),
            Box::new(bind(b, table, old, new)?),
        ),
        Expr::Or(a, b) => Bound::Or(
            Box::new(bind(a, table, old, new)?),
            Box::new(bind(b, table, old, new)?),
        ),
        Expr::Not(a) => Bound::Not(Box::new(bind(a, table, old, new)?)),
        Expr::Test { column, test } => {
            let (name, side) = resolve(column, table, old, new)?;
            let mut values: [Option<ArrayRef>; 2] = [None, None];
            if let Test::Compare(_, literal) = test {
                for (i, schema) in [old, new].into_iter().enumerate() {
                    if let Some(f) = schema.and_then(|s| s.field_with_name(&name).ok()) {
                        values[i] = Some(convert(literal, f.data_type(), table, &name)?);
                    }
                }
            }
            Bound::Test {
                column: name,
                side,
                test: test.clone(),
                values,
            }
        }
    })
}

/// A one-value array of `literal` as `to`, or why it cannot be one.
fn convert(
    literal: &Literal,
    to: &DataType,
    table: &str,
    column: &str,
) -> Result<ArrayRef, FilterError> {
    let bad = |reason: String| FilterError::BadValue {
        table: table.to_string(),
        column: column.to_string(),
        data_type: strata_engine::schema::type_name(to).unwrap_or_else(|| to.to_string()),
        value: literal.shown(),
        reason,
    };
    let numeric = to.is_numeric();
    let raw: ArrayRef = match literal {
        Literal::Number(n) if numeric => Arc::new(StringArray::from(vec![n.as_str()])),
        Literal::Number(_) => {
            return Err(bad(
                "is a number; quote it ('...') to compare it as text or as a date".into(),
            ))
        }
        Literal::Bool(b) if to == &DataType::Boolean => Arc::new(BooleanArray::from(vec![*b])),
        Literal::Bool(_) => return Err(bad("is a bool".into())),
        Literal::Text(t) => Arc::new(StringArray::from(vec![t.as_str()])),
    };
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };
    let value = cast_with_options(&raw, to, &opts).map_err(|e| {
        let text = match e {
            arrow_schema::ArrowError::CastError(s) | arrow_schema::ArrowError::ParseError(s) => s,
            other => other.to_string(),
        };
        bad(format!("does not convert to it ({text})"))
    })?;
    if value.is_null(0) {
        return Err(bad("does not convert to it".into()));
    }
    // Values of this type must be comparable.
    let _order =
        arrow_ord::ord::make_comparator(value.as_ref(), value.as_ref(), SortOptions::default())
            .map_err(|_| bad("cannot be compared: the column's type has no order".into()))?;
    Ok(value)
}

/// One version of a row: its batch and row number.
pub(crate) type RowRef<'a> = Option<(&'a RecordBatch, usize)>;

/// SQL's three-valued `and`.
fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// SQL's three-valued `or`.
fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

impl BoundFilter {
    /// Whether a changed row passes: `old` and `new` are its versions (absent for an added
    /// row's old one and a removed row's new one).
    pub(crate) fn matches(&self, old: RowRef<'_>, new: RowRef<'_>) -> bool {
        eval(&self.expr, old, new) == Some(true)
    }
}

fn eval(expr: &Bound, old: RowRef<'_>, new: RowRef<'_>) -> Option<bool> {
    match expr {
        Bound::And(a, b) => and3(eval(a, old, new), eval(b, old, new)),
        Bound::Or(a, b) => or3(eval(a, old, new), eval(b, old, new)),
        Bound::Not(a) => eval(a, old, new).map(|v| !v),
        Bound::Test {
            column,
            side,
            test,
            values,
        } => {
            let one = |i: usize, row: RowRef<'_>| test_one(column, test, values[i].as_ref(), row);
            match side {
                Side::Old => one(0, old),
                Side::New => one(1, new),
                Side::Either => match (old.is_some(), new.is_some()) {
                    (true, true) => or3(one(0, old), one(1, new)),
                    (true, false) => one(0, old),
                    (false, true) => one(1, new),
                    (false, false) => None,
                },
            }
        }
    }
}

/// A test on one version of a row (absent: a row that does not exist on this side, whose
/// values are null).
fn test_one(column: &str, test: &Test, value: Option<&ArrayRef>, row: RowRef<'_>) -> Option<bool> {
    let cell = row.and_then(|(batch, i)| {
        let c = batch.column_by_name(column)?;
        (!c.is_null(i)).then_some((c, i))
    });
    match test {
        Test::IsNull => Some(cell.is_none()),
        Test::IsNotNull => Some(cell.is_some()),
        Test::Compare(op, _) => {
            let (col, i) = cell?;
            let literal = value?;
            let cmp = arrow_ord::ord::make_comparator(
                col.as_ref(),
                literal.as_ref(),
                SortOptions::default(),
            )
            .ok()?;
            Some(op.holds(cmp(i, 0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Date32Array, Float64Array, Int64Array};
    use arrow_schema::Field;

    fn parse(s: &str) -> Expr {
        RowFilter::parse(s)
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
            .expr
    }

    fn test(column: &str, test: Test) -> Expr {
        Expr::Test {
            column: column.into(),
            test,
        }
    }

    fn cmp(column: &str, op: Op, lit: Literal) -> Expr {
        test(column, Test::Compare(op, lit))
    }

    fn num(n: &str) -> Literal {
        Literal::Number(n.into())
    }

    fn syntax_error(s: &str) -> (usize, String) {
        match RowFilter::parse(s) {
            Err(FilterError::Syntax {
                position, message, ..
            }) => (position, message),
            other => panic!("{s:?} should be a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn every_comparison_operator_parses() {
        for (text, op) in [
            ("=", Op::Eq),
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            ("<", Op::Lt),
            ("<=", Op::Le),
            (">", Op::Gt),
            (">=", Op::Ge),
        ] {
            assert_eq!(
                parse(&format!("a {text} 1")),
                cmp("a", op, num("1")),
                "{text}"
            );
            assert_eq!(
                parse(&format!("a{text}1")),
                cmp("a", op, num("1")),
                "{text}"
            );
        }
    }

    #[test]
    fn values_are_numbers_quoted_text_bools_and_null() {
        assert_eq!(parse("a = -1.5e3"), cmp("a", Op::Eq, num("-1.5e3")));
        assert_eq!(
            parse("a = 'it''s'"),
            cmp("a", Op::Eq, Literal::Text("it's".into()))
        );
        assert_eq!(parse("a = TRUE"), cmp("a", Op::Eq, Literal::Bool(true)));
        assert_eq!(parse("a = false"), cmp("a", Op::Eq, Literal::Bool(false)));
        assert_eq!(parse("a = null"), test("a", Test::IsNull));
        assert_eq!(parse("a <> NULL"), test("a", Test::IsNotNull));
        assert_eq!(parse("a is null"), test("a", Test::IsNull));
        assert_eq!(parse("a IS NOT NULL"), test("a", Test::IsNotNull));
        assert_eq!(
            parse("\"unit price\" > 1"),
            cmp("unit price", Op::Gt, num("1"))
        );
        assert_eq!(parse("`and` = 1"), cmp("and", Op::Eq, num("1")));
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let (a, b, c) = (
            cmp("a", Op::Eq, num("1")),
            cmp("b", Op::Eq, num("2")),
            cmp("c", Op::Eq, num("3")),
        );
        let and = |x: Expr, y: Expr| Expr::And(Box::new(x), Box::new(y));
        let or = |x: Expr, y: Expr| Expr::Or(Box::new(x), Box::new(y));
        let not = |x: Expr| Expr::Not(Box::new(x));
        assert_eq!(
            parse("a = 1 or b = 2 and c = 3"),
            or(a.clone(), and(b.clone(), c.clone()))
        );
        assert_eq!(
            parse("a = 1 AND b = 2 OR c = 3"),
            or(and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(parse("not a = 1 and b = 2"), and(not(a.clone()), b.clone()));
        assert_eq!(
            parse("not (a = 1 and b = 2)"),
            not(and(a.clone(), b.clone()))
        );
        assert_eq!(
            parse("(a = 1 or b = 2) and c = 3"),
            and(or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(parse("not not a = 1"), not(not(a)));
    }

    #[test]
    fn syntax_errors_say_where_and_what_was_expected() {
        assert_eq!(syntax_error("price >").0, 8);
        assert!(syntax_error("price >").1.contains("expected a value"));
        assert_eq!(syntax_error("price 10").0, 7);
        assert!(syntax_error("price 10").1.contains("a comparison"));
        assert_eq!(syntax_error("(a = 1").0, 7);
        assert_eq!(syntax_error("a = 1 b = 2").0, 7);
        assert_eq!(syntax_error("a = 'open").0, 5);
        assert!(syntax_error("a = 'open").1.contains("no closing"));
        assert_eq!(syntax_error("a ! 1").0, 3);
        assert_eq!(syntax_error("a = 1 and").0, 10);
        assert_eq!(syntax_error("a is 1").0, 6);
        assert_eq!(syntax_error("a > null").0, 5);
        assert_eq!(syntax_error("a = 12abc").0, 5);
        assert_eq!(syntax_error("").0, 1);
        assert_eq!(syntax_error("and = 1").0, 1);
        assert_eq!(syntax_error("a = 1 # x").0, 7);
        let text = RowFilter::parse("price >").err().map(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Some("invalid filter \"price >\" at character 8: expected a value (a number, 'text', true, false or null), found the end")
        );
    }

    /// A table `t` with columns id (int64), price (float64, nullable), name (utf8,
    /// nullable), ok (bool), day (date32).
    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Float64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("day", DataType::Date32, true),
        ])
    }

    fn batch(id: i64, price: Option<f64>, name: Option<&str>, ok: bool, day: i32) -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(Int64Array::from(vec![id])),
                Arc::new(Float64Array::from(vec![price])),
                Arc::new(StringArray::from(vec![name])),
                Arc::new(BooleanArray::from(vec![ok])),
                Arc::new(Date32Array::from(vec![day])),
            ],
        )
        .expect("a batch of the schema")
    }

    fn bound(filter: &str) -> BoundFilter {
        let s = schema();
        RowFilter::parse(filter)
            .and_then(|f| f.bind("t", Some(&s), Some(&s)))
            .unwrap_or_else(|e| panic!("{filter:?}: {e}"))
    }

    /// Whether `filter` passes a row that changed from `old` to `new`.
    fn passes(filter: &str, old: Option<&RecordBatch>, new: Option<&RecordBatch>) -> bool {
        bound(filter).matches(old.map(|b| (b, 0)), new.map(|b| (b, 0)))
    }

    #[test]
    fn each_operator_compares_by_the_columns_type() {
        let row = batch(7, Some(10.0), Some("bolt"), true, 19_723); // 2024-01-01
        let r = Some(&row);
        for (filter, expected) in [
            ("price = 10", true),
            ("price = 10.0", true),
            ("price != 10", false),
            ("price <> 9.5", true),
            ("price < 10", false),
            ("price <= 10", true),
            ("price > 9.99", true),
            ("price >= 10.01", false),
            ("id = 7", true),
            ("id > '6'", true),
            ("name = 'bolt'", true),
            ("name < 'c'", true),
            ("name > 'bolts'", false),
            ("ok = true", true),
            ("ok != true", false),
            ("day = '2024-01-01'", true),
            ("day < '2023-12-31'", false),
        ] {
            assert_eq!(passes(filter, r, r), expected, "{filter}");
        }
    }

    #[test]
    fn and_or_not_combine_and_parentheses_group() {
        let row = batch(1, Some(5.0), Some("nut"), false, 0);
        let r = Some(&row);
        assert!(passes("price > 1 and name = 'nut'", r, r));
        assert!(!passes("price > 1 and name = 'bolt'", r, r));
        assert!(passes("price > 9 or name = 'nut'", r, r));
        assert!(!passes("not price > 1", r, r));
        assert!(passes("not (price > 9 and name = 'nut')", r, r));
        // `or` binds looser: true or (false and false).
        assert!(passes("name = 'nut' or price > 9 and id = 2", r, r));
        assert!(!passes("(name = 'nut' or price > 9) and id = 2", r, r));
    }

    #[test]
    fn nulls_make_comparisons_unknown_and_only_true_rows_pass() {
        let row = batch(1, None, None, true, 0);
        let r = Some(&row);
        assert!(!passes("price > 1", r, r));
        assert!(!passes("price <= 1", r, r));
        assert!(!passes("not price > 1", r, r), "not unknown is unknown");
        assert!(passes("price is null", r, r));
        assert!(passes("price = null", r, r));
        assert!(!passes("price is not null", r, r));
        assert!(
            passes("price > 1 or id = 1", r, r),
            "unknown or true is true"
        );
        assert!(
            !passes("price > 1 and id = 1", r, r),
            "unknown and true is unknown"
        );
        assert!(!passes("price > 1 or id = 2", r, r));
        assert!(
            passes("not (price > 1 and id = 2)", r, r),
            "unknown and false is false"
        );
    }

    #[test]
    fn prefixes_pick_the_old_or_new_value_and_no_prefix_takes_either() {
        let old = batch(1, Some(5.0), Some("nut"), true, 0);
        let new = batch(1, Some(15.0), Some("nut"), true, 0);
        let (o, n) = (Some(&old), Some(&new));
        assert!(passes("from_price < 10 and to_price > 10", o, n));
        assert!(!passes("from_price > 10", o, n));
        assert!(passes("to_price > 10", o, n));
        assert!(passes("price > 10", o, n), "the new value holds");
        assert!(passes("price < 10", o, n), "the old value holds");
        assert!(!passes("price > 20", o, n));
        // An added row has no old version: its from_ values are null, and a column without
        // a prefix looks at the new version only.
        assert!(passes("from_price is null", None, n));
        assert!(!passes("from_price < 100", None, n));
        assert!(!passes("price is null", None, n));
        assert!(passes("price > 10", None, n));
        assert!(passes("to_price is null", o, None));
        assert!(passes("price < 10", o, None));
    }

    #[test]
    fn a_column_named_like_a_prefix_is_itself() {
        let s = Schema::new(vec![
            Field::new("to_do", DataType::Int64, false),
            Field::new("do", DataType::Int64, false),
        ]);
        let row = RecordBatch::try_new(
            Arc::new(s.clone()),
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![2])),
            ],
        )
        .expect("a batch");
        let f = RowFilter::parse("to_do = 1 and from_do = 2")
            .and_then(|f| f.bind("t", Some(&s), Some(&s)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(f.matches(Some((&row, 0)), Some((&row, 0))));
    }

    fn bind_error(filter: &str) -> FilterError {
        let s = schema();
        match RowFilter::parse(filter).and_then(|f| f.bind("t", Some(&s), Some(&s))) {
            Err(e) => e,
            Ok(_) => panic!("{filter:?} should not fit table t"),
        }
    }

    #[test]
    fn an_unknown_column_or_a_value_of_another_type_is_an_error_naming_the_column() {
        let e = bind_error("cost > 1");
        assert!(
            matches!(&e, FilterError::UnknownColumn { table, column, .. } if table == "t" && column == "cost"),
            "{e:?}"
        );
        assert!(e.to_string().contains("id, price, name, ok, day"), "{e}");
        assert!(
            matches!(bind_error("from_cost > 1"), FilterError::UnknownColumn { column, .. } if column == "from_cost")
        );
        for (filter, column) in [
            ("id = 1.5", "id"),
            ("id = 'seven'", "id"),
            ("id > 99999999999999999999", "id"),
            ("price = 'cheap'", "price"),
            ("name = 5", "name"),
            ("ok = 1", "ok"),
            ("price = true", "price"),
            ("day = 'soon'", "day"),
            ("day > 20240101", "day"),
        ] {
            let e = bind_error(filter);
            assert!(
                matches!(&e, FilterError::BadValue { column: c, table, .. } if c == column && table == "t"),
                "{filter}: {e:?}"
            );
            assert!(e.to_string().contains(&format!("column '{column}'")), "{e}");
        }
    }

    #[test]
    fn a_column_on_one_side_only_is_null_on_the_other() {
        let old_schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let new_schema = schema();
        let old = RecordBatch::try_new(
            Arc::new(old_schema.clone()),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .expect("a batch");
        let new = batch(1, Some(3.0), None, true, 0);
        let f = |text: &str| {
            RowFilter::parse(text)
                .and_then(|f| f.bind("t", Some(&old_schema), Some(&new_schema)))
                .unwrap_or_else(|e| panic!("{e}"))
                .matches(Some((&old, 0)), Some((&new, 0)))
        };
        assert!(f("from_price is null and to_price = 3"));
        assert!(f("price = 3"));
        assert!(!f("from_price = 3"));
    }
}
