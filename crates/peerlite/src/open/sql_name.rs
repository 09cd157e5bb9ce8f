//! Finds the table name in a `CREATE TABLE` statement, so `rebuild_table` can create the new
//! table under a temporary name without parsing the rest of the statement.

use crate::store::lexer::{Token, ascii_spaced_tokens};

/// Where the name sits in the statement, and the name unquoted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NameSpan {
    pub start: usize,
    pub end: usize,
    pub name: String,
}

/// The token as this reader takes a name or keyword: a bare word or an identifier closed in
/// `"…"`, `` `…` `` or `[…]`. A string literal, an unterminated quote or punctuation is none.
fn name_of(token: &Token<'_>) -> Option<String> {
    match token {
        Token::Quoted { quote: '\'', .. } | Token::Quoted { closed: false, .. } => None,
        other => other.name(),
    }
}

/// Locates the table name of `CREATE TABLE [IF NOT EXISTS] [main.]name …`; `None` when the
/// statement is not a plain CREATE TABLE (temporary tables and other schemas are refused).
pub(crate) fn create_table_name(sql: &str) -> Option<NameSpan> {
    // CREATE TABLE IF NOT EXISTS main . name: the most tokens read.
    let toks: Vec<_> = ascii_spaced_tokens(sql).spanned().take(8).collect();
    let name_at = |i: usize| toks.get(i).and_then(|(t, _)| name_of(t));
    let word_at = |i: usize, word: &str| name_at(i).is_some_and(|n| n.eq_ignore_ascii_case(word));
    if !(word_at(0, "CREATE") && word_at(1, "TABLE")) {
        return None;
    }
    let mut at = if word_at(2, "IF") && word_at(3, "NOT") && word_at(4, "EXISTS") {
        5
    } else {
        2
    };
    let mut name = name_at(at)?;
    if toks
        .get(at + 1)
        .is_some_and(|(t, _)| *t == Token::Other('.'))
    {
        if !name.eq_ignore_ascii_case("main") {
            return None;
        }
        at += 2;
        name = name_at(at)?;
    }
    let (_, span) = toks.get(at)?;
    Some(NameSpan {
        start: span.start,
        end: span.end,
        name,
    })
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
