//! Finds the table name in a `CREATE TABLE` statement, so `rebuild_table` can create the new
//! table under a temporary name without parsing the rest of the statement.

/// Where the name sits in the statement, and the name unquoted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NameSpan {
    pub start: usize,
    pub end: usize,
    pub name: String,
}

fn skip_space(sql: &str, mut i: usize) -> usize {
    let b = sql.as_bytes();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
        } else if sql[i..].starts_with("/*") {
            i = sql[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
        } else {
            return i;
        }
    }
}

/// Reads one token at `i`: a keyword/bare identifier or a quoted identifier. Returns the token
/// unquoted and the index after it.
fn token(sql: &str, i: usize) -> Option<(String, usize)> {
    let rest = &sql[i..];
    let first = rest.chars().next()?;
    let close = match first {
        '"' => Some('"'),
        '`' => Some('`'),
        '[' => Some(']'),
        _ => None,
    };
    if let Some(close) = close {
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1).peekable();
        while let Some((j, c)) = chars.next() {
            if c == close {
                if close != ']' && chars.peek().is_some_and(|(_, n)| *n == close) {
                    out.push(c);
                    chars.next();
                    continue;
                }
                return Some((out, i + j + c.len_utf8()));
            }
            out.push(c);
        }
        return None;
    }
    let len: usize = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$' || !c.is_ascii())
        .map(char::len_utf8)
        .sum();
    (len > 0).then(|| (rest[..len].to_owned(), i + len))
}

/// Locates the table name of `CREATE TABLE [IF NOT EXISTS] [main.]name …`; `None` when the
/// statement is not a plain CREATE TABLE (temporary tables and other schemas are refused).
pub(crate) fn create_table_name(sql: &str) -> Option<NameSpan> {
    let mut i = skip_space(sql, 0);
    let expect = |word: &str, i: &mut usize| -> bool {
        match token(sql, *i) {
            Some((t, next)) if t.eq_ignore_ascii_case(word) => {
                *i = skip_space(sql, next);
                true
            }
            _ => false,
        }
    };
    if !expect("CREATE", &mut i) || !expect("TABLE", &mut i) {
        return None;
    }
    let save = i;
    if !(expect("IF", &mut i) && expect("NOT", &mut i) && expect("EXISTS", &mut i)) {
        i = save;
    }
    let (mut name, mut end) = token(sql, i)?;
    let mut start = i;
    let after = skip_space(sql, end);
    if sql[after..].starts_with('.') {
        if !name.eq_ignore_ascii_case("main") {
            return None;
        }
        start = skip_space(sql, after + 1);
        (name, end) = token(sql, start)?;
    }
    Some(NameSpan { start, end, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_quoted_and_schema_qualified_names() {
        let s = "CREATE TABLE book(id)";
        assert_eq!(
            create_table_name(s),
            Some(NameSpan {
                start: 13,
                end: 17,
                name: "book".into()
            })
        );
        let s = " /* c */ create table if not exists \"my \"\"book\"\" \" (id)";
        let span = create_table_name(s).unwrap();
        assert_eq!(span.name, "my \"book\" ");
        assert_eq!(&s[span.end..], " (id)");
        let s = "CREATE TABLE main.[t x](a)";
        let span = create_table_name(s).unwrap();
        assert_eq!(span.name, "t x");
        assert_eq!(&s[span.start..span.end], "[t x]");
    }

    #[test]
    fn refuses_other_statements() {
        assert_eq!(create_table_name("CREATE TEMP TABLE t(a)"), None);
        assert_eq!(create_table_name("CREATE TABLE aux.t(a)"), None);
        assert_eq!(create_table_name("CREATE INDEX i ON t(a)"), None);
        assert_eq!(create_table_name("DROP TABLE t"), None);
    }
}
