//! One import line, `{"ops": [OP, ...]}`, validated strictly into operations.
//!
//! Malformed (the contract): not UTF-8 or not JSON, not an object with exactly an `ops`
//! array, an unknown op, an unknown or missing field, a wrong type, hex that is
//! upper-case, of odd length or longer than 64 digits, a size or mtime that is
//! fractional or out of range. The whole line is checked before anything is applied,
//! so a malformed line applies nothing.

use serde_json::{Map, Value as J};
use walstore::{Fingerprint, Value, WriteTxn};

use crate::strict_json::StrictJson;

/// Longest hash, in hex digits (32 bytes).
const HEX_DIGITS_MAX: usize = 64;

/// One validated operation.
#[derive(Debug)]
pub enum ImportOp {
    /// `set_meta`.
    SetMeta { key: String, value: Value },
    /// `del_meta`.
    DelMeta { key: String },
    /// `set_config`.
    SetConfig { key: String, value: Value },
    /// `del_config`.
    DelConfig { key: String },
    /// `put_fingerprint`.
    PutFingerprint {
        ns: String,
        path: String,
        fingerprint: Fingerprint,
    },
    /// `del_fingerprint`.
    DelFingerprint { ns: String, path: String },
    /// `index_doc`.
    IndexDoc { doc: String, text: String },
    /// `remove_doc`.
    RemoveDoc { doc: String },
}

impl ImportOp {
    /// Adds the operation to a transaction.
    pub fn apply(self, txn: &mut WriteTxn) {
        match self {
            ImportOp::SetMeta { key, value } => txn.set_meta(&key, value),
            ImportOp::DelMeta { key } => txn.delete_meta(&key),
            ImportOp::SetConfig { key, value } => txn.set_config(&key, value),
            ImportOp::DelConfig { key } => txn.delete_config(&key),
            ImportOp::PutFingerprint {
                ns,
                path,
                fingerprint,
            } => txn.put_fingerprint(&ns, &path, fingerprint),
            ImportOp::DelFingerprint { ns, path } => txn.delete_fingerprint(&ns, &path),
            ImportOp::IndexDoc { doc, text } => txn.index_doc(&doc, &text),
            ImportOp::RemoveDoc { doc } => txn.remove_doc(&doc),
        };
    }
}

