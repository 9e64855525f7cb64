//! Readers for bodies and fields that v3.0 clients and the voice bots send loosely. Most never
//! fail: a value of another type reads as absent, as the routes have always read it.
//! [`whole_number`] reads what JSON Schema calls an integer, which serde alone does not.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, de};
use serde_json::Value;

/// A body read the way the legacy routes and the bots' webhooks always read theirs: any JSON
/// is accepted, one that is not an object reads as `{}`, and a key sent twice keeps its last
/// value. Malformed JSON is still refused (400) by the extractor.
#[derive(Debug)]
pub struct Lenient<T>(pub T);

impl<'de, T: DeserializeOwned + Default> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            object @ Value::Object(_) => T::deserialize(object)
                .map(Lenient)
                .map_err(de::Error::custom),
            _ => Ok(Lenient(T::default())),
        }
    }
}

/// A string that holds something, trimmed. Blank, `null` or another type reads as absent.
pub(crate) fn non_blank<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    })
}

/// Like [`non_blank`], but a number counts too, as its JSON text (`participantName: 42` is
/// seen in the field and means `"42"`).
pub(crate) fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Metadata as LiveKit wants it, a string: a string is kept as sent, `null` is empty, and any
/// other JSON (an object, usually) is sent as its JSON text. Use with `#[serde(default)]`.
pub(crate) fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// A number; anything else reads as absent.
pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
    Ok(Value::deserialize(d)?.as_f64().map(|n| n as f32))
}

/// A whole number, also written as an integral float (`3600.0`): JSON Schema's `integer`
/// admits it, so a client generated from the spec may send it, and serde's `i64` refuses it.
/// `null` reads as absent; a fraction, a number beyond `i64` or another type is refused (422
/// naming the field). Use with `#[serde(default)]`.
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Number(n) => n,
        other => {
            return Err(de::Error::invalid_type(
                unexpected(&other),
                &"a whole number",
            ));
        }
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    // i64::MAX as f64 rounds up to 2^63, which is out of range: the bound is exclusive.
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        Some(f) => Err(de::Error::invalid_value(
            de::Unexpected::Float(f),
            &"a whole number within 64 bits",
        )),
        None => Err(de::Error::invalid_value(
            de::Unexpected::Other("a number beyond 64 bits"),
            &"a whole number within 64 bits",
        )),
    }
}

/// How serde names a JSON value in a type error.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
        Value::Null | Value::Number(_) => de::Unexpected::Other("a value"),
    }
}

/// A JSON boolean; anything else reads as absent (`"partial": "yes"` says nothing).
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(d)?.as_bool())
}

/// Any JSON but `null`, kept as it is for the handler to judge (`room_config`).
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Some(Value::deserialize(d)?).filter(|v| !v.is_null()))
}

