//! Keeping secrets out of logs, events and the journal.

/// Query parameters whose values are treated as secrets.
const SECRET_PARAMS: [&str; 8] = ["token", "password", "passwd", "secret", "key", "apikey", "api_key", "auth"];

/// `url` with its password and secret-looking query values replaced by `***`.
/// Text that is not a URL comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return url.to_string() };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(k, _)| is_secret(k)) {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (k, v) in &pairs {
            query.append_pair(k, if is_secret(k) { "***" } else { v });
        }
    }
    parsed.to_string()
}

fn is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| lower == *s || lower.ends_with(&format!("_{s}")) || lower.ends_with(&format!("-{s}")))
}

/// A command line with URL credentials and `--password VALUE`-style
/// arguments redacted.
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
            continue;
        }
        let flag = arg.trim_start_matches('-');
        if arg.starts_with('-') && is_secret(flag.split('=').next().unwrap_or_default()) {
            match arg.split_once('=') {
                Some((name, _)) => out.push(format!("{name}=***")),
                None => {
                    out.push(arg.clone());
                    hide_next = true;
                }
            }
        } else if arg.contains("://") {
            out.push(redact_url(arg));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(redact_url("https://user:hunter2@hooks.example/x"), "https://user:***@hooks.example/x");
        assert_eq!(redact_url("https://h/x?token=abc&team=ops"), "https://h/x?token=***&team=ops");
        assert_eq!(redact_url("https://h/x?team=ops"), "https://h/x?team=ops");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn argv_loses_its_secrets() {
        let argv: Vec<String> =
            ["curl", "--password", "hunter2", "--api-key=abc", "http://u:p@h/"].map(String::from).into();
        assert_eq!(redact_argv(&argv), ["curl", "--password", "***", "--api-key=***", "http://u:***@h/"]);
    }
}
