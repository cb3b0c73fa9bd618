//! Which language a viewer gets: `?lang=xx` when it names one we have, then
//! the best of the browser's `Accept-Language` that we have (by q-value, then
//! by order; `es-MX` is Spanish, `q=0` means "not this one"), then English.
//! Anything malformed is skipped, never refused: a page always renders.

use super::Lang;

/// The language of a request with `?lang=` value `query` and header
/// `Accept-Language` value `accept`.
pub(crate) fn negotiate(query: Option<&str>, accept: Option<&str>) -> Lang {
    query
        .and_then(Lang::from_tag)
        .or_else(|| accept.and_then(from_accept_language))
        .unwrap_or(Lang::En)
}

/// The preferred language of an `Accept-Language` value that we have.
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut ranked: Vec<(f32, usize, Lang)> = header
        .split(',')
        .enumerate()
        .filter_map(|(order, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .next()
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            if !(q > 0.0 && q <= 1.0) {
                return None;
            }
            Some((q, order, Lang::from_tag(tag)?))
        })
        .collect();
    // Highest q first; among equals, the order the browser gave.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.first().map(|(_, _, lang)| *lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_over_the_header() {
        assert_eq!(negotiate(Some("fr"), Some("es-ES,es;q=0.9")), Lang::Fr);
        assert_eq!(negotiate(Some("ES"), None), Lang::Es);
    }

    #[test]
    fn an_unknown_query_falls_back_to_the_header_then_to_english() {
        assert_eq!(negotiate(Some("de"), Some("fr-FR")), Lang::Fr);
        assert_eq!(negotiate(Some("de"), None), Lang::En);
        assert_eq!(negotiate(Some(""), Some("xx, *")), Lang::En);
    }

    #[test]
    fn regional_tags_map_to_their_language() {
        assert_eq!(negotiate(None, Some("es-MX")), Lang::Es);
        assert_eq!(negotiate(None, Some("fr-CA,en;q=0.5")), Lang::Fr);
    }

    #[test]
    fn q_values_rank_the_languages() {
        // German first, which we lack; then French over Spanish by q.
        assert_eq!(
            negotiate(None, Some("de-DE, es;q=0.4, fr;q=0.8, en;q=0.1")),
            Lang::Fr
        );
        // Equal q: the browser's order.
        assert_eq!(negotiate(None, Some("es;q=0.5, fr;q=0.5")), Lang::Es);
        // q=0 refuses a language, even the only one we have.
        assert_eq!(negotiate(None, Some("fr;q=0, es;q=0.2")), Lang::Es);
        assert_eq!(negotiate(None, Some("fr;q=0")), Lang::En);
    }

    #[test]
    fn malformed_items_are_skipped() {
        assert_eq!(negotiate(None, Some("fr;q=abc, es")), Lang::Es);
        assert_eq!(negotiate(None, Some(";;,, ,q=1")), Lang::En);
        assert_eq!(negotiate(None, Some("fr;q=2")), Lang::En);
    }
}
