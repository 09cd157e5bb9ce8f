//! Running a query on one connection and collecting a `ResultSet`: shared by store reads
//! (reader pool) and reads inside a transaction (the writer, which sees its own writes).

use std::path::Path;

use rusqlite::{Connection, Statement};

use super::cursor::Liveness;
use super::predicates::RdbPredicates;
use super::result_set::ResultSet;
use super::schema::SchemaCache;
use crate::StoreKind;
use crate::error::{Error, Result};
use crate::value::Value;

/// Binds `params` to `stmt`, refusing a count that does not match.
pub(crate) fn bind<'v, I>(stmt: &mut Statement<'_>, params: I, path: &Path) -> Result<()>
where
    I: IntoIterator<Item = &'v Value>,
    I::IntoIter: ExactSizeIterator,
{
    let params = params.into_iter();
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(Error::invalid(
            StoreKind::Relational,
            format!(
                "statement takes {expected} parameter(s), {} given",
                params.len()
            ),
        ));
    }
    for (i, v) in params.enumerate() {
        check_storable(v)?;
        stmt.raw_bind_parameter(i + 1, v)
            .map_err(|e| Error::from_sqlite(e, path))?;
    }
    Ok(())
}

/// SQLite stores a NaN as NULL; refuse it rather than change the caller's data silently.
pub(crate) fn check_storable(value: &Value) -> Result<()> {
    match value {
        Value::Real(f) if f.is_nan() => Err(Error::invalid(
            StoreKind::Relational,
            "NaN cannot be stored: SQLite would store it as NULL",
        )),
        _ => Ok(()),
    }
}

/// Steps a bound statement to the end, collecting every row.
pub(crate) fn collect(stmt: &mut Statement<'_>, live: Liveness, path: &Path) -> Result<ResultSet> {
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut values = Vec::new();
    let mut count = 0usize;
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(|e| Error::from_sqlite(e, path))? {
        for c in 0..width {
            values.push(Value::from_ref(
                row.get_ref(c).map_err(|e| Error::from_sqlite(e, path))?,
            ));
        }
        count += 1;
    }
    Ok(ResultSet::new(columns, values, count, live))
}

/// Runs a read-only SQL query.
pub(crate) fn query_sql(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    live: Liveness,
    path: &Path,
) -> Result<ResultSet> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| refused_on_reader(Error::from_sqlite(e, path), sql))?;
    if !stmt.readonly() {
        return Err(Error::NotAQuery {
            sql: sql.to_owned(),
        });
    }
    bind(&mut stmt, params, path)?;
    collect(&mut stmt, live, path)
}

/// Runs predicates as a SELECT of `columns` (all when empty).
pub(crate) fn query(
    conn: &Connection,
    schema: &SchemaCache,
    predicates: &RdbPredicates,
    columns: &[&str],
    live: Liveness,
    path: &Path,
) -> Result<ResultSet> {
    let names = predicates
        .referenced_columns()
        .chain(columns.iter().copied());
    let (info, _) = schema.resolve_columns(conn, predicates.table(), names, path)?;
    let compiled = predicates.compile_select(&info, columns)?;
    let mut stmt = conn
        .prepare_cached(&compiled.sql)
        .map_err(|e| Error::from_sqlite(e, path))?;
    bind(&mut stmt, &compiled.params, path)?;
    collect(&mut stmt, live, path)
}

/// Readers refuse transaction control (their authorizer denies it, so a pooled connection can
/// never be left inside a transaction); say so instead of "not authorized".
pub(crate) fn refused_on_reader(err: Error, sql: &str) -> Error {
    match err {
        Error::Sqlite { sqlite, .. } if sqlite.primary == 23 => Error::NotAQuery {
            sql: sql.to_owned(),
        },
        other => other,
    }
}
