//! Query results streamed to the terminal or a pipe as SQLite produces them: memory stays
//! bounded whatever the result's size, and the first row shows before the query ends.
//!
//! `--json` prints one JSON object per query on one line, rows as arrays in column order
//! under a header that keeps every column name, duplicates included:
//! `{"columns":["a","a"],"rows":[[1,2],[3,4]]}` (values as [`super::value_json`]).
//! Text prints aligned tables, laid out in chunks of bounded size ([`super::table::Aligner`]).

use std::io::Write;

use peerlite::{ScriptSink, Value};

use super::table::Aligner;
use super::{value_json, value_text};

/// Rows per text chunk; fewer when their cells pass [`CHUNK_BYTES`].
const CHUNK_ROWS: usize = 1000;
/// Bytes of cell text per text chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// `--json` rows.
pub struct JsonRows<W: Write> {
    out: W,
    rows: u64,
}

impl<W: Write> JsonRows<W> {
    pub fn new(out: W) -> Self {
        JsonRows { out, rows: 0 }
    }
}

impl<W: Write> ScriptSink for JsonRows<W> {
    fn columns(&mut self, names: &[String]) -> std::io::Result<()> {
        self.rows = 0;
        write!(self.out, "{{\"columns\":")?;
        serde_json::to_writer(&mut self.out, names)?;
        write!(self.out, ",\"rows\":[")
    }

    fn row(&mut self, values: &[Value]) -> std::io::Result<()> {
        if self.rows > 0 {
            self.out.write_all(b",")?;
        }
        let row: Vec<serde_json::Value> = values.iter().map(value_json).collect();
        serde_json::to_writer(&mut self.out, &row)?;
        self.rows += 1;
        if self.rows == 1 {
            // The first row shows at once; the buffer sends the rest as it fills.
            self.out.flush()?;
        }
        Ok(())
    }

    fn end(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"]}\n")?;
        self.out.flush()
    }
}

/// Text tables, one per query, a blank line between them.
pub struct TextRows<W: Write> {
    out: W,
    aligner: Option<Aligner>,
    chunk: Vec<Vec<String>>,
    chunk_bytes: usize,
    /// Lines printed for the current query.
    printed: bool,
    tables: usize,
}

impl<W: Write> TextRows<W> {
    pub fn new(out: W) -> Self {
        TextRows {
            out,
            aligner: None,
            chunk: Vec::new(),
            chunk_bytes: 0,
            printed: false,
            tables: 0,
        }
    }

    fn flush_chunk(&mut self) -> std::io::Result<()> {
        let Some(aligner) = self.aligner.as_mut() else {
            return Ok(());
        };
        for line in aligner.chunk(&self.chunk) {
            writeln!(self.out, "{line}")?;
        }
        self.chunk.clear();
        self.chunk_bytes = 0;
        self.printed = true;
        self.out.flush()
    }
}

impl<W: Write> ScriptSink for TextRows<W> {
    fn columns(&mut self, names: &[String]) -> std::io::Result<()> {
        // A statement without columns (a PRAGMA that sets something) has nothing to show.
        if names.is_empty() {
            self.aligner = None;
            return Ok(());
        }
        if self.tables > 0 {
            writeln!(self.out)?;
        }
        self.tables += 1;
        self.aligner = Some(Aligner::new(names.to_vec()));
        self.printed = false;
        Ok(())
    }

    fn row(&mut self, values: &[Value]) -> std::io::Result<()> {
        if self.aligner.is_none() {
            return Ok(());
        }
        let cells: Vec<String> = values.iter().map(value_text).collect();
        self.chunk_bytes += cells.iter().map(String::len).sum::<usize>();
        self.chunk.push(cells);
        if self.chunk.len() >= CHUNK_ROWS || self.chunk_bytes >= CHUNK_BYTES {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn end(&mut self) -> std::io::Result<()> {
        if !self.chunk.is_empty() || !self.printed {
            self.flush_chunk()?;
        }
        self.aligner = None;
        Ok(())
    }
}
