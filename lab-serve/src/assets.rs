//! The dashboard page, built into the binary: one HTML page, its script and
//! its style sheet (plain JavaScript and CSS, nothing fetched from
//! elsewhere). They hold no data: the page reads the fleet from the JSON
//! API, so they are served without a token.

/// `(name, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../assets/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("../assets/style.css")),
];

/// The asset for a request path: `/` (and `/index.html`) is the page,
/// `/assets/NAME` (or just `NAME`) one of its files. Returns its content
/// type and bytes; `None` for anything else.
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = path.split(['?', '#']).next().unwrap_or_default().trim_start_matches('/');
    let name = path.strip_prefix("assets/").unwrap_or(path);
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, kind, bytes)| (*kind, *bytes))
}

/// The names of the assets, for listing and tests.
pub fn names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(name, _, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_found_by_path() {
        let (kind, page) = get("/").unwrap();
        assert!(kind.starts_with("text/html"));
        assert_eq!(get("/index.html").unwrap().1, page);
        assert!(get("/assets/app.js").unwrap().0.starts_with("text/javascript"));
        assert!(get("/assets/style.css?v=1").unwrap().0.starts_with("text/css"));
        assert_eq!(get("app.js"), get("/assets/app.js"));
        for missing in ["/assets/../Cargo.toml", "/assets/", "/nope.js", "/assets/app.js/x"] {
            assert_eq!(get(missing), if missing == "/assets/" { get("/") } else { None }, "{missing}");
        }
    }

    #[test]
    fn the_page_fetches_nothing_from_elsewhere() {
        for name in names() {
            let text = std::str::from_utf8(get(name).unwrap().1).unwrap();
            for line in text.lines() {
                // Only the SVG namespace may name another host, and it is
                // never fetched.
                let external = ["http://", "https://", "//cdn", "@import"]
                    .iter()
                    .any(|p| line.contains(p) && !line.contains("http://www.w3.org/2000/svg"));
                assert!(!external, "{name} reaches outside lab: {line}");
            }
        }
        let page = std::str::from_utf8(get("/").unwrap().1).unwrap();
        for file in ["/assets/app.js", "/assets/style.css"] {
            assert!(page.contains(file), "the page loads {file}");
        }
    }

    #[test]
    fn the_script_puts_server_text_in_as_text() {
        let script = std::str::from_utf8(get("/assets/app.js").unwrap().1).unwrap();
        // Machine names, errors and messages come from the fleet: never markup.
        assert!(
            !script.contains("innerHTML") && !script.contains("outerHTML") && !script.contains("insertAdjacentHTML")
        );
        assert!(!script.contains("eval(") && !script.contains("new Function"));
    }
}
