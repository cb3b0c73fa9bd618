//! The languages of the public tracking page: the message files
//! (`portal-api/locales/{en,es,fr}.toml`, embedded in the binary and parsed
//! once), the choice of a viewer's language ([`negotiate`]) and times in a
//! stop's own zone written the way that language writes them ([`format`]).
//!
//! A message file is flat `key = "text"` TOML (tables only group keys: `[status]`
//! then `created = …` is the key `status.created`); `{name}` marks a
//! placeholder. Every locale has the same keys and the same placeholders (a unit
//! test checks it), so a lookup that misses is a bug caught in CI; should one
//! slip through anyway, the page shows the English text (or nothing, logged),
//! never an error. The same table goes to the page's script in its data script, so the
//! server and the script say the same words.

pub(crate) mod format;
mod negotiate;

use std::collections::BTreeMap;
use std::sync::LazyLock;

pub(crate) use negotiate::negotiate;

/// A language the page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lang {
    En,
    Es,
    Fr,
}

impl Lang {
    /// Every language, in the order the page's language switch lists them.
    pub(crate) const ALL: [Lang; 3] = [Lang::En, Lang::Es, Lang::Fr];

    /// The BCP 47 tag (`<html lang>`, `Content-Language`, `?lang=`).
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
        }
    }

    /// The language of a tag's primary subtag (`es-MX` is Spanish), if we have it.
    pub(crate) fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default().trim();
        Lang::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(primary))
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../../locales/en.toml"),
            Lang::Es => include_str!("../../locales/es.toml"),
            Lang::Fr => include_str!("../../locales/fr.toml"),
        }
    }

    /// This language's messages.
    pub(crate) fn messages(self) -> &'static Messages {
        static TABLES: LazyLock<[Messages; 3]> = LazyLock::new(|| {
            Lang::ALL.map(|lang| {
                parse(lang.source()).unwrap_or_else(|reason| {
                    // Only an edit of a message file can cause this, and the
                    // unit tests parse every file; the page then falls back
                    // to English, key by key.
                    tracing::error!(lang = lang.tag(), %reason, "message file does not parse");
                    Messages::default()
                })
            })
        });
        let idx = Lang::ALL.iter().position(|l| *l == self).unwrap_or(0);
        &TABLES[idx]
    }

    /// The text of `key` (English when this language lacks it; empty, and
    /// logged, when English does too).
    pub(crate) fn t(self, key: &str) -> &'static str {
        self.messages()
            .get(key)
            .or_else(|| Lang::En.messages().get(key))
            .unwrap_or_else(|| {
                tracing::warn!(key, lang = self.tag(), "missing message");
                ""
            })
    }

    /// The text of `key` with its `{name}` placeholders filled from `values`
    /// (a placeholder with no value stays as written).
    pub(crate) fn tf(self, key: &str, values: &[(&str, &str)]) -> String {
        fill(self.t(key), values)
    }
}

/// One language's flat table of messages.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    by_key: BTreeMap<String, String>,
}

impl Messages {
    fn get(&self, key: &str) -> Option<&str> {
        self.by_key.get(key).map(String::as_str)
    }

    /// The table, for the page's data script.
    pub(crate) fn as_map(&self) -> &BTreeMap<String, String> {
        &self.by_key
    }
}

/// Parses a message file into its flat table.
fn parse(source: &str) -> Result<Messages, String> {
    let table: toml::Table = source.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut by_key = BTreeMap::new();
    flatten("", &table, &mut by_key)?;
    Ok(Messages { by_key })
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(text) => {
                out.insert(key, text.clone());
            }
            toml::Value::Table(inner) => flatten(&key, inner, out)?,
            other => return Err(format!("{key}: a {} is not a message", other.type_str())),
        }
    }
    Ok(())
}

/// Fills `{name}` placeholders.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders of a message, sorted.
#[cfg(test)]
fn placeholders(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split('{')
        .skip(1)
        .filter_map(|piece| piece.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_has_the_same_keys_and_placeholders_as_english() {
        let english = parse(Lang::En.source()).expect("en.toml parses");
        assert!(
            english.by_key.len() > 100,
            "the page's strings are all there"
        );
        for lang in [Lang::Es, Lang::Fr] {
            let other = parse(lang.source()).expect("every message file parses");
            let missing: Vec<&String> = english
                .by_key
                .keys()
                .filter(|k| !other.by_key.contains_key(*k))
                .collect();
            let extra: Vec<&String> = other
                .by_key
                .keys()
                .filter(|k| !english.by_key.contains_key(*k))
                .collect();
            assert!(missing.is_empty(), "{}.toml lacks {missing:?}", lang.tag());
            assert!(extra.is_empty(), "{}.toml has extra {extra:?}", lang.tag());
            for (key, text) in &english.by_key {
                assert_eq!(
                    placeholders(&other.by_key[key]),
                    placeholders(text),
                    "{}.toml, {key}: placeholders differ",
                    lang.tag()
                );
            }
            assert_eq!(
                other.by_key["fmt.months"].split(' ').count(),
                12,
                "{}: twelve month names",
                lang.tag()
            );
        }
    }

    #[test]
    fn a_message_is_filled_and_an_unknown_placeholder_stays() {
        assert_eq!(
            Lang::Es.tf("page.heading", &[("reference", "LOAD-1")]),
            "Envío LOAD-1"
        );
        assert_eq!(fill("{a} and {b}", &[("a", "x")]), "x and {b}");
        assert_eq!(fill("open { brace", &[]), "open { brace");
    }

    #[test]
    fn tags_map_to_languages_by_their_primary_subtag() {
        assert_eq!(Lang::from_tag("es-MX"), Some(Lang::Es));
        assert_eq!(Lang::from_tag("FR"), Some(Lang::Fr));
        assert_eq!(Lang::from_tag("de"), None);
        assert_eq!(Lang::Fr.t("status.delivered"), "Livré");
    }
}
