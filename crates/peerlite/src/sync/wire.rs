//! The predicates of a filtered sync as they travel: a wire type of its own, so that the query
//! builder ([`RdbPredicates`]) can grow fields (order, paging, devices, …) without changing a
//! byte of protocol version 1 or the watermark key derived from it ([`filter_id`]).
//!
//! Only what selects rows travels — the table and the WHERE clauses — because that is what
//! decides which rows belong to the filtered sync; how a local query would be ordered or paged
//! does not.
//!
//! ```
//! use peerlite::RdbPredicates;
//! use peerlite::sync::{WireFilter, filter_id};
//!
//! let p = RdbPredicates::new("item").equal_to("shop", "north").order_by_asc("title");
//! let wire = WireFilter::from_predicates(&p).expect("it has a condition");
//! // Ordering is not part of the filter: the same rows, the same watermark.
//! let q = RdbPredicates::new("item").equal_to("shop", "north");
//! assert_eq!(filter_id(Some(&wire)), filter_id(WireFilter::from_predicates(&q).as_ref()));
//! ```

use serde::{Deserialize, Serialize};

use crate::store::RdbPredicates;
use crate::store::predicates::{Clause, Op};
use crate::value::Value;

/// The rows a filtered sync covers: conditions on one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFilter {
    /// The table.
    pub table: String,
    /// The WHERE clause, token by token in the order the builder was called.
    pub clauses: Vec<WireClause>,
}

impl WireFilter {
    /// The columns its conditions compare.
    pub fn columns(&self) -> impl Iterator<Item = &String> {
        self.clauses.iter().filter_map(|c| match c {
            WireClause::Cond { column, .. } => Some(column),
            _ => None,
        })
    }

    /// The first compared column that is not among `synced`: a column kept local stays local,
    /// so a peer may neither read nor filter on it (a filter on it answers guesses of its
    /// values by what it selects).
    pub(crate) fn unsynced_column(&self, synced: &[String]) -> Option<&String> {
        self.columns()
            .find(|column| !synced.iter().any(|c| c.eq_ignore_ascii_case(column)))
    }
}

/// One token of a filter's WHERE clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireClause {
    /// A comparison against a column.
    Cond {
        /// The column.
        column: String,
        /// The comparison.
        op: WireOp,
    },
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `(`.
    Open,
    /// `)`.
    Close,
}

/// A comparison, as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WireOp {
    /// `=` (`IS NULL` for null).
    Eq(Value),
    /// `<>` (`IS NOT NULL` for null).
    Ne(Value),
    /// `>`.
    Gt(Value),
    /// `>=`.
    Ge(Value),
    /// `<`.
    Lt(Value),
    /// `<=`.
    Le(Value),
    /// `BETWEEN a AND b`.
    Between(Value, Value),
    /// `NOT BETWEEN a AND b`.
    NotBetween(Value, Value),
    /// `LIKE`.
    Like(String),
    /// `NOT LIKE`.
    NotLike(String),
    /// `GLOB`.
    Glob(String),
    /// `NOT GLOB`.
    NotGlob(String),
    /// `IN (…)`.
    In(Vec<Value>),
    /// `NOT IN (…)`.
    NotIn(Vec<Value>),
    /// `IS NULL`.
    IsNull,
    /// `IS NOT NULL`.
    IsNotNull,
    /// Contains the text.
    Contains(String),
    /// Begins with the text.
    BeginsWith(String),
    /// Ends with the text.
    EndsWith(String),
}

impl WireFilter {
    /// The filter a sync by `predicates` runs with, or `None` when they select the whole table
    /// (no condition).
    pub fn from_predicates(predicates: &RdbPredicates) -> Option<WireFilter> {
        let clauses: Vec<WireClause> = predicates.clauses.iter().map(to_wire).collect();
        (!clauses.is_empty()).then(|| WireFilter {
            table: predicates.table().to_owned(),
            clauses,
        })
    }

    /// The predicates that select the filter's rows (checked against the schema when they run).
    pub fn to_predicates(&self) -> RdbPredicates {
        let mut p = RdbPredicates::new(self.table.clone());
        p.clauses = self.clauses.iter().map(from_wire).collect();
        p
    }
}

