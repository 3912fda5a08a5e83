//! "Did you mean …?": the known names nearest to a mistyped one.

/// Up to three of `candidates` close to `name`, nearest first (ties by name).
/// Close means a small edit distance for its length, or sharing a prefix of
/// at least three characters.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != name)
        .filter_map(|c| {
            let distance = strsim::damerau_levenshtein(name, c);
            let prefix = name.len() >= 3 && (c.starts_with(name) || name.starts_with(c));
            (distance <= limit || prefix).then_some((distance, c))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c.to_string()).collect()
}

/// `; did you mean `a` or `b`?`, or nothing when there is no suggestion.
pub fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|s| format!("`{s}`")).collect();
            format!("; did you mean {} or `{last}`?", init.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_prefixes() {
        let names = ["web-01", "web-02", "db-01", "cache"];
        assert_eq!(nearest("web-1", names), vec!["web-01", "web-02"]);
        assert_eq!(nearest("dbb-01", names), vec!["db-01"]);
        assert!(nearest("zzzzzz", names).is_empty());
        assert_eq!(did_you_mean(&nearest("web-1", names)), "; did you mean `web-01` or `web-02`?");
    }
}
