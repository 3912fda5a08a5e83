//! Flake references as users type them for lab.
//!
//! lab reads every `nixosConfigurations.<name>` of a flake, so it takes a
//! flake, not an attribute of one. nixos-rebuild and deploy-rs take
//! `--flake .#` (an empty attribute: the whole flake, or the host's own
//! name) and `.#web1`; lab accepts the first as the flake itself and
//! refuses the second, saying how to pick machines instead.

/// A flake reference that names an attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--flake {reference}: lab reads every nixosConfigurations of the flake, so it takes no attribute (#{attribute}); pass --flake {flake} and select machines with --on{hint}")]
pub struct AttributeGiven {
    /// The reference as given.
    pub reference: String,
    /// The flake part.
    pub flake: String,
    /// What followed `#`.
    pub attribute: String,
    /// ` NAME` when the attribute is one machine's name, else empty.
    hint: String,
}

/// The flake `reference` names: unchanged without a `#`; `FLAKE#` (an
/// empty attribute, the habit from nixos-rebuild and deploy-rs) is
/// `FLAKE`; `FLAKE#ATTR` is an error that says to use `--on`.
pub fn whole_flake(reference: &str) -> Result<&str, AttributeGiven> {
    let Some((flake, attribute)) = reference.split_once('#') else { return Ok(reference) };
    if attribute.is_empty() {
        return Ok(if flake.is_empty() { "." } else { flake });
    }
    let machine = attribute.strip_prefix("nixosConfigurations.").unwrap_or(attribute);
    let hint = if machine.contains(['.', '"']) { String::new() } else { format!(" {machine}") };
    Err(AttributeGiven {
        reference: reference.to_string(),
        flake: if flake.is_empty() { ".".into() } else { flake.to_string() },
        attribute: attribute.to_string(),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_attribute_is_the_flake_itself() {
        assert_eq!(whole_flake(".#"), Ok("."));
        assert_eq!(whole_flake("#"), Ok("."));
        assert_eq!(whole_flake("/srv/fleet#"), Ok("/srv/fleet"));
        assert_eq!(whole_flake("github:me/fleet#"), Ok("github:me/fleet"));
        assert_eq!(whole_flake("git+https://h/x?ref=main#"), Ok("git+https://h/x?ref=main"));
        assert_eq!(whole_flake("."), Ok("."));
    }

    #[test]
    fn an_attribute_says_to_select_with_on() {
        let err = whole_flake(".#web1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--flake .#web1: lab reads every nixosConfigurations of the flake, so it takes no attribute (#web1); pass --flake . and select machines with --on web1"
        );
        let err = whole_flake("/srv/f#nixosConfigurations.dns1").unwrap_err();
        assert!(err.to_string().ends_with("pass --flake /srv/f and select machines with --on dns1"), "{err}");
        let err = whole_flake(".#packages.x86_64-linux.default").unwrap_err();
        assert!(err.to_string().ends_with("select machines with --on"), "{err}");
    }
}