/// The first of several alias fields that was given (they are read in this order).
pub(crate) fn first_of<const N: usize>(fields: [&Option<String>; N]) -> Option<String> {
    fields.into_iter().find_map(Clone::clone)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "non_blank")]
        name: Option<String>,
        #[serde(default, deserialize_with = "text_or_number")]
        who: Option<String>,
        #[serde(default, deserialize_with = "json_text")]
        meta: String,
        #[serde(default, deserialize_with = "number")]
        score: Option<f32>,
        #[serde(default, deserialize_with = "present")]
        config: Option<Value>,
        #[serde(default, deserialize_with = "flag")]
        on: Option<bool>,
        #[serde(default, deserialize_with = "whole_number")]
        ttl: Option<i64>,
    }

    fn read(body: Value) -> Fields {
        serde_json::from_value::<Lenient<Fields>>(body).unwrap().0
    }

    #[test]
    fn a_number_is_taken_as_its_text_where_the_field_allows_it() {
        assert_eq!(read(json!({"who": 42})).who.as_deref(), Some("42"));
        assert_eq!(read(json!({"who": -1.5})).who.as_deref(), Some("-1.5"));
        assert_eq!(read(json!({"who": " zoe "})).who.as_deref(), Some("zoe"));
        // Elsewhere a number is not a name.
        assert_eq!(read(json!({"name": 42})).name, None);
        assert_eq!(read(json!({"who": true})).who, None);
        assert_eq!(read(json!({"who": ["a"]})).who, None);
    }

    #[test]
    fn empty_and_whitespace_strings_count_as_missing() {
        for blank in ["", "   ", "\t\n"] {
            let f = read(json!({"name": blank, "who": blank}));
            assert_eq!((f.name, f.who), (None, None), "{blank:?}");
        }
        assert_eq!(read(json!({"name": null})).name, None);
        assert_eq!(read(json!({"name": "  x "})).name.as_deref(), Some("x"));
    }

    #[test]
    fn metadata_is_kept_as_sent_or_becomes_json_text() {
        assert_eq!(read(json!({})).meta, "");
        assert_eq!(read(json!({"meta": null})).meta, "");
        // A string is not trimmed: it is the client's own encoding.
        assert_eq!(read(json!({"meta": " {\"a\":1} "})).meta, " {\"a\":1} ");
        assert_eq!(
            read(json!({"meta": {"a": 1, "b": [true]}})).meta,
            r#"{"a":1,"b":[true]}"#
        );
        assert_eq!(read(json!({"meta": 7})).meta, "7");
    }

    #[test]
    fn a_field_of_another_type_reads_as_absent_and_null_is_not_present() {
        assert_eq!(read(json!({"score": 0.93})).score, Some(0.93));
        assert_eq!(read(json!({"score": 1})).score, Some(1.0));
        assert_eq!(read(json!({"score": "high"})).score, None);
        assert_eq!(read(json!({"config": null})).config, None);
        assert_eq!(read(json!({"config": "x"})).config, Some(json!("x")));
    }

    #[test]
    fn a_whole_number_may_be_written_as_an_integral_float() {
        assert_eq!(read(json!({"ttl": 3600})).ttl, Some(3600));
        assert_eq!(read(json!({"ttl": 476611097.0})).ttl, Some(476_611_097));
        assert_eq!(read(json!({"ttl": -2.0})).ttl, Some(-2));
        assert_eq!(read(json!({"ttl": null})).ttl, None);
        assert_eq!(read(json!({})).ttl, None);
    }

    #[derive(Debug, Deserialize)]
    struct Ttl {
        #[serde(default, deserialize_with = "whole_number")]
        #[allow(dead_code)]
        ttl: Option<i64>,
    }

    #[test]
    fn a_fraction_a_huge_number_or_another_type_is_refused_naming_the_field() {
        for bad in [
            json!(1.5),
            json!(1e300),
            json!(u64::MAX),
            json!("3600"),
            json!(true),
            json!([1]),
        ] {
            let body = json!({ "ttl": bad }).to_string();
            match crate::extract::parse::<Ttl>(body.as_bytes()) {
                Err(crate::error::ApiError::Validation { field, .. }) => assert_eq!(field, "ttl"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_flag_is_a_json_boolean_and_nothing_else() {
        assert_eq!(read(json!({"on": true})).on, Some(true));
        assert_eq!(read(json!({"on": false})).on, Some(false));
        for other in [json!("true"), json!(1), json!(null), json!([true])] {
            assert_eq!(read(json!({ "on": other })).on, None, "{other}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_reads_as_empty_and_a_repeated_key_keeps_its_last_value() {
        for body in [json!([]), json!([1, 2]), json!("x"), json!(3), json!(null)] {
            let f = read(body.clone());
            assert_eq!(
                (f.name, f.who, f.meta),
                (None, None, String::new()),
                "{body}"
            );
        }
        let parsed: Lenient<Fields> = crate::extract::parse(br#"{"who":"a","who":"b"}"#).unwrap();
        assert_eq!(parsed.0.who.as_deref(), Some("b"));
    }

    #[test]
    fn the_first_alias_given_wins() {
        let (a, b, none) = (Some("a".to_owned()), Some("b".to_owned()), None);
        assert_eq!(first_of([&a, &b]).as_deref(), Some("a"));
        assert_eq!(first_of([&none, &b]).as_deref(), Some("b"));
        assert_eq!(first_of([&none, &none]), None);
    }
}
