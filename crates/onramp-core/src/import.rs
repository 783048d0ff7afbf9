//! User import (issue 13): rows from the system onramp replaces, as a JSON array or JSON Lines,
//! read a batch at a time so any number of users fits in bounded memory. Each row is created,
//! skipped as a duplicate (its address is a user already: re-running an import is safe), or
//! refused with a reason. Passwords come as the old system's hashes (`foreign_hash`); users log
//! in with their old password and get onramp's Argon2id at that first login.

use crate::email::EmailAddress;
use crate::error::FieldError;
use crate::foreign_hash::FirebaseScrypt;
use crate::language::Language;
use crate::model::*;
use crate::phone::Phone;
use crate::username::Username;
use serde::Deserialize;

/// Rows handed to the store at once.
pub const BATCH: usize = 500;
/// The most one row may take, in bytes.
pub const MAX_ROW: usize = 64 * 1024;

/// One user as an import file gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    pub email: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub username: Option<String>,
    /// International form (`+31612345678`).
    pub phone: Option<String>,
    /// `active` (default), `pending` or `inactive`.
    pub status: Option<String>,
    pub language: Option<String>,
    /// Anything to keep with the user (an object): the old system's id, plan, …
    pub metadata: Option<serde_json::Value>,
    pub password_hash: Option<ImportedPassword>,
}

/// A password as the old system stored it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ImportedPassword {
    /// PHC (`$argon2id$`, `$argon2i$`, `$argon2d$`, `$scrypt$`, `$pbkdf2-sha256$`), bcrypt
    /// (`$2a$`, `$2b$`, `$2y$`) or Django (`pbkdf2_sha256$…`).
    Hash(String),
    /// Firebase's modified scrypt with its project parameters.
    Firebase(FirebaseScrypt),
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowResult {
    Created {
        id: String,
    },
    /// The address is a user already; nothing changed.
    Duplicate,
    Refused {
        code: &'static str,
        reason: String,
    },
}

/// A row ready for the store, or why it is refused.
pub(crate) fn prepare(
    row: ImportRow,
    ids: (String, uuid::Uuid),
) -> Result<ImportedUser, (&'static str, String)> {
    let refuse = |e: FieldError| (e.code, format!("{} {}", e.field, e.message));
    let email = row
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(("required", "email is required".to_owned()))?;
    let email = EmailAddress::parse(email).map_err(|e| refuse(e.renamed("email")))?;
    let text = |field: &str, v: Option<String>| -> Result<Option<String>, (&'static str, String)> {
        match v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > 100 => {
                Err(("too_long", format!("{field} must be at most 100 characters")))
            }
            Some(v) if crate::text::has_forbidden(&v) => {
                Err(("invalid_characters", format!("{field} {}", crate::text::FORBIDDEN_MESSAGE)))
            }
            other => Ok(other),
        }
    };
    let first_name = text("first_name", row.first_name)?;
    let last_name = text("last_name", row.last_name)?;
    let display_name = text("display_name", row.display_name)?;
    let name = text("name", row.name)?.unwrap_or_else(|| {
        let joined =
            [first_name.as_deref(), last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        if joined.is_empty() { email.local_part().to_owned() } else { joined }
    });
    let username = match row.username.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => Some(Username::parse(u).map_err(refuse)?),
        None => None,
    };
    let phone = match row.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => Some(Phone::parse("phone", p).map_err(refuse)?.into_string()),
        None => None,
    };
    let language = match row.language.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => Language::parse("language", l).map_err(refuse)?.into_string(),
        None => "en".to_owned(),
    };
    let status = match row.status.as_deref().unwrap_or("active") {
        "active" => UserStatus::Active,
        "pending" => UserStatus::Pending,
        "inactive" | "disabled" => UserStatus::Inactive,
        other => {
            return Err(("invalid_status", format!("status {other:?} is not active, pending or inactive")));
        }
    };
    let metadata = match row.metadata {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(_)) => {
            let text = v.to_string();
            if text.len() > 16 * 1024 {
                return Err(("too_long", "metadata must be at most 16 KiB".into()));
            }
            Some(text)
        }
        Some(_) => return Err(("invalid_metadata", "metadata must be an object".into())),
    };
    let password_hash = match row.password_hash {
        None => Ok(NO_PASSWORD.to_owned()),
        Some(ImportedPassword::Hash(h)) => crate::foreign_hash::accept(&h),
        Some(ImportedPassword::Firebase(f)) => crate::foreign_hash::accept_firebase(&f),
    }
    .map_err(|e| ("unsupported_hash", format!("password_hash {e}")))?;
    let (public_id, uuid) = ids;
    Ok(ImportedUser {
        user: NewUser {
            public_id,
            uuid,
            email: email.as_entered().to_owned(),
            email_canonical: email.canonical().to_owned(),
            username_canonical: username.as_ref().map(|u| u.canonical().to_owned()),
            username: username.map(|u| u.as_str().to_owned()),
            name,
            language,
            status,
            password_hash,
            // The row's metadata is kept with the import's own columns.
            metadata: None,
        },
        profile: UserProfile { first_name, last_name, display_name, company: None, phone },
        metadata,
    })
}