fn to_wire(c: &Clause) -> WireClause {
    match c {
        Clause::Cond { column, op } => WireClause::Cond {
            column: column.clone(),
            op: match op.clone() {
                Op::Eq(v) => WireOp::Eq(v),
                Op::Ne(v) => WireOp::Ne(v),
                Op::Gt(v) => WireOp::Gt(v),
                Op::Ge(v) => WireOp::Ge(v),
                Op::Lt(v) => WireOp::Lt(v),
                Op::Le(v) => WireOp::Le(v),
                Op::Between(a, b) => WireOp::Between(a, b),
                Op::NotBetween(a, b) => WireOp::NotBetween(a, b),
                Op::Like(s) => WireOp::Like(s),
                Op::NotLike(s) => WireOp::NotLike(s),
                Op::Glob(s) => WireOp::Glob(s),
                Op::NotGlob(s) => WireOp::NotGlob(s),
                Op::In(v) => WireOp::In(v),
                Op::NotIn(v) => WireOp::NotIn(v),
                Op::IsNull => WireOp::IsNull,
                Op::IsNotNull => WireOp::IsNotNull,
                Op::Contains(s) => WireOp::Contains(s),
                Op::BeginsWith(s) => WireOp::BeginsWith(s),
                Op::EndsWith(s) => WireOp::EndsWith(s),
            },
        },
        Clause::And => WireClause::And,
        Clause::Or => WireClause::Or,
        Clause::BeginWrap => WireClause::Open,
        Clause::EndWrap => WireClause::Close,
    }
}

fn from_wire(c: &WireClause) -> Clause {
    match c {
        WireClause::Cond { column, op } => Clause::Cond {
            column: column.clone(),
            op: match op.clone() {
                WireOp::Eq(v) => Op::Eq(v),
                WireOp::Ne(v) => Op::Ne(v),
                WireOp::Gt(v) => Op::Gt(v),
                WireOp::Ge(v) => Op::Ge(v),
                WireOp::Lt(v) => Op::Lt(v),
                WireOp::Le(v) => Op::Le(v),
                WireOp::Between(a, b) => Op::Between(a, b),
                WireOp::NotBetween(a, b) => Op::NotBetween(a, b),
                WireOp::Like(s) => Op::Like(s),
                WireOp::NotLike(s) => Op::NotLike(s),
                WireOp::Glob(s) => Op::Glob(s),
                WireOp::NotGlob(s) => Op::NotGlob(s),
                WireOp::In(v) => Op::In(v),
                WireOp::NotIn(v) => Op::NotIn(v),
                WireOp::IsNull => Op::IsNull,
                WireOp::IsNotNull => Op::IsNotNull,
                WireOp::Contains(s) => Op::Contains(s),
                WireOp::BeginsWith(s) => Op::BeginsWith(s),
                WireOp::EndsWith(s) => Op::EndsWith(s),
            },
        },
        WireClause::And => Clause::And,
        WireClause::Or => Clause::Or,
        WireClause::Open => Clause::BeginWrap,
        WireClause::Close => Clause::EndWrap,
    }
}

/// A stable number for a filtered sync (0 for the whole table), the key of its watermark:
/// a hash of the filter's wire bytes, which golden tests pin.
pub fn filter_id(filter: Option<&WireFilter>) -> u64 {
    let Some(f) = filter else { return 0 };
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail; an unencodable filter would hash as empty and still be
    // distinct from the whole table (never 0).
    if let Ok(b) = postcard::to_stdvec(f) {
        bytes = b;
    }
    let hash = blake3::hash(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clause_survives_the_round_trip() {
        let p = RdbPredicates::new("t")
            .equal_to("a", 1)
            .not_equal_to("a", Value::Null)
            .greater_than("a", 1.5)
            .greater_than_or_equal_to("a", "x")
            .less_than("a", vec![1u8, 2])
            .less_than_or_equal_to("a", 2)
            .between("a", 1, 2)
            .not_between("a", 1, 2)
            .like("b", "x%")
            .not_like("b", "y%")
            .glob("b", "z*")
            .not_glob("b", "w*")
            .in_("a", vec![Value::from(1), Value::from(2)])
            .not_in("a", vec![Value::from(3)])
            .is_null("c")
            .is_not_null("c")
            .contains("b", "m")
            .begins_with("b", "n")
            .ends_with("b", "o")
            .begin_wrap()
            .equal_to("a", 1)
            .or()
            .equal_to("a", 2)
            .end_wrap()
            .and()
            .equal_to("a", 3);
        let wire = WireFilter::from_predicates(&p).expect("conditions");
        assert_eq!(wire.to_predicates().clauses, p.clauses);
        assert_eq!(wire.clauses.len(), p.clauses.len());
    }

    #[test]
    fn no_condition_is_the_whole_table() {
        let p = RdbPredicates::new("t").order_by_asc("a").limit(3);
        assert_eq!(WireFilter::from_predicates(&p), None);
        assert_eq!(filter_id(None), 0);
    }
}
