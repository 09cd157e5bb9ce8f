//! `RdbPredicates`: ArkData's condition builder. It compiles to parameterised SQL; table and
//! column names are checked against the schema and reach SQL only as quoted identifiers, and
//! every value is a bound parameter.
//!
//! ```
//! use peerlite::RdbPredicates;
//!
//! let p = RdbPredicates::new("EMPLOYEE")
//!     .equal_to("NAME", "Lisa")
//!     .begin_wrap()
//!     .greater_than("AGE", 18)
//!     .or()
//!     .is_null("AGE")
//!     .end_wrap()
//!     .order_by_desc("SALARY")
//!     .limit(10);
//! assert_eq!(p.table(), "EMPLOYEE");
//! ```

mod compile;

use crate::value::Value;

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Order {
    Asc,
    Desc,
}

/// One comparison against a column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Op {
    Eq(Value),
    Ne(Value),
    Gt(Value),
    Ge(Value),
    Lt(Value),
    Le(Value),
    Between(Value, Value),
    NotBetween(Value, Value),
    Like(String),
    NotLike(String),
    Glob(String),
    NotGlob(String),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    IsNull,
    IsNotNull,
    Contains(String),
    BeginsWith(String),
    EndsWith(String),
}

/// One token of the WHERE clause, in the order the builder was called.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Clause {
    Cond { column: String, op: Op },
    And,
    Or,
    BeginWrap,
    EndWrap,
}

/// Which devices a sync or remote query addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DeviceFilter {
    /// No device named: the caller's default (all connected devices).
    #[default]
    Unspecified,
    /// Exactly these devices.
    Devices(Vec<String>),
    /// Every known device.
    All,
}

/// A condition on one table, built by chaining. Conditions with no connector between them are
/// joined with AND.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RdbPredicates {
    pub(crate) table: String,
    pub(crate) clauses: Vec<Clause>,
    pub(crate) order: Vec<(String, Order)>,
    pub(crate) group_by: Vec<String>,
    pub(crate) distinct: bool,
    pub(crate) limit: Option<i64>,
    pub(crate) offset: Option<i64>,
    pub(crate) devices: DeviceFilter,
}

macro_rules! comparison {
    ($(#[$doc:meta] $name:ident => $op:ident),* $(,)?) => {$(
        #[$doc]
        #[must_use]
        pub fn $name(self, column: &str, value: impl Into<Value>) -> Self {
            self.cond(column, Op::$op(value.into()))
        }
    )*};
}

macro_rules! pattern {
    ($(#[$doc:meta] $name:ident => $op:ident),* $(,)?) => {$(
        #[$doc]
        #[must_use]
        pub fn $name(self, column: &str, pattern: impl Into<String>) -> Self {
            self.cond(column, Op::$op(pattern.into()))
        }
    )*};
}

impl RdbPredicates {
    /// Conditions on `table` (the name is checked against the schema when the predicates run).
    pub fn new(table: impl Into<String>) -> Self {
        RdbPredicates {
            table: table.into(),
            clauses: Vec::new(),
            order: Vec::new(),
            group_by: Vec::new(),
            distinct: false,
            limit: None,
            offset: None,
            devices: DeviceFilter::Unspecified,
        }
    }

    /// The table these predicates address.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The devices named by [`in_devices`](Self::in_devices) or [`in_all_devices`](Self::in_all_devices).
    pub fn devices(&self) -> &DeviceFilter {
        &self.devices
    }

    /// The same predicates for another table name (for example a device's distributed table).
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    fn cond(mut self, column: &str, op: Op) -> Self {
        self.clauses.push(Clause::Cond {
            column: column.to_owned(),
            op,
        });
        self
    }

    comparison! {
        /// `column = value` (`IS NULL` when the value is null).
        equal_to => Eq,
        /// `column <> value` (`IS NOT NULL` when the value is null).
        not_equal_to => Ne,
        /// `column > value`.
        greater_than => Gt,
        /// `column >= value`.
        greater_than_or_equal_to => Ge,
        /// `column < value`.
        less_than => Lt,
        /// `column <= value`.
        less_than_or_equal_to => Le,
    }

