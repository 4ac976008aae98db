//! The self-describing value stored under metadata and config keys.
//!
//! postcard is not self-describing, so walstore stores its own tagged enum: any tool
//! (the CLI's `dump`, an independent reader) can show every value without knowing the
//! user's types. Users' own types go through serde ([`Value::from_serialize`],
//! [`Value::deserialize_into`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A self-describing value: what JSON has, plus bytes, and integers kept exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX` (smaller ones are stored as [`Value::Int`]).
    UInt(u64),
    /// A 64-bit float.
    Float(f64),
    /// A Unicode string.
    String(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An ordered list.
    List(Vec<Value>),
    /// A map from string keys, ordered by key.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Converts any serializable value (through its JSON data model).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
        let json = serde_json::to_value(value).map_err(|e| Error::Conversion(e.to_string()))?;
        Ok(Value::from(json))
    }

    /// Converts into any deserializable type (through its JSON data model). Bytes become
    /// an array of numbers.
    pub fn deserialize_into<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.to_json()).map_err(|e| Error::Conversion(e.to_string()))
    }

    /// The JSON form. Non-finite floats become `null`; bytes become an array of numbers.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Bytes(bytes) => J::Array(bytes.iter().map(|b| J::from(*b)).collect()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => {
                J::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            J::String(s) => Value::String(s),
            J::Array(items) => Value::List(items.into_iter().map(Value::from).collect()),
            J::Object(map) => {
                Value::Map(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$variant(v.into()) }
        })*
    };
}

value_from!(bool => Bool, i64 => Int, i32 => Int, u32 => Int, f64 => Float, String => String,
    &str => String, Vec<u8> => Bytes);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or(Value::UInt(v), Value::Int)
    }
}
