//! Aligned text tables, `a | b` with a `--+--` rule under the header, laid out by
//! comfy-table, which measures cells by display width (a CJK character or an emoji takes two
//! columns). [`Aligner`] lays out rows in bounded chunks, so a table of any length streams.

use comfy_table::{ColumnConstraint, ContentLineStyle, LineStyle, Table, TableStyle, Width};

/// `header` and `rows` as one aligned table (no trailing newline).
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut aligner = Aligner::new(header.to_vec());
    aligner.chunk(rows).join("\n")
}

/// Lays out a table chunk by chunk: columns keep the widths of the chunks before (so rows line
/// up under the header printed first); a chunk that needs wider columns starts with the
/// header again, laid out anew.
pub struct Aligner {
    header: Vec<String>,
    /// Content widths printed so far; empty before the first chunk.
    widths: Vec<u16>,
}

impl Aligner {
    pub fn new(header: Vec<String>) -> Self {
        Aligner {
            header,
            widths: Vec::new(),
        }
    }

    /// The lines of the next chunk of rows (the header first when it must be shown).
    pub fn chunk(&mut self, rows: &[Vec<String>]) -> Vec<String> {
        let columns = self.header.len();
        let mut t = Table::new();
        t.load_style(
            TableStyle::new()
                .header_lines(ContentLineStyle::none().junction('|'))
                .header_separator(LineStyle::none().fill('-').junction('+'))
                .content_lines(ContentLineStyle::none().junction('|')),
        );
        t.set_header(self.header.clone());
        t.add_rows(rows.iter().cloned());
        let needed = t.column_max_content_widths();
        let fits =
            self.widths.len() == columns && needed.iter().zip(&self.widths).all(|(n, w)| n <= w);
        if fits {
            for (i, column) in t.column_iter_mut().enumerate() {
                let padding = if columns == 1 {
                    0
                } else if i == 0 || i + 1 == columns {
                    1
                } else {
                    2
                };
                column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(
                    self.widths[i].saturating_add(padding),
                )));
            }
        } else {
            self.widths = needed;
        }
        for (i, column) in t.column_iter_mut().enumerate() {
            let left = if i == 0 { 0 } else { 1 };
            let right = if i + 1 == columns { 0 } else { 1 };
            column.set_padding((left, right));
        }
        let skip = if fits { 2 } else { 0 };
        t.lines()
            .skip(skip)
            .map(|line| line.trim_end().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &strings(&["id", "name"]),
            &[strings(&["1", "Lisa"]), strings(&["10", "Bo"])],
        );
        assert_eq!(t, "id | name\n---+-----\n1  | Lisa\n10 | Bo");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let t = table(
            &strings(&["name", "n"]),
            &[strings(&["日本", "1"]), strings(&["ab", "2"])],
        );
        assert_eq!(t, "name | n\n-----+--\n日本 | 1\nab   | 2");
    }

    #[test]
    fn later_chunks_keep_the_widths_or_repeat_the_header() {
        let mut a = Aligner::new(strings(&["id", "name"]));
        assert_eq!(
            a.chunk(&[strings(&["1", "Lisa"])]),
            strings(&["id | name", "---+-----", "1  | Lisa"])
        );
        assert_eq!(a.chunk(&[strings(&["2", "Bo"])]), strings(&["2  | Bo"]));
        assert_eq!(
            a.chunk(&[strings(&["3", "Alexandra"])]),
            strings(&["id | name", "---+----------", "3  | Alexandra"])
        );
    }
}