/// Splits a byte stream into rows: the elements of one JSON array, or JSON Lines (one value a
/// line, blank lines skipped), whichever the first byte says. Bytes go in as they arrive; whole
/// rows come out; at most `MAX_ROW` bytes of a row are held.
#[derive(Debug, Default)]
pub struct RowSplitter {
    mode: Option<Mode>,
    buf: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    ended: bool,
    /// Rows seen so far (the number of the next row is this plus one).
    pub rows: usize,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Array,
    Lines,
}

/// One row's bytes, or why it could not be read; with its number (from 1).
pub type SplitRow = (usize, Result<Vec<u8>, String>);

impl RowSplitter {
    /// Feed bytes; whole rows found are pushed onto `out`. An `Err` ends the input (a JSON
    /// array that cannot be read on).
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SplitRow>) -> Result<(), String> {
        for &b in bytes {
            let mode = match self.mode {
                Some(m) => m,
                None if b.is_ascii_whitespace() => continue,
                None if b == b'[' => {
                    self.mode = Some(Mode::Array);
                    continue;
                }
                None => {
                    self.mode = Some(Mode::Lines);
                    Mode::Lines
                }
            };
            match mode {
                Mode::Lines => self.line_byte(b, out),
                Mode::Array => self.array_byte(b, out)?,
            }
        }
        Ok(())
    }

    /// The input ended: the last row, or an error when a JSON array was left open.
    pub fn finish(&mut self, out: &mut Vec<SplitRow>) -> Result<(), String> {
        match self.mode {
            Some(Mode::Lines) => {
                if !self.skipping {
                    self.flush(out);
                }
                Ok(())
            }
            Some(Mode::Array) if !self.ended => Err("the JSON array is not closed".into()),
            _ => Ok(()),
        }
    }

    fn flush(&mut self, out: &mut Vec<SplitRow>) {
        let row = std::mem::take(&mut self.buf);
        if row.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        self.rows += 1;
        out.push((self.rows, Ok(row)));
    }

    fn line_byte(&mut self, b: u8, out: &mut Vec<SplitRow>) {
        if b == b'\n' {
            if self.skipping {
                self.skipping = false;
            } else {
                self.flush(out);
            }
            return;
        }
        if self.skipping {
            return;
        }
        self.buf.push(b);
        if self.buf.len() > MAX_ROW {
            self.buf.clear();
            self.skipping = true;
            self.rows += 1;
            out.push((self.rows, Err(format!("the row is over {MAX_ROW} bytes"))));
        }
    }

    fn array_byte(&mut self, b: u8, out: &mut Vec<SplitRow>) -> Result<(), String> {
        if self.ended {
            return if b.is_ascii_whitespace() { Ok(()) } else { Err("text after the JSON array".into()) };
        }
        if self.in_string {
            self.buf.push(b);
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
        } else {
            match b {
                b'"' => {
                    self.in_string = true;
                    self.buf.push(b);
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.buf.push(b);
                }
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    self.buf.push(b);
                }
                b']' => {
                    self.flush(out);
                    self.ended = true;
                }
                b',' if self.depth == 0 => self.flush(out),
                _ => self.buf.push(b),
            }
        }
        if self.buf.len() > MAX_ROW {
            return Err(format!("row {} is over {MAX_ROW} bytes", self.rows + 1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> (Vec<SplitRow>, Result<(), String>) {
        let mut s = RowSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            if let Err(e) = s.feed(c, &mut out) {
                return (out, Err(e));
            }
        }
        let end = s.finish(&mut out);
        (out, end)
    }

    fn texts(rows: &[SplitRow]) -> Vec<String> {
        rows.iter().map(|(_, r)| String::from_utf8(r.clone().unwrap()).unwrap().trim().to_owned()).collect()
    }

    #[test]
    fn an_array_splits_into_its_elements_across_chunks() {
        let (rows, end) = split(&[b" [ {\"a\": \"x,]}\\\"\"}, {\"b\"", b": [1, {\"c\": 2}]} ,{} ] \n"]);
        end.unwrap();
        assert_eq!(texts(&rows), [r#"{"a": "x,]}\""}"#, r#"{"b": [1, {"c": 2}]}"#, "{}"]);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn json_lines_skip_blank_lines_and_the_last_needs_no_newline() {
        let (rows, end) = split(&[b"{\"a\":1}\n\n{\"b\"", b":2}\r\n{\"c\":3}"]);
        end.unwrap();
        assert_eq!(texts(&rows), [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[test]
    fn an_open_array_and_a_long_row_are_reported() {
        assert!(split(&[b"[{\"a\":1}"]).1.is_err());
        assert!(split(&[b"[{}] {}"]).1.is_err());
        let long = vec![b'x'; MAX_ROW + 10];
        let (rows, end) = split(&[&long, b"\n{\"ok\":1}\n"]);
        end.unwrap();
        assert!(rows[0].1.is_err());
        assert_eq!(rows[1].0, 2);
        assert_eq!(texts(&rows[1..]), [r#"{"ok":1}"#]);
    }
}
