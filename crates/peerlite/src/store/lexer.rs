//! A small SQL tokenizer: just enough for the few places that read a statement's shape from its
//! text — the guard (the form of an `ALTER TABLE`, the tables a trigger body writes, which
//! SQLite's authorizer does not tell) and `rebuild_table` (the name in a `CREATE TABLE`). It
//! skips white space and comments, reads quoted identifiers in every spelling SQLite accepts
//! (`"…"`, `[…]`, `` `…` ``, and `'…'` where a name is expected), and never looks at a byte
//! twice, so its work is bounded by the statement's length.

use std::ops::Range;

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'s> {
    /// A keyword or a bare identifier, as written.
    Word(&'s str),
    /// A quoted identifier or string literal, unquoted (SQLite takes either as a name in the
    /// places the guard reads names from).
    Quoted {
        text: String,
        /// The opening quote: `"`, `` ` ``, `'` or `[`.
        quote: char,
        /// False when the statement ended before the closing quote (the token is then the
        /// rest of the text; SQLite will refuse the statement anyway).
        closed: bool,
    },
    /// Any other character (punctuation, operators, digits of a number).
    Other(char),
}

impl Token<'_> {
    /// True for the bare keyword `word` (case-insensitive); a quoted `"TO"` is a name.
    pub fn is(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word))
    }

    /// The token read as a name (a bare word or a quoted identifier).
    pub fn name(&self) -> Option<String> {
        match self {
            Token::Word(w) => Some((*w).to_owned()),
            Token::Quoted { text, .. } => Some(text.clone()),
            Token::Other(_) => None,
        }
    }
}

/// The tokens of `sql`, in order, separated by any Unicode white space.
pub(crate) fn tokens(sql: &str) -> Lexer<'_> {
    Lexer {
        sql,
        at: 0,
        space: char::is_whitespace,
    }
}

/// The tokens of `sql`, separated by ASCII white space only (space, tab, LF, FF, CR): any
/// other character starts or continues a token.
pub(crate) fn ascii_spaced_tokens(sql: &str) -> Lexer<'_> {
    Lexer {
        sql,
        at: 0,
        space: |c| c.is_ascii_whitespace(),
    }
}

/// Iterator over the tokens of a statement (see [`tokens`]).
pub(crate) struct Lexer<'s> {
    sql: &'s str,
    at: usize,
    space: fn(char) -> bool,
}

impl<'s> Lexer<'s> {
    /// The tokens with where each stands in the statement (from its first byte to the byte
    /// after it, closing quote included).
    pub fn spanned(mut self) -> impl Iterator<Item = (Token<'s>, Range<usize>)> {
        std::iter::from_fn(move || {
            self.skip_space_and_comments();
            let start = self.at;
            let token = self.read()?;
            Some((token, start..self.at))
        })
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            let rest = &self.sql[self.at..];
            let trimmed = rest.trim_start_matches(self.space);
            self.at += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                self.at += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                self.at += body.find("*/").map_or(trimmed.len(), |n| n + 4);
            } else {
                return;
            }
        }
    }

    /// Reads the token at the current position (white space and comments already skipped).
    fn read(&mut self) -> Option<Token<'s>> {
        let rest = &self.sql[self.at..];
        let first = rest.chars().next()?;
        let close = match first {
            '"' => Some('"'),
            '`' => Some('`'),
            '\'' => Some('\''),
            '[' => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            let mut text = String::new();
            let mut chars = rest.char_indices().skip(1).peekable();
            while let Some((j, c)) = chars.next() {
                if c == close {
                    // Doubling the quote escapes it, except in `[…]`.
                    if close != ']' && chars.peek().is_some_and(|(_, n)| *n == close) {
                        text.push(c);
                        chars.next();
                        continue;
                    }
                    self.at += j + c.len_utf8();
                    return Some(Token::Quoted {
                        text,
                        quote: first,
                        closed: true,
                    });
                }
                text.push(c);
            }
            self.at = self.sql.len();
            return Some(Token::Quoted {
                text,
                quote: first,
                closed: false,
            });
        }
        let len: usize = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$' || !c.is_ascii())
            .map(char::len_utf8)
            .sum();
        if len == 0 {
            self.at += first.len_utf8();
            return Some(Token::Other(first));
        }
        self.at += len;
        Some(Token::Word(&rest[..len]))
    }
}

impl<'s> Iterator for Lexer<'s> {
    type Item = Token<'s>;

    fn next(&mut self) -> Option<Token<'s>> {
        self.skip_space_and_comments();
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unterminated_quotes_and_comments_end_the_text() {
        assert_eq!(tokens("a /* never closed").count(), 1);
        assert_eq!(tokens("a \"never closed").count(), 2);
        assert_eq!(tokens("-- only a comment").count(), 0);
        assert_eq!(
            tokens("a \"b\"\"").last(),
            Some(Token::Quoted {
                text: "b\"".into(),
                quote: '"',
                closed: false
            })
        );
    }

    #[test]
    fn quotes_and_spans() {
        let sql = " [a]] `b``c` 'd''e' x.\u{a0}y";
        let toks: Vec<_> = tokens(sql).spanned().collect();
        let names: Vec<_> = toks.iter().map(|(t, _)| t.name()).collect();
        let texts: Vec<_> = toks.iter().map(|(_, r)| &sql[r.clone()]).collect();
        assert_eq!(
            names,
            [
                Some("a".into()),
                None,
                Some("b`c".into()),
                Some("d'e".into()),
                Some("x".into()),
                None,
                Some("y".into())
            ]
        );
        assert_eq!(texts, ["[a]", "]", "`b``c`", "'d''e'", "x", ".", "y"]);
        // Separated by ASCII white space only, the no-break space belongs to the word.
        let words: Vec<_> = ascii_spaced_tokens("x.\u{a0}y\u{b}")
            .map(|t| t.name())
            .collect();
        assert_eq!(
            words,
            [Some("x".into()), None, Some("\u{a0}y".into()), None]
        );
    }
}
