//! The dashboard page's files, embedded in the binary.
//!
//! A placeholder until the page (lab-serve/assets/) lands: it replaces this
//! file whole.

const INDEX: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lab</title></head>\n\
<body><h1>lab</h1><p>The dashboard page is not built yet. See <a href=\"/api/status\">/api/status</a>, \
<a href=\"/api/graph\">/api/graph</a>, <a href=\"/api/runs\">/api/runs</a> and <a href=\"/metrics\">/metrics</a>.</p>\
</body></html>\n";

/// The file at `path` (`index.html`, `app.js`, ...) as its content type and bytes.
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "index.html" => Some(("text/html; charset=utf-8", INDEX.as_bytes())),
        _ => None,
    }
}
