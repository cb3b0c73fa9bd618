//! A tiny HTML builder: escaping, the document head, and the JSON data island the
//! script starts from. No template engine: the page is small and its structure is
//! easiest to follow as code.

use serde_json::{Value, json};

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A page being written.
#[derive(Debug)]
pub(crate) struct Html {
    out: String,
}

impl Html {
    pub(crate) fn new() -> Html {
        Html {
            out: String::with_capacity(16 * 1024),
        }
    }

    /// Opens the document in language `lang` (a BCP 47 tag) with `title`.
    pub(crate) fn head(&mut self, lang: &str, title: &str) {
        self.out.push_str(&format!(
            "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex, nofollow\">\
             <meta name=\"referrer\" content=\"no-referrer\">",
            esc(lang)
        ));
        self.out.push_str(&format!("<title>{}</title>", esc(title)));
        self.out.push_str(&format!(
            "<link rel=\"stylesheet\" href=\"{}\"><link rel=\"stylesheet\" href=\"{}\"></head><body>",
            crate::api::asset_url("leaflet.css"),
            crate::api::asset_url("track.css"),
        ));
    }

    pub(crate) fn raw(&mut self, html: &str) {
        self.out.push_str(html);
    }

    /// The initial state for the script, as a JSON data island: the order's
    /// public view, the tile URL and the page's language (`i18n`: its
    /// messages and zone names, see `crate::i18n`). `<` is escaped so no
    /// string in the data can close the script element.
    pub(crate) fn data_script(&mut self, track: &Value, tile_url: Option<&str>, i18n: &Value) {
        let data = json!({"track": track, "tile_url": tile_url, "i18n": i18n});
        let text = data.to_string().replace('<', "\\u003c");
        self.out
            .push_str("<script type=\"application/json\" id=\"track-data\">");
        self.out.push_str(&text);
        self.out.push_str("</script>");
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            esc("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }

    #[test]
    fn data_cannot_close_its_script_element() {
        let mut page = Html::new();
        page.data_script(
            &json!({"note": "</script><script>alert(1)</script>"}),
            None,
            &json!({"messages": {"x": "</script>"}}),
        );
        let html = page.finish();
        assert_eq!(html.matches("</script>").count(), 1, "{html}");
    }
}
