//! Remote query, the answering side: a peer asks for rows of one of this device's distributed
//! tables ([`Query`]) and gets them, or a code saying why not ([`QueryReply`]). Everything is
//! decided here, on the device that holds the data, never by the asker: the table must be
//! distributed (17040001), the asker's recorded level must admit the data's label (17040006),
//! only synced columns may be read or filtered on, names are checked against the schema and
//! bound as parameters (never spliced), and the result stops at [`MAX_QUERY_BYTES`] (17040010).
//!
//! ```
//! use peerlite::changes::{DistributedConfig, DistributedType};
//! use peerlite::sync::{answer_query, DeviceLevel, Peer, Query};
//! use peerlite::{bucket, RdbPredicates, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let phone = RdbStore::open(StoreConfig::new(dir.path().join("notes.db")).device_id("phone"))?;
//! phone.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)", &[])?;
//! phone.set_distributed_tables(&["note"], DistributedType::Device, &DistributedConfig::default())?;
//! phone.insert("note", &bucket! { "text" => "buy milk" })?;
//!
//! let query = Query::new(1, "notes", &RdbPredicates::new("note").equal_to("text", "buy milk"), &["text"]);
//! let reply = answer_query(&phone, &Peer::new("laptop", DeviceLevel::Sl1), &query);
//! let rows = reply.into_rows("phone")?;
//! assert_eq!(rows.columns, vec!["text".to_string()]);
//! assert_eq!(rows.rows, vec![vec!["buy milk".into()]]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::message::{Query, QueryReply};
use super::peer::Peer;
use super::surface::SyncStore;
use super::wire::WireFilter;
use crate::error::{Error, Result, StoreKind};
use crate::store::{RdbPredicates, RdbStore, SecurityLevel};
use crate::value::Value;

/// The largest result a remote query returns (ArkData's limit): rows past it are an error,
/// not a silent cut.
pub const MAX_QUERY_BYTES: usize = 4 * 1024 * 1024;

/// Rows of a query: column names and values in their order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRows {
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, each in `columns` order.
    pub rows: Vec<Vec<Value>>,
}

impl Query {
    /// The request for `columns` (every synced column when empty) of the rows `predicates`
    /// select in the store named `store` (only their table and conditions travel: order,
    /// paging and devices do not).
    pub fn new(id: u64, store: &str, predicates: &RdbPredicates, columns: &[&str]) -> Query {
        Query {
            session: id,
            store: store.to_owned(),
            filter: WireFilter::from_predicates(predicates).unwrap_or_else(|| WireFilter {
                table: predicates.table().to_owned(),
                clauses: Vec::new(),
            }),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        }
    }
}

impl QueryReply {
    /// The label of the data a successful reply carries (`None`: a failed reply, or one from a
    /// build that does not name it).
    pub fn label(&self) -> Option<SecurityLevel> {
        if self.code != 0 {
            return None;
        }
        let level = self.message.strip_prefix(LABEL)?.strip_prefix('S')?;
        SecurityLevel::from_u8(level.parse().ok()?)
    }

    /// [`QueryReply::into_rows`] for a device whose own level admits data labelled at most
    /// `highest` (1..=4): rows labelled above it are refused here, whatever level the
    /// answering device recorded for this one — a device never holds or shows data its own
    /// level does not admit (as a sync would refuse it).
    ///
    /// # Errors
    /// As [`QueryReply::into_rows`]; [`Error::QueryRefused`] (17040006) for data above
    /// `highest`.
    pub fn into_rows_for(self, device: &str, own: &str, highest: u8) -> Result<QueryRows> {
        if let Some(label) = self.label().filter(|l| l.as_u8() > highest) {
            return Err(Error::QueryRefused {
                code: super::session::SECURITY_REFUSED,
                reason: format!(
                    "the rows from {device} are labelled {label}, above what this device's own level ({own}) admits"
                ),
            });
        }
        self.into_rows(device)
    }

