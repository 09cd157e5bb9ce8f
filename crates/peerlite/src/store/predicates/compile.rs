//! Turns predicates into SQL text plus bound parameters. Names come only from the schema
//! (`TableInfo::resolve`), quoted; values only as `?` parameters.

use super::{Clause, Op, Order, RdbPredicates};
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::store::schema::{TableInfo, quote_ident};
use crate::value::Value;

/// ` WHERE …` (or empty) and its parameters.
#[derive(Debug)]
pub(crate) struct CompiledWhere {
    pub sql: String,
    pub params: Vec<Value>,
}

/// A whole SELECT and its parameters.
#[derive(Debug)]
pub(crate) struct CompiledSelect {
    pub sql: String,
    pub params: Vec<Value>,
}

#[derive(PartialEq)]
enum Prev {
    Start,
    Term,
    Connector,
    Open,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid(StoreKind::Relational, message)
}

fn column(info: &TableInfo, name: &str) -> Result<String> {
    info.resolve(name)
        .map(quote_ident)
        .ok_or_else(|| Error::UnknownColumn {
            table: info.name.clone(),
            column: name.to_owned(),
            kind: StoreKind::Relational,
        })
}

/// Escapes `%`, `_` and `\` so that `text` matches literally under `ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl RdbPredicates {
    /// Every column name the predicates mention, for resolving against the schema.
    pub(crate) fn referenced_columns(&self) -> impl Iterator<Item = &str> + Clone {
        let conds = self.clauses.iter().filter_map(|c| match c {
            Clause::Cond { column, .. } => Some(column.as_str()),
            _ => None,
        });
        conds
            .chain(self.order.iter().map(|(c, _)| c.as_str()))
            .chain(self.group_by.iter().map(String::as_str))
    }

    /// The WHERE clause alone.
    pub(crate) fn compile_where(&self, info: &TableInfo) -> Result<CompiledWhere> {
        let mut sql = String::new();
        let mut params = Vec::new();
        let mut prev = Prev::Start;
        let mut depth = 0usize;
        for clause in &self.clauses {
            match clause {
                Clause::Cond { column: name, op } => {
                    if prev == Prev::Term {
                        sql.push_str(" AND ");
                    }
                    push_condition(&mut sql, &mut params, &column(info, name)?, op);
                    prev = Prev::Term;
                }
                Clause::BeginWrap => {
                    if prev == Prev::Term {
                        sql.push_str(" AND ");
                    }
                    sql.push('(');
                    depth += 1;
                    prev = Prev::Open;
                }
                Clause::EndWrap => {
                    if depth == 0 {
                        return Err(invalid("end_wrap() without a matching begin_wrap()"));
                    }
                    if prev != Prev::Term {
                        return Err(invalid(
                            "end_wrap() must follow a condition (empty wrap or dangling and/or)",
                        ));
                    }
                    sql.push(')');
                    depth -= 1;
                    prev = Prev::Term;
                }
                Clause::And | Clause::Or => {
                    if prev != Prev::Term {
                        return Err(invalid("and()/or() must come between two conditions"));
                    }
                    sql.push_str(if *clause == Clause::And {
                        " AND "
                    } else {
                        " OR "
                    });
                    prev = Prev::Connector;
                }
            }
        }
        if prev == Prev::Connector {
            return Err(invalid(
                "the predicates end with and()/or(); add a condition after it",
            ));
        }
        if depth != 0 || prev == Prev::Open {
            return Err(invalid("begin_wrap() without a matching end_wrap()"));
        }
        if !sql.is_empty() {
            sql.insert_str(0, " WHERE ");
        }
        Ok(CompiledWhere { sql, params })
    }

    fn push_tail(&self, info: &TableInfo, sql: &mut String, params: &mut Vec<Value>) -> Result<()> {
        if !self.group_by.is_empty() {
            let cols = self
                .group_by
                .iter()
                .map(|c| column(info, c))
                .collect::<Result<Vec<_>>>()?;
            sql.push_str(" GROUP BY ");
            sql.push_str(&cols.join(", "));
        }
        if !self.order.is_empty() {
            let keys = self
                .order
                .iter()
                .map(|(c, o)| {
                    Ok(format!(
                        "{} {}",
                        column(info, c)?,
                        if *o == Order::Asc { "ASC" } else { "DESC" }
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            sql.push_str(" ORDER BY ");
            sql.push_str(&keys.join(", "));
        }
        if self.limit.is_some() || self.offset.is_some() {
            sql.push_str(" LIMIT ?");
            params.push(Value::Integer(self.limit.unwrap_or(-1)));
            if let Some(off) = self.offset {
                if off < 0 {
                    return Err(invalid(format!("offset must be >= 0, was {off}")));
                }
                sql.push_str(" OFFSET ?");
                params.push(Value::Integer(off));
            }
        }
        Ok(())
    }

    /// `SELECT [DISTINCT] columns FROM table WHERE … GROUP BY … ORDER BY … LIMIT … OFFSET …`.
    pub(crate) fn compile_select(
        &self,
        info: &TableInfo,
        columns: &[&str],
    ) -> Result<CompiledSelect> {
        let selected = if columns.is_empty() {
            "*".to_owned()
        } else {
            columns
                .iter()
                .map(|c| column(info, c))
                .collect::<Result<Vec<_>>>()?
                .join(", ")
        };
        let CompiledWhere {
            sql: where_sql,
            mut params,
        } = self.compile_where(info)?;
        let mut sql = format!(
            "SELECT {}{selected} FROM {}{where_sql}",
            if self.distinct { "DISTINCT " } else { "" },
            info.quoted()
        );
        self.push_tail(info, &mut sql, &mut params)?;
        Ok(CompiledSelect { sql, params })
    }

    /// The row filter of an UPDATE or DELETE. With ORDER BY / LIMIT / OFFSET it becomes
    /// `WHERE rowid IN (SELECT rowid … ORDER BY … LIMIT …)`, so "delete the oldest ten" works.
    pub(crate) fn compile_mutation_filter(&self, info: &TableInfo) -> Result<CompiledWhere> {
        if self.distinct || !self.group_by.is_empty() {
            return Err(invalid(
                "distinct() and group_by() apply to queries, not to update or delete",
            ));
        }
        let filter = self.compile_where(info)?;
        if self.order.is_empty() && self.limit.is_none() && self.offset.is_none() {
            return Ok(filter);
        }
        if info.without_rowid {
            return Err(invalid(format!(
                "order_by/limit/offset in update or delete need a rowid table; {} is WITHOUT ROWID",
                info.name
            )));
        }
        let CompiledWhere {
            sql: inner_where,
            mut params,
        } = filter;
        let mut sql = format!(
            " WHERE rowid IN (SELECT rowid FROM {}{inner_where}",
            info.quoted()
        );
        self.push_tail(info, &mut sql, &mut params)?;
        sql.push(')');
        Ok(CompiledWhere { sql, params })
    }
}

fn push_condition(sql: &mut String, params: &mut Vec<Value>, col: &str, op: &Op) {
    let mut bin = |sql: &mut String, op_sql: &str, v: &Value| {
        sql.push_str(col);
        sql.push_str(op_sql);
        params.push(v.clone());
    };
    match op {
        Op::Eq(Value::Null) | Op::IsNull => {
            sql.push_str(col);
            sql.push_str(" IS NULL");
        }
        Op::Ne(Value::Null) | Op::IsNotNull => {
            sql.push_str(col);
            sql.push_str(" IS NOT NULL");
        }
        Op::Eq(v) => bin(sql, " = ?", v),
        Op::Ne(v) => bin(sql, " <> ?", v),
        Op::Gt(v) => bin(sql, " > ?", v),
        Op::Ge(v) => bin(sql, " >= ?", v),
        Op::Lt(v) => bin(sql, " < ?", v),
        Op::Le(v) => bin(sql, " <= ?", v),
        Op::Like(p) => bin(sql, " LIKE ?", &Value::Text(p.clone())),
        Op::NotLike(p) => bin(sql, " NOT LIKE ?", &Value::Text(p.clone())),
        Op::Glob(p) => bin(sql, " GLOB ?", &Value::Text(p.clone())),
        Op::NotGlob(p) => bin(sql, " NOT GLOB ?", &Value::Text(p.clone())),
        Op::Contains(t) => bin(
            sql,
            " LIKE ? ESCAPE '\\'",
            &Value::Text(format!("%{}%", escape_like(t))),
        ),
        Op::BeginsWith(t) => bin(
            sql,
            " LIKE ? ESCAPE '\\'",
            &Value::Text(format!("{}%", escape_like(t))),
        ),
        Op::EndsWith(t) => bin(
            sql,
            " LIKE ? ESCAPE '\\'",
            &Value::Text(format!("%{}", escape_like(t))),
        ),
        Op::Between(lo, hi) | Op::NotBetween(lo, hi) => {
            sql.push_str(col);
            sql.push_str(if matches!(op, Op::Between(..)) {
                " BETWEEN ? AND ?"
            } else {
                " NOT BETWEEN ? AND ?"
            });
            params.push(lo.clone());
            params.push(hi.clone());
        }
        Op::In(vs) | Op::NotIn(vs) => {
            sql.push_str(col);
            sql.push_str(if matches!(op, Op::In(_)) {
                " IN ("
            } else {
                " NOT IN ("
            });
            for (i, v) in vs.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                params.push(v.clone());
            }
            sql.push(')');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::ColumnInfo;

    fn info() -> TableInfo {
        let col = |n: &str| ColumnInfo {
            name: n.into(),
            decl_type: String::new(),
            not_null: false,
            default: None,
            pk: 0,
        };
        TableInfo {
            name: "EMP".into(),
            columns: vec![col("ID"), col("NAME"), col("AGE")],
            without_rowid: false,
            is_view: false,
        }
    }

    #[test]
    fn default_connector_is_and_and_wraps_nest() {
        let p = RdbPredicates::new("EMP")
            .equal_to("name", "a")
            .begin_wrap()
            .greater_than("AGE", 1)
            .or()
            .is_null("AGE")
            .end_wrap();
        let w = p.compile_where(&info()).unwrap();
        assert_eq!(
            w.sql,
            r#" WHERE "NAME" = ? AND ("AGE" > ? OR "AGE" IS NULL)"#
        );
        assert_eq!(w.params, vec![Value::Text("a".into()), Value::Integer(1)]);
    }

    #[test]
    fn malformed_chains_are_rejected() {
        let bad = [
            RdbPredicates::new("EMP").or().equal_to("ID", 1),
            RdbPredicates::new("EMP").equal_to("ID", 1).and(),
            RdbPredicates::new("EMP").begin_wrap().end_wrap(),
            RdbPredicates::new("EMP").begin_wrap().equal_to("ID", 1),
            RdbPredicates::new("EMP").equal_to("ID", 1).end_wrap(),
            RdbPredicates::new("EMP")
                .equal_to("ID", 1)
                .and()
                .or()
                .equal_to("ID", 2),
        ];
        for p in bad {
            assert_eq!(
                p.compile_where(&info()).unwrap_err().code(),
                14800001,
                "{p:?}"
            );
        }
    }

    #[test]
    fn select_has_tail_and_binds_limit() {
        let p = RdbPredicates::new("EMP")
            .in_("ID", [1, 2])
            .order_by_desc("AGE")
            .limit(5)
            .offset(2)
            .distinct();
        let s = p.compile_select(&info(), &["ID", "name"]).unwrap();
        assert_eq!(
            s.sql,
            r#"SELECT DISTINCT "ID", "NAME" FROM "EMP" WHERE "ID" IN (?, ?) ORDER BY "AGE" DESC LIMIT ? OFFSET ?"#
        );
        assert_eq!(s.params.len(), 4);
    }

    #[test]
    fn like_helpers_escape_wildcards() {
        let w = RdbPredicates::new("EMP")
            .contains("NAME", "50%_off")
            .compile_where(&info())
            .unwrap();
        assert_eq!(w.params, vec![Value::Text("%50\\%\\_off%".into())]);
    }

    #[test]
    fn mutation_with_limit_uses_rowid_subquery() {
        let w = RdbPredicates::new("EMP")
            .order_by_asc("AGE")
            .limit(1)
            .compile_mutation_filter(&info())
            .unwrap();
        assert_eq!(
            w.sql,
            r#" WHERE rowid IN (SELECT rowid FROM "EMP" ORDER BY "AGE" ASC LIMIT ?)"#
        );
        let err = RdbPredicates::new("EMP")
            .distinct()
            .compile_mutation_filter(&info())
            .unwrap_err();
        assert_eq!(err.code(), 14800001);
    }

    #[test]
    fn unknown_column_is_named() {
        let err = RdbPredicates::new("EMP")
            .equal_to("x\" OR 1=1 --", 1)
            .compile_where(&info())
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownColumn { ref column, .. } if column == "x\" OR 1=1 --")
        );
    }
}
