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

/// True when `url` carries a credential: a user or password, or a
/// secret-looking query value.
pub(crate) fn url_has_secret(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    !parsed.username().is_empty() || parsed.password().is_some() || parsed.query_pairs().any(|(k, _)| is_secret(&k))
}

fn is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| lower == *s || lower.ends_with(&format!("_{s}")) || lower.ends_with(&format!("-{s}")))
}

/// Request headers whose values are credentials whatever they are called.
const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// True when a header called `name` carries a credential.
pub(crate) fn is_secret_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str()) || is_secret(&name) || name.contains("token")
}

/// `Name: value` with the value replaced by `***` when the header carries a
/// credential; anything else comes back unchanged.
pub fn redact_header(header: &str) -> String {
    match header.split_once(':') {
        Some((name, value)) if is_secret_header(name) && !value.trim().is_empty() => format!("{name}: ***"),
        _ => header.to_string(),
    }
}

/// A command line with its secrets redacted: URL credentials,
/// `--password VALUE` and `--api-key=VALUE`-style arguments, credential
/// headers (`-H 'Authorization: …'`) and the password of `-u user:password`.
pub fn redact_argv<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut previous = "";
    for arg in argv.iter().map(AsRef::as_ref) {
        out.push(redact_word(previous, arg));
        previous = arg;
    }
    out
}

/// One argument, knowing the one before it.
fn redact_word(previous: &str, arg: &str) -> String {
    let flag = |a: &str| a.starts_with('-') && is_secret(a.trim_start_matches('-'));
    if flag(previous) {
        return "***".to_string();
    }
    if matches!(previous, "-H" | "--header") {
        return redact_header(arg);
    }
    if matches!(previous, "-u" | "--user" | "--proxy-user") {
        if let Some((user, _)) = arg.split_once(':') {
            return format!("{user}:***");
        }
    }
    if let Some((name, _)) = arg.split_once('=') {
        if flag(name) {
            return format!("{name}=***");
        }
    }
    if arg.contains("://") {
        return redact_url(arg);
    }
    arg.to_string()
}

/// Free text (a command written as one string, a command's output, an error
/// message) with its secrets redacted word by word, as [`redact_argv`] does;
/// a credential header's value is redacted up to its closing quote (or the
/// end of the line).
/// Quotes around a redacted word are kept.
pub fn redact_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let suspicious = text.contains("://")
        || SECRET_PARAMS.iter().any(|s| lower.contains(s))
        || SECRET_HEADERS.iter().any(|h| lower.contains(h))
        || lower.contains("-u");
    if !suspicious {
        return text.to_string();
    }
    text.split('\n').map(redact_line).collect::<Vec<_>>().join("\n")
}

fn redact_line(line: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut previous = String::new();
    let mut hiding_header = false;
    for word in line.split(' ') {
        let quotes: &[char] = &['\'', '"'];
        let bare = word.trim_matches(quotes);
        let redacted = if hiding_header {
            if bare.is_empty() {
                word.to_string()
            } else {
                requote(word, bare, "***")
            }
        } else {
            let r = redact_word(&previous, bare);
            if r == bare {
                word.to_string()
            } else {
                requote(word, bare, &r)
            }
        };
        // `Authorization: Bearer X`: everything after the name is the
        // secret, up to the quote that closes the header or the line's end.
        if hiding_header && word.ends_with(quotes) {
            hiding_header = false;
        } else if !hiding_header && bare.ends_with(':') && is_secret_header(bare.trim_end_matches(':')) {
            hiding_header = true;
        }
        out.push(redacted);
        if !bare.is_empty() {
            previous = bare.to_string();
        }
    }
    out.join(" ")
}

/// `word` with `bare` (its text inside any quotes) replaced by `with`.
fn requote(word: &str, bare: &str, with: &str) -> String {
    match word.find(bare) {
        Some(at) if !bare.is_empty() => format!("{}{with}{}", &word[..at], &word[at + bare.len()..]),
        _ => with.to_string(),
    }
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
    fn headers_and_user_passwords_lose_their_secrets() {
        let argv = ["curl", "--header", "Authorization: Bearer abc", "-H", "Accept: text/plain", "-u", "ops:pw"];
        assert_eq!(
            redact_argv(&argv),
            ["curl", "--header", "Authorization: ***", "-H", "Accept: text/plain", "-u", "ops:***"]
        );
        assert_eq!(redact_header("X-Api-Key: k"), "X-Api-Key: ***");
        assert_eq!(redact_header("X-Auth-Token: k"), "X-Auth-Token: ***");
    }

    #[test]
    fn text_loses_its_secrets_and_keeps_the_rest() {
        assert_eq!(
            redact_text("curl -fsS 'https://u:pw@h/x?token=t' --password hunter2 && echo ok"),
            "curl -fsS 'https://u:***@h/x?token=***' --password *** && echo ok"
        );
        assert_eq!(
            redact_text("curl -H \"Authorization: Bearer abc def\" http://h/\nnext line"),
            "curl -H \"Authorization: *** *** ***\" http://h/\nnext line"
        );
        assert_eq!(redact_text("systemctl is-active nginx"), "systemctl is-active nginx");
        assert_eq!(redact_text("--api-key=abc"), "--api-key=***");
    }

    #[test]
    fn argv_loses_its_secrets() {
        let argv: Vec<String> =
            ["curl", "--password", "hunter2", "--api-key=abc", "http://u:p@h/"].map(String::from).into();
        assert_eq!(redact_argv(&argv), ["curl", "--password", "***", "--api-key=***", "http://u:***@h/"]);
    }
}
