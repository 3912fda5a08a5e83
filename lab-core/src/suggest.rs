//! "Did you mean …?": the known names nearest to a mistyped one.

/// Names longer than this are not compared by edit distance: it costs the
/// product of the lengths, and a fleet of 10,000-character names would make
/// every typo take minutes. Prefixes still find them.
const MAX_FUZZY_LEN: usize = 128;

/// Up to three of `candidates` nearest to `name`, by name: those at the
/// smallest edit distance when it is small for the name's length, else those
/// that the name is a prefix of (or that are a prefix of it), at least three
/// characters long.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let length = name.chars().count();
    let limit = (length / 3).max(1);
    let mut close: Vec<(usize, &str)> = Vec::new();
    let mut prefixed: Vec<&str> = Vec::new();
    for candidate in candidates {
        let other = candidate.chars().count();
        // The distance is at least the difference in length: skip what
        // cannot be close without computing it.
        let comparable = length.max(other) <= MAX_FUZZY_LEN && length.abs_diff(other) <= limit;
        let distance = if comparable { strsim::damerau_levenshtein(name, candidate) } else { usize::MAX };
        if candidate == name {
            continue;
        } else if distance <= limit {
            close.push((distance, candidate));
        } else if name.len() >= 3 && (candidate.starts_with(name) || name.starts_with(candidate)) {
            prefixed.push(candidate);
        }
    }
    let picked: Vec<&str> = match close.iter().map(|(d, _)| *d).min() {
        Some(best) => close.into_iter().filter(|(d, _)| *d == best).map(|(_, c)| c).collect(),
        None => prefixed,
    };
    let mut picked: Vec<String> = picked.into_iter().map(str::to_string).collect();
    picked.sort();
    picked.dedup();
    picked.truncate(3);
    picked
}

/// " (did you mean `a` or `b`?)", or nothing when there is no suggestion.
pub fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", or_list(suggestions))
    }
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
pub fn or_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_prefixes() {
        let names = ["web-01", "web-02", "db-01", "cache"];
        assert_eq!(nearest("web-1", names), vec!["web-01"]);
        assert_eq!(nearest("web-0", names), vec!["web-01", "web-02"]);
        assert_eq!(nearest("dbb-01", names), vec!["db-01"]);
        assert_eq!(nearest("cache-server", names), vec!["cache"]);
        assert!(nearest("zzzzzz", names).is_empty());
        let long = "x".repeat(10_000);
        let fleet: Vec<String> = (0..50).map(|i| format!("{long}{i}")).collect();
        let started = std::time::Instant::now();
        assert_eq!(nearest(&long, fleet.iter().map(String::as_str)).len(), 3, "prefixes still suggest");
        // A bound against a quadratic blow-up (minutes), not a measurement.
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
        assert_eq!(did_you_mean(&nearest("web-0", names)), " (did you mean `web-01` or `web-02`?)");
    }
}
