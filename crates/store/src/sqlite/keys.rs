//! Key ranges as SQL conditions. "Every key under a prefix" becomes a half-open range
//! `[prefix, end)`, which SQLite answers from the `(key, revision)` index, where `LIKE` or
//! `substr` would scan every row.

use rusqlite::Statement;

use crate::Result;

/// The keys from a lower bound (inclusive or not) up to an upper bound (exclusive, if any).
#[derive(Clone, Debug)]
pub(super) struct KeyRange {
    lower: String,
    lower_inclusive: bool,
    upper: Option<String>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &str) -> Self {
        KeyRange { lower: prefix.to_owned(), lower_inclusive: true, upper: prefix_end(prefix) }
    }

    /// Narrows the range to the keys strictly after `key`.
    pub fn after(self, key: &str) -> Self {
        if key < self.lower.as_str() {
            return self;
        }
        KeyRange { lower: key.to_owned(), lower_inclusive: false, ..self }
    }

    /// The condition on `column`, with the named parameters `:lower` and `:upper` that `bind`
    /// sets.
    pub fn condition(&self, column: &str) -> String {
        let lower = if self.lower_inclusive { ">=" } else { ">" };
        match self.upper {
            Some(_) => format!("{column} {lower} :lower AND {column} < :upper"),
            None => format!("{column} {lower} :lower"),
        }
    }

    /// Binds the parameters of `condition` in a statement that contains it.
    pub fn bind(&self, statement: &mut Statement<'_>) -> Result<()> {
        bind_named(statement, ":lower", &self.lower)?;
        if let Some(upper) = &self.upper {
            bind_named(statement, ":upper", upper)?;
        }
        Ok(())
    }
}

/// Binds a named parameter of a statement.
pub(super) fn bind_named(statement: &mut Statement<'_>, name: &str, value: impl rusqlite::ToSql) -> Result<()> {
    let index = statement
        .parameter_index(name)?
        .ok_or_else(|| crate::Error::Backend(format!("SQL statement lacks the parameter {name}")))?;
    statement.raw_bind_parameter(index, value)?;
    Ok(())
}

/// The smallest string greater than every string that starts with `prefix`, or `None` if there
/// is none (the empty prefix). SQLite compares text bytewise, and UTF-8 orders bytes as it
/// orders code points, so incrementing the last character that can be incremented is enough.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            other => char::from_u32(other as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_string_after_every_key_under_the_prefix() {
        assert_eq!(prefix_end("/a/b/").as_deref(), Some("/a/b0"));
        assert_eq!(prefix_end("").as_deref(), None);
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}").as_deref(), None);
    }

    #[test]
    fn after_only_narrows() {
        let range = KeyRange::prefix("/a/").after("/0");
        assert_eq!(range.condition("key"), "key >= :lower AND key < :upper");
        let range = KeyRange::prefix("/a/").after("/a/x");
        assert_eq!(range.condition("key"), "key > :lower AND key < :upper");
        assert_eq!(range.lower, "/a/x");
    }
}