    pattern! {
        /// `column LIKE pattern` (`%` and `_` are wildcards; ASCII case-insensitive).
        like => Like,
        /// `column NOT LIKE pattern`.
        not_like => NotLike,
        /// `column GLOB pattern` (`*` and `?`; case-sensitive).
        glob => Glob,
        /// `column NOT GLOB pattern`.
        not_glob => NotGlob,
        /// The column contains `text` literally (wildcards in `text` are escaped).
        contains => Contains,
        /// The column starts with `text` literally.
        begins_with => BeginsWith,
        /// The column ends with `text` literally.
        ends_with => EndsWith,
    }

    /// `column BETWEEN low AND high`.
    #[must_use]
    pub fn between(self, column: &str, low: impl Into<Value>, high: impl Into<Value>) -> Self {
        self.cond(column, Op::Between(low.into(), high.into()))
    }

    /// `column NOT BETWEEN low AND high`.
    #[must_use]
    pub fn not_between(self, column: &str, low: impl Into<Value>, high: impl Into<Value>) -> Self {
        self.cond(column, Op::NotBetween(low.into(), high.into()))
    }

    /// `column IN (values…)`; an empty list matches nothing.
    #[must_use]
    pub fn in_<V: Into<Value>>(self, column: &str, values: impl IntoIterator<Item = V>) -> Self {
        self.cond(column, Op::In(values.into_iter().map(Into::into).collect()))
    }

    /// `column NOT IN (values…)`; an empty list matches everything.
    #[must_use]
    pub fn not_in<V: Into<Value>>(self, column: &str, values: impl IntoIterator<Item = V>) -> Self {
        self.cond(
            column,
            Op::NotIn(values.into_iter().map(Into::into).collect()),
        )
    }

    /// `column IS NULL`.
    #[must_use]
    pub fn is_null(self, column: &str) -> Self {
        self.cond(column, Op::IsNull)
    }

    /// `column IS NOT NULL`.
    #[must_use]
    pub fn is_not_null(self, column: &str) -> Self {
        self.cond(column, Op::IsNotNull)
    }

    /// Opens a parenthesis.
    #[must_use]
    pub fn begin_wrap(mut self) -> Self {
        self.clauses.push(Clause::BeginWrap);
        self
    }

    /// Closes a parenthesis.
    #[must_use]
    pub fn end_wrap(mut self) -> Self {
        self.clauses.push(Clause::EndWrap);
        self
    }

    /// Joins the previous and next condition with AND (the default).
    #[must_use]
    pub fn and(mut self) -> Self {
        self.clauses.push(Clause::And);
        self
    }

    /// Joins the previous and next condition with OR.
    #[must_use]
    pub fn or(mut self) -> Self {
        self.clauses.push(Clause::Or);
        self
    }

    /// Sorts ascending by `column` (after any earlier sort keys).
    #[must_use]
    pub fn order_by_asc(mut self, column: &str) -> Self {
        self.order.push((column.to_owned(), Order::Asc));
        self
    }

    /// Sorts descending by `column` (after any earlier sort keys).
    #[must_use]
    pub fn order_by_desc(mut self, column: &str) -> Self {
        self.order.push((column.to_owned(), Order::Desc));
        self
    }

    /// Groups by these columns.
    #[must_use]
    pub fn group_by(mut self, columns: &[&str]) -> Self {
        self.group_by
            .extend(columns.iter().map(|c| (*c).to_owned()));
        self
    }

    /// Returns each distinct row once.
    #[must_use]
    pub fn distinct(mut self) -> Self {
        self.distinct = true;
        self
    }

    /// At most `n` rows.
    #[must_use]
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skips the first `n` rows.
    #[must_use]
    pub fn offset(mut self, n: i64) -> Self {
        self.offset = Some(n);
        self
    }

    /// Addresses these devices in a sync or remote query.
    #[must_use]
    pub fn in_devices<S: Into<String>>(mut self, devices: impl IntoIterator<Item = S>) -> Self {
        self.devices = DeviceFilter::Devices(devices.into_iter().map(Into::into).collect());
        self
    }

    /// Addresses every known device in a sync or remote query.
    #[must_use]
    pub fn in_all_devices(mut self) -> Self {
        self.devices = DeviceFilter::All;
        self
    }
}
