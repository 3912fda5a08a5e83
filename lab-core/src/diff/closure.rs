//! Reading a system's closure where it lives: the running system's on its
//! machine (over the machine's executor: only names and sizes cross the
//! connection, never the closure), the new system's in the local store.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::exec::{tail, Cmd, Executor};

use super::DiffError;

/// How long reading one closure may take (a NixOS closure is a few
/// thousand paths: two queries of the machine's Nix database).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

pub use crate::remote::BOOT_PARTS;

/// One round trip: the system `$1` resolves to, its kernel, initrd and
/// kernel modules (then those of each further argument: the booted
/// system), a `--` line, its closure (`nix-store --query --requisites`), a
/// `--` line, each path's NAR size in the same order. `-` stands for a
/// missing part. nix-store is the machine's own system's, else the one in
/// its PATH. Store paths hold no whitespace, so `$paths` splits into them.
const CLOSURE_SCRIPT: &str = r#"root=$1; shift
ns=/run/current-system/sw/bin/nix-store
[ -x "$ns" ] || ns=$(command -v nix-store) || { echo "lab: no nix-store in /run/current-system/sw/bin nor in the PATH" >&2; exit 127; }
sys=$(readlink -e "$root") || { echo "lab: $root does not exist" >&2; exit 3; }
echo "$sys"
for s in "$sys" "$@"; do
  for p in kernel initrd kernel-modules; do readlink -e "$s/$p" || echo -; done
done
paths=$("$ns" --query --requisites "$sys") || exit 1
echo --
printf '%s\n' "$paths"
echo --
"$ns" --query --size $paths"#;

/// A system's closure: every store path with its NAR size, and where its
/// boot parts point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Closure {
    /// The system's store path.
    pub system: String,
    /// Kernel, initrd and kernel modules (as [`BOOT_PARTS`]): their store
    /// paths, `None` when the system has none.
    pub boot: [Option<String>; 3],
    /// The boot parts of the booted system, when asked for and known.
    pub booted: Option<[Option<String>; 3]>,
    /// Every path of the closure with its NAR size in bytes.
    pub paths: BTreeMap<String, u64>,
}

impl Closure {
    /// The closure's total NAR size in bytes.
    pub fn size(&self) -> u64 {
        self.paths.values().sum()
    }
}

/// Reads the closure of `root` (a store path or a link to one, such as
/// `/run/current-system`) through `exec`, and with `booted` the boot parts
/// of that system too.
pub async fn read(exec: &dyn Executor, root: &str, booted: Option<&str>) -> Result<Closure, DiffError> {
    let mut argv = vec!["sh".to_string(), "-c".into(), CLOSURE_SCRIPT.into(), "lab-closure".into(), root.into()];
    argv.extend(booted.map(String::from));
    // Not run_ok: its error would quote the whole script.
    let out = exec.run(&Cmd::new(argv).timeout(READ_TIMEOUT)).await?;
    if !out.success() {
        let status = out.status.map_or("killed by a signal".to_string(), |c| format!("exit {c}"));
        let stderr = tail(&out.stderr, 400);
        let message = if stderr.is_empty() { status } else { format!("{stderr} ({status})") };
        return Err(DiffError::Query { machine: exec.machine().into(), root: root.into(), message });
    }
    parse(exec.machine(), root, booted.is_some(), &out.stdout_text())
}

/// Parses what [`CLOSURE_SCRIPT`] printed.
pub(super) fn parse(machine: &str, root: &str, with_booted: bool, text: &str) -> Result<Closure, DiffError> {
    let malformed = |what: String| DiffError::Malformed { machine: machine.into(), root: root.into(), what };
    let mut sections = text.split("\n--\n");
    let (head, paths, sizes) = match (sections.next(), sections.next(), sections.next()) {
        (Some(h), Some(p), Some(s)) => (h, p, s),
        _ => return Err(malformed("its output has no closure section".into())),
    };
    let head: Vec<&str> = head.lines().map(str::trim).collect();
    let want = if with_booted { 7 } else { 4 };
    if head.len() != want {
        return Err(malformed(format!("{} header lines, expected {want}", head.len())));
    }
    let part = |line: &str| (line != "-" && !line.is_empty()).then(|| line.to_string());
    let parts = |at: usize| [part(head[at]), part(head[at + 1]), part(head[at + 2])];
    let paths: Vec<&str> = paths.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let sizes: Vec<&str> = sizes.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if paths.len() != sizes.len() || paths.is_empty() {
        return Err(malformed(format!("{} paths but {} sizes", paths.len(), sizes.len())));
    }
    let mut closure = BTreeMap::new();
    for (path, size) in paths.iter().zip(&sizes) {
        let size = size.parse::<u64>().map_err(|_| malformed(format!("size {size:?} of {path} is not a number")))?;
        closure.insert(path.to_string(), size);
    }
    Ok(Closure { system: head[0].to_string(), boot: parts(1), booted: with_booted.then(|| parts(4)), paths: closure })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_output_reads_as_a_closure() {
        let text = "/nix/store/s-sys\n/nix/store/k-linux/bzImage\n-\n/nix/store/m-mods\n/nix/store/k0-linux/bzImage\n-\n/nix/store/m-mods\n--\n/nix/store/s-sys\n/nix/store/a-hello-1\n--\n100\n20\n";
        let c = parse("web", "/run/current-system", true, text).unwrap();
        assert_eq!(c.system, "/nix/store/s-sys");
        assert_eq!(c.boot, [Some("/nix/store/k-linux/bzImage".into()), None, Some("/nix/store/m-mods".into())]);
        assert_eq!(c.booted.as_ref().unwrap()[0].as_deref(), Some("/nix/store/k0-linux/bzImage"));
        assert_eq!(c.size(), 120);
        assert_eq!(c.paths.len(), 2);
    }

    #[test]
    fn output_cut_short_is_an_error_naming_the_machine() {
        let e =
            parse("web", "/run/current-system", false, "/nix/store/s\n-\n-\n-\n--\n/nix/store/s\n--\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("web") && text.contains("1 paths but 0 sizes"), "{text}");
        let e = parse("web", "/run/current-system", false, "").unwrap_err();
        assert!(e.to_string().contains("no closure section"), "{e}");
    }
}
