//! Readers for bodies and fields that v3.0 clients and the voice bots send loosely. They never
//! fail: a value of another type reads as absent, as the routes have always read it.

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
