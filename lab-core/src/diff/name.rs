//! Store path names as package name and version, the way `nvd` reads them:
//! the version starts at the first `-` followed by a digit
//! (`hello-2.12.1` is `hello` 2.12.1, `nixos-system-web-24.05` is
//! `nixos-system-web` 24.05, `unit-sshd.service` has no version). An output
//! suffix after the version (`-bin`, `-dev`, `-modules`, `-lib64`) is cut off
//! as `nix store diff-closures` does, so a package's outputs group under one
//! version. Only after a version: `linux-lab-test` stays whole.

/// A store path's name split into package name, version and output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName<'a> {
    /// The package name (`hello`).
    pub pname: &'a str,
    /// Its version, empty when the name has none.
    pub version: &'a str,
    /// The output suffix cut off the version (`bin`), empty when none.
    pub output: &'a str,
}

/// The name part of a store path (`/nix/store/HASH-NAME/sub` → `NAME`);
/// a bare name is returned as is.
pub fn store_name(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/nix/store/") else { return path };
    let base = rest.split('/').next().unwrap_or(rest);
    // The hash is 32 characters of nix's base32, then a dash.
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

/// Splits a store path's name (or the path itself) into package name,
/// version and output.
pub fn parse(path_or_name: &str) -> ParsedName<'_> {
    let name = store_name(path_or_name);
    let name = name.strip_suffix(".drv").unwrap_or(name);
    let bytes = name.as_bytes();
    let split = (0..bytes.len()).find(|&i| bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
    let Some(at) = split else { return ParsedName { pname: name, version: "", output: "" } };
    let (pname, version) = (&name[..at], &name[at + 1..]);
    match version.rsplit_once('-') {
        Some((v, out)) if is_output(out) && !v.is_empty() => ParsedName { pname, version: v, output: out },
        _ => ParsedName { pname, version, output: "" },
    }
}

/// An output name as nix's diff-closures recognises one: lowercase letters,
/// or `lib32`/`lib64`.
fn is_output(s: &str) -> bool {
    !s.is_empty() && (s.bytes().all(|b| b.is_ascii_lowercase()) || s == "lib32" || s == "lib64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(name: &str) -> (&str, &str, &str) {
        let p = parse(name);
        (p.pname, p.version, p.output)
    }

    #[test]
    fn names_split_where_nvd_splits_them() {
        assert_eq!(split("hello-2.12.1"), ("hello", "2.12.1", ""));
        assert_eq!(split("nixos-system-web-24.05.20240101.abcdef"), ("nixos-system-web", "24.05.20240101.abcdef", ""));
        assert_eq!(split("unit-sshd.service"), ("unit-sshd.service", "", ""));
        assert_eq!(split("linux-lab-test"), ("linux-lab-test", "", ""));
        assert_eq!(split("python3.11-requests-2.31.0"), ("python3.11-requests", "2.31.0", ""));
        assert_eq!(split("foo-unstable-2023-01-01"), ("foo-unstable", "2023-01-01", ""));
        assert_eq!(split("hello-2.12.1.drv"), ("hello", "2.12.1", ""));
    }

    #[test]
    fn outputs_after_a_version_are_cut_off() {
        assert_eq!(split("linux-6.6.1-modules"), ("linux", "6.6.1", "modules"));
        assert_eq!(split("openssl-3.0.13-bin"), ("openssl", "3.0.13", "bin"));
        assert_eq!(split("glibc-2.39-52-lib64"), ("glibc", "2.39-52", "lib64"));
        // A version whose last part is a number keeps it.
        assert_eq!(split("glibc-2.39-52"), ("glibc", "2.39-52", ""));
    }

    #[test]
    fn store_paths_lose_their_hash_and_sub_path() {
        let path = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-linux-6.6.1/bzImage";
        assert_eq!(store_name(path), "linux-6.6.1");
        assert_eq!(split(path), ("linux", "6.6.1", ""));
        assert_eq!(store_name("/nix/store/short-name"), "short-name");
    }
}