    /// The rows, or the error the peer answered with (its code kept).
    ///
    /// # Errors
    /// [`Error::Remote`] with the peer's code and message: 17040001 not distributed there,
    /// 17040006 this device's recorded level is too low, 17040010 result over the cap,
    /// 14800001 an unknown or unsynced column, …
    pub fn into_rows(self, device: &str) -> Result<QueryRows> {
        if self.code == 0 {
            return Ok(QueryRows {
                columns: self.columns,
                rows: self.rows,
            });
        }
        Err(Error::Remote {
            device: device.to_owned(),
            code: self.code,
            detail: self.message,
        })
    }
}

/// The prefix of a successful reply's `message`: the label of the data it carries.
const LABEL: &str = "label:";

/// Answers `peer`'s query on `store`: the rows, or a reply carrying the code of why not. A
/// successful reply names the data's label in its `message` (`label:S3`), so the asking
/// device can refuse data above what its own level admits ([`QueryReply::label`]).
pub fn answer_query(store: &dyn SyncStore, peer: &Peer, query: &Query) -> QueryReply {
    let (code, message, rows) = match run(store, peer, query) {
        Ok(rows) => (0, format!("{LABEL}{}", store.data_label()), rows),
        Err(e) => (
            e.code(),
            super::peer_text::peer_text(&e),
            QueryRows::default(),
        ),
    };
    QueryReply {
        session: query.session,
        code,
        message,
        columns: rows.columns,
        rows: rows.rows,
    }
}

fn run(store: &dyn SyncStore, peer: &Peer, query: &Query) -> Result<QueryRows> {
    let table = &query.filter.table;
    let tables = store.tables()?;
    // Table names are case-insensitive, as SQLite's (and as the columns already were).
    let Some(summary) = tables.iter().find(|t| t.name.eq_ignore_ascii_case(table)) else {
        return Err(Error::NotDistributed {
            table: table.clone(),
        });
    };
    let label = store.data_label();
    if let Some(reason) =
        super::session::level_refusal(&store.device_id(), label, &peer.device, peer.level)
    {
        return Err(Error::QueryRefused {
            code: super::session::SECURITY_REFUSED,
            reason,
        });
    }
    // Only what syncs may be read or filtered on: a column kept local stays local.
    let named = query.columns.iter().chain(query.filter.columns());
    for column in named {
        if !summary
            .columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(column))
        {
            return Err(Error::UnknownColumn {
                table: table.clone(),
                column: column.clone(),
                kind: StoreKind::Relational,
            });
        }
    }
    let columns = if query.columns.is_empty() {
        summary.columns.clone()
    } else {
        query.columns.clone()
    };
    let mut filter = query.filter.clone();
    filter.table.clone_from(&summary.name);
    store.query_rows(&filter, &columns, MAX_QUERY_BYTES)
}

/// [`SyncStore::query_rows`] of a relational store: one read, streamed, stopped at the cap.
pub(crate) fn query_rows(
    store: &RdbStore,
    filter: &WireFilter,
    columns: &[String],
    max_bytes: usize,
) -> Result<QueryRows> {
    let path = store.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    let predicates = filter.to_predicates();
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    store.inner.read(|conn| {
        let names = predicates
            .referenced_columns()
            .chain(wanted.iter().copied());
        let (info, _) =
            store
                .inner
                .schema
                .resolve_columns(conn, predicates.table(), names, path)?;
        let compiled = predicates.compile_select(&info, &wanted)?;
        let mut stmt = conn.prepare_cached(&compiled.sql).map_err(sql_err)?;
        crate::store::read::bind(&mut stmt, &compiled.params, path)?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let width = names.len();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut rows = stmt.raw_query();
        while let Some(r) = rows.next().map_err(sql_err)? {
            let row = (0..width)
                .map(|c| r.get_ref(c).map(Value::from_ref))
                .collect::<rusqlite::Result<Vec<Value>>>()
                .map_err(sql_err)?;
            bytes += row.iter().map(super::extract::value_bytes).sum::<usize>();
            if bytes > max_bytes {
                return Err(Error::ResultTooLarge {
                    bytes: bytes as u64,
                    max: max_bytes as u64,
                });
            }
            out.push(row);
        }
        Ok(QueryRows {
            columns: names,
            rows: out,
        })
    })
}