/// Parses one line (without its line break). `Ok(None)`: an empty or white-space line.
pub fn parse(line: &[u8]) -> Result<Option<Vec<ImportOp>>, String> {
    let text = std::str::from_utf8(line).map_err(|e| format!("not valid UTF-8: {e}"))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let StrictJson(json) =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut top = object(json, "the line")?;
    exact_fields(&top, &["ops"], "the line")?;
    let ops = match top.remove("ops") {
        Some(J::Array(ops)) => ops,
        Some(other) => return Err(format!("\"ops\" must be an array, found {}", kind(&other))),
        None => return Err("missing field \"ops\"".into()),
    };
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| parse_op(op).map_err(|e| format!("op {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_op(op: J) -> Result<ImportOp, String> {
    let mut fields = object(op, "an op")?;
    let name = match fields.get("op") {
        Some(J::String(name)) => name.clone(),
        Some(other) => {
            return Err(format!(
                "field \"op\" must be a string, found {}",
                kind(other)
            ));
        }
        None => return Err("missing field \"op\"".into()),
    };
    let expected: &[&str] = match name.as_str() {
        "set_meta" | "set_config" => &["op", "key", "value"],
        "del_meta" | "del_config" => &["op", "key"],
        "put_fingerprint" => &["op", "ns", "path", "hash", "size", "mtime"],
        "del_fingerprint" => &["op", "ns", "path"],
        "index_doc" => &["op", "doc", "text"],
        "remove_doc" => &["op", "doc"],
        _ => {
            return Err(format!(
                "unknown op {} (expected set_meta, del_meta, set_config, del_config, put_fingerprint, del_fingerprint, index_doc or remove_doc)",
                crate::output::quoted(&name)
            ));
        }
    };
    let what = format!("op \"{name}\"");
    exact_fields(&fields, expected, &what)?;
    let mut field = |name: &str| fields.remove(name).unwrap_or(J::Null);
    Ok(match name.as_str() {
        "set_meta" => ImportOp::SetMeta {
            key: string(field("key"), "key")?,
            value: Value::from(field("value")),
        },
        "del_meta" => ImportOp::DelMeta {
            key: string(field("key"), "key")?,
        },
        "set_config" => ImportOp::SetConfig {
            key: string(field("key"), "key")?,
            value: Value::from(field("value")),
        },
        "del_config" => ImportOp::DelConfig {
            key: string(field("key"), "key")?,
        },
        "put_fingerprint" => {
            let ns = string(field("ns"), "ns")?;
            let path = string(field("path"), "path")?;
            let hash = hex(field("hash"))?;
            let size = size(field("size"))?;
            let mtime = mtime(field("mtime"))?;
            let fingerprint = Fingerprint::new(hash, size, mtime).map_err(|e| e.to_string())?;
            ImportOp::PutFingerprint {
                ns,
                path,
                fingerprint,
            }
        }
        "del_fingerprint" => ImportOp::DelFingerprint {
            ns: string(field("ns"), "ns")?,
            path: string(field("path"), "path")?,
        },
        "index_doc" => ImportOp::IndexDoc {
            doc: string(field("doc"), "doc")?,
            text: string(field("text"), "text")?,
        },
        _ => ImportOp::RemoveDoc {
            doc: string(field("doc"), "doc")?,
        },
    })
}

/// Every field of `expected` present, and no other.
fn exact_fields(object: &Map<String, J>, expected: &[&str], what: &str) -> Result<(), String> {
    if let Some(unknown) = object.keys().find(|k| !expected.contains(&k.as_str())) {
        return Err(format!(
            "unknown field {} in {what} (expected: {})",
            crate::output::quoted(unknown),
            expected.join(", ")
        ));
    }
    if let Some(missing) = expected.iter().find(|k| !object.contains_key(**k)) {
        return Err(format!("missing field \"{missing}\" in {what}"));
    }
    Ok(())
}

fn object(json: J, what: &str) -> Result<Map<String, J>, String> {
    match json {
        J::Object(map) => Ok(map),
        other => Err(format!("{what} must be an object, found {}", kind(&other))),
    }
}

fn string(json: J, name: &str) -> Result<String, String> {
    match json {
        J::String(s) => Ok(s),
        other => Err(format!(
            "field \"{name}\" must be a string, found {}",
            kind(&other)
        )),
    }
}

/// Lower-case hex, even length, at most 64 digits, into bytes.
fn hex(json: J) -> Result<Vec<u8>, String> {
    let text = string(json, "hash")?;
    let bad = |why: &str| {
        Err(format!(
            "field \"hash\" must be lower-case hex of even length up to {HEX_DIGITS_MAX} digits, found {} ({why})",
            crate::output::quoted(&text)
        ))
    };
    if let Some(c) = text.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return if c.is_ascii_hexdigit() {
            bad("upper-case digit")
        } else {
            bad("not a hex digit")
        };
    }
    if text.len() % 2 != 0 {
        return bad("odd length");
    }
    if text.len() > HEX_DIGITS_MAX {
        return bad("too long");
    }
    // Every byte is an ASCII hex digit here, so each pair decodes.
    Ok(text
        .as_bytes()
        .chunks(2)
        .map(|pair| pair.iter().fold(0u8, |acc, &d| (acc << 4) | digit(d)))
        .collect())
}

fn digit(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        _ => d.wrapping_sub(b'a').wrapping_add(10),
    }
}

fn size(json: J) -> Result<u64, String> {
    match &json {
        J::Number(n) => n.as_u64().ok_or_else(|| {
            format!(
                "field \"size\" must be an integer from 0 to {}, found {n}",
                u64::MAX
            )
        }),
        other => Err(format!(
            "field \"size\" must be an integer, found {}",
            kind(other)
        )),
    }
}

fn mtime(json: J) -> Result<i64, String> {
    match &json {
        J::Number(n) => n.as_i64().ok_or_else(|| {
            format!(
                "field \"mtime\" must be an integer from {} to {}, found {n}",
                i64::MIN,
                i64::MAX
            )
        }),
        other => Err(format!(
            "field \"mtime\" must be an integer, found {}",
            kind(other)
        )),
    }
}

/// The JSON type of a value, for messages.
fn kind(json: &J) -> &'static str {
    match json {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}
