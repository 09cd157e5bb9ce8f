//! What the guard reads from a statement's text, which SQLite's authorizer does not tell: the
//! form of an `ALTER TABLE` and the tables a trigger body writes (see [`crate::store::lexer`]).

use crate::store::lexer::{Token, tokens};

/// What an `ALTER TABLE` statement does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AlterForm {
    /// `RENAME TO name`: the new name, unquoted.
    RenameTable(String),
    /// `RENAME [COLUMN] a TO b`.
    RenameColumn,
    /// `ADD [COLUMN] …`.
    AddColumn,
    /// `DROP [COLUMN] …`.
    DropColumn,
    /// Anything this lexer does not recognise (treated as the most dangerous form).
    Unknown,
}

/// Reads `ALTER TABLE [schema.]name <form>` (after an optional `EXPLAIN [QUERY PLAN]`).
pub(crate) fn alter_form(sql: &str) -> AlterForm {
    let mut t = tokens(sql).peekable();
    while t
        .peek()
        .is_some_and(|w| w.is("EXPLAIN") || w.is("QUERY") || w.is("PLAN"))
    {
        t.next();
    }
    if !(t.next().is_some_and(|w| w.is("ALTER")) && t.next().is_some_and(|w| w.is("TABLE"))) {
        return AlterForm::Unknown;
    }
    if t.next().and_then(|n| n.name()).is_none() {
        return AlterForm::Unknown;
    }
    let mut verb = t.next();
    if verb == Some(Token::Other('.')) {
        if t.next().and_then(|n| n.name()).is_none() {
            return AlterForm::Unknown;
        }
        verb = t.next();
    }
    match verb {
        Some(v) if v.is("RENAME") => match t.next() {
            Some(to) if to.is("TO") => t
                .next()
                .and_then(|n| n.name())
                .map_or(AlterForm::Unknown, AlterForm::RenameTable),
            Some(_) => AlterForm::RenameColumn,
            None => AlterForm::Unknown,
        },
        Some(v) if v.is("ADD") => AlterForm::AddColumn,
        Some(v) if v.is("DROP") => AlterForm::DropColumn,
        _ => AlterForm::Unknown,
    }
}

/// The tables the statements inside `sql` (a `CREATE TRIGGER`) name as their targets:
/// `INSERT|REPLACE INTO x`, `UPDATE [OR …] x`, `DELETE FROM x`, schema prefixes dropped.
/// A look at the text only: the authorizer judges the body again whenever it fires.
pub(crate) fn write_targets(sql: &str) -> Vec<String> {
    let toks: Vec<Token<'_>> = tokens(sql).collect();
    let mut out = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        let mut at = if tok.is("INTO") {
            i + 1
        } else if tok.is("UPDATE") {
            if toks.get(i + 1).is_some_and(|t| t.is("OR")) {
                i + 3
            } else {
                i + 1
            }
        } else if tok.is("DELETE") && toks.get(i + 1).is_some_and(|t| t.is("FROM")) {
            i + 2
        } else {
            continue;
        };
        if toks.get(at + 1) == Some(&Token::Other('.')) {
            at += 2;
        }
        if let Some(name) = toks.get(at).and_then(Token::name) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alter_forms_in_every_spelling() {
        use AlterForm::*;
        let cases = [
            ("ALTER TABLE t RENAME TO u", RenameTable("u".into())),
            (
                "alter /* x */ table main.\"t\" -- c\n rename to [peerlite_x]",
                RenameTable("peerlite_x".into()),
            ),
            ("ALTER TABLE `t` RENAME TO 'a b'", RenameTable("a b".into())),
            ("ALTER TABLE t RENAME \"TO\" TO x", RenameColumn),
            ("ALTER TABLE t RENAME COLUMN a TO b", RenameColumn),
            ("ALTER TABLE t RENAME a TO b", RenameColumn),
            ("ALTER TABLE t ADD COLUMN c TEXT", AddColumn),
            ("ALTER TABLE t ADD c", AddColumn),
            ("ALTER TABLE [t].x DROP COLUMN c", DropColumn),
            ("EXPLAIN ALTER TABLE t DROP c", DropColumn),
            ("ALTER TABLE t", Unknown),
            ("DROP TABLE t", Unknown),
        ];
        for (sql, form) in cases {
            assert_eq!(alter_form(sql), form, "{sql}");
        }
    }

    #[test]
    fn write_targets_of_a_trigger_body() {
        let sql = "CREATE TRIGGER x AFTER UPDATE OF a ON t BEGIN
            INSERT INTO main.\"peerlite_meta\" VALUES (1, 2);
            UPDATE OR REPLACE [peerlite_clock_1] SET seq = 0;
            DELETE FROM sqlite_sequence; REPLACE INTO u VALUES (1);
            SELECT 'INSERT INTO peerlite_kv'; END";
        assert_eq!(
            write_targets(sql),
            [
                "OF",
                "peerlite_meta",
                "peerlite_clock_1",
                "sqlite_sequence",
                "u"
            ]
        );
    }
}
