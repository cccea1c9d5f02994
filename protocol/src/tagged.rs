//! Reading internally tagged enums (`{"kind": "sweep", …}`) without buffering them.
//!
//! serde's derived `Deserialize` for `#[serde(tag = "…")]` reads the whole object into its
//! private `Content` tree before it knows the variant, then reads the variant from that tree.
//! For a 1,000-node sweep (≈ 100 KB of targets in the assignment, ≈ 200 KB of results) that
//! tree was the largest cost of parsing a result in the dispatcher and in podperf-web (`perf`,
//! see BENCHMARKS.md § Sweep scale). Everything podperf writes puts the tag first (serde's
//! `Serialize` for these enums does), so [`tag_first!`] reads the tag and then the variant
//! straight from the stream. An object whose tag is not its first key (written by hand, say)
//! still reads as before, through the derived code, from a `serde_json::Value`: same result,
//! same error messages.

/// Defines an internally tagged enum of newtype variants (snake_case tags, `tag = "…"` its tag
/// field) and its `Deserialize`: the tag first streams, anything else goes through serde's
/// derived (buffering) code. The variants are listed once, so one added to the enum is read too.
///
/// ```ignore
/// tag_first! {
///     tag = "kind";
///     /// Docs and other attributes as usual (derive `Serialize` here, not `Deserialize`).
///     #[derive(Debug, Serialize)]
///     pub enum ProbeResult { Ping(PingResult), … }
/// }
/// ```
macro_rules! tag_first {
    (
        tag = $tag:literal;
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident {
            $( $(#[$vmeta:meta])* $variant:ident($inner:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[serde(tag = $tag, rename_all = "snake_case")]
        $vis enum $ty {
            $( $(#[$vmeta])* $variant($inner), )+
        }

        const _: () = {
            use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

            /// The derived code, for an object whose tag is not its first key.
            #[derive(Deserialize)]
            #[serde(tag = $tag, rename_all = "snake_case")]
            enum Derived {
                $($variant($inner),)+
            }

            impl From<Derived> for $ty {
                fn from(d: Derived) -> $ty {
                    match d {
                        $(Derived::$variant(v) => $ty::$variant(v),)+
                    }
                }
            }

            /// The tag's values.
            #[derive(Deserialize)]
            #[serde(rename_all = "snake_case")]
            enum Tag {
                $($variant,)+
            }

            struct TagFirst;

            impl<'de> Visitor<'de> for TagFirst {
                type Value = $ty;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    write!(f, "an object tagged by `{}`", $tag)
                }

                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                    let first: Option<std::borrow::Cow<'de, str>> =
                        map.next_key_seed(crate::tagged::KeySeed)?;
                    match first {
                        Some(key) if key == $tag => {
                            let tag: Tag = map.next_value()?;
                            let rest = de::value::MapAccessDeserializer::new(map);
                            Ok(match tag {
                                $(Tag::$variant => $ty::$variant(<$inner>::deserialize(rest)?),)+
                            })
                        }
                        first => {
                            let mut obj = serde_json::Map::new();
                            if let Some(key) = first {
                                obj.insert(key.into_owned(), map.next_value()?);
                                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                                    obj.insert(k, v);
                                }
                            }
                            Derived::deserialize(serde_json::Value::Object(obj))
                                .map(Into::into)
                                .map_err(de::Error::custom)
                        }
                    }
                }
            }

            impl<'de> Deserialize<'de> for $ty {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                    d.deserialize_map(TagFirst)
                }
            }
        };
    };
}

pub(crate) use tag_first;

/// A map key as a string, borrowed when the input allows.
pub(crate) struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = std::borrow::Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(std::borrow::Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(std::borrow::Cow::Owned(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(std::borrow::Cow::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use crate::command::WorkerCommand;
    use crate::job::JobParams;
    use crate::result::ProbeResult;

    /// The tag first (as podperf writes it), last, or in the middle: the same value.
    #[test]
    fn the_tag_anywhere_reads_the_same() {
        let first = r#"{"kind":"ping","count":3,"interval_ms":200}"#;
        let later = r#"{"count":3,"kind":"ping","interval_ms":200}"#;
        let a: JobParams = serde_json::from_str(first).unwrap();
        let b: JobParams = serde_json::from_str(later).unwrap();
        assert_eq!(a, b);
        assert!(matches!(a, JobParams::Ping(ref p) if p.count == 3), "{a:?}");
        assert_eq!(serde_json::to_string(&a).unwrap().find("\"kind\""), Some(1));

        let r = r#"{"kind":"noop","slept_ms":5}"#;
        let r2 = r#"{"slept_ms":5,"kind":"noop"}"#;
        let (x, y): (ProbeResult, ProbeResult) = (
            serde_json::from_str(r).unwrap(),
            serde_json::from_str(r2).unwrap(),
        );
        assert_eq!(x, y);

        let c = r#"{"command":"cancel","job_id":"0190a0a0-0000-7000-8000-000000000000"}"#;
        let c2 = r#"{"job_id":"0190a0a0-0000-7000-8000-000000000000","command":"cancel"}"#;
        let (x, y): (WorkerCommand, WorkerCommand) = (
            serde_json::from_str(c).unwrap(),
            serde_json::from_str(c2).unwrap(),
        );
        assert_eq!(x, y);
    }

    /// Bad input is refused with serde's own words, wherever the tag is.
    #[test]
    fn bad_input_says_what_is_wrong() {
        let err = |s: &str| {
            serde_json::from_str::<JobParams>(s)
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"kind":"pong"}"#).contains("unknown variant `pong`"));
        assert!(err(r#"{"count":1,"kind":"pong"}"#).contains("unknown variant `pong`"));
        assert!(err(r#"{"count":1}"#).contains("missing field `kind`"));
        assert!(err(r#"{}"#).contains("missing field `kind`"));
        assert!(err(r#"{"kind":"ping","bogus":1}"#).contains("unknown field `bogus`"));
        assert!(err(r#"{"bogus":1,"kind":"ping"}"#).contains("unknown field `bogus`"));
        assert!(err(r#"{"kind":"ping","count":"x"}"#).contains("invalid type"));
        assert!(err(r#"[1]"#).contains("invalid type"));
    }
}
