//! The fleet-source options every fleet command shares, and loading.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use lab_core::eval::{self, EvalOptions, Evaluation, Source, SourceSpec};

/// Where the fleet comes from (default: the flake in the current directory).
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// A flake reference; every nixosConfigurations.NAME is a machine.
    #[arg(long, global = true, value_name = "REF", conflicts_with_all = ["file", "hosts_dir", "json_file"])]
    pub flake: Option<String>,
    /// A Nix file evaluating to an attrset holding nixosConfigurations.
    #[arg(long, global = true, value_name = "PATH", conflicts_with_all = ["hosts_dir", "json_file"])]
    pub file: Option<PathBuf>,
    /// A directory of NAME/configuration.nix (needs --nixpkgs).
    #[arg(long, global = true, value_name = "DIR", requires = "nixpkgs", conflicts_with = "json_file")]
    pub hosts_dir: Option<PathBuf>,
    /// The nixpkgs path used with --hosts-dir.
    #[arg(long, global = true, value_name = "PATH")]
    pub nixpkgs: Option<PathBuf>,
    /// The JSON contract itself (what `lab machines --json` prints; `-` reads standard input).
    #[arg(long, global = true, value_name = "PATH")]
    pub json_file: Option<PathBuf>,
    /// Evaluate again even when the cached result is current.
    #[arg(long, global = true)]
    pub refresh: bool,
    /// Cache --file and --hosts-dir evaluations too (flakes are always cached: nix evaluates them purely).
    /// The key is the files beside the source (a --file's directory and its git tree's tracked files, a
    /// --hosts-dir's parent, --nixpkgs' .nix files); it does not see builtins.getEnv, files read from
    /// elsewhere (absolute paths, untracked files), what NIX_PATH entries point to, downloads without a
    /// hash (fetchTarball, fetchGit), builtins.currentTime or non-.nix files of --nixpkgs: after changing
    /// one of those, pass --refresh.
    #[arg(long, global = true)]
    pub cache_impure: bool,
    /// A nix worker whose memory passes this many MB after a host is replaced by a fresh one for the rest
    /// of its hosts (as nix-eval-jobs' --max-memory-size).
    #[arg(long, global = true, value_name = "MB", default_value_t = lab_core::eval::DEFAULT_WORKER_MEMORY >> 20,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub eval_worker_memory: u64,
    /// Stop evaluating after this many seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 600.0)]
    pub eval_timeout: f64,
    /// nix processes at once, each reading a share of the fleet (0: one per core).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub eval_jobs: usize,
}

impl FleetArgs {
    /// The source these options name.
    pub fn source(&self) -> Result<Source> {
        let spec = SourceSpec {
            flake: self.flake.clone(),
            file: self.file.clone(),
            hosts_dir: self.hosts_dir.clone(),
            nixpkgs: self.nixpkgs.clone(),
            json_file: self.json_file.clone(),
        };
        Ok(spec.resolve(&std::env::current_dir()?)?)
    }

    /// How to evaluate: these options, and the cache under the XDG cache dir.
    pub fn options(&self) -> Result<EvalOptions> {
        let timeout = Duration::try_from_secs_f64(self.eval_timeout)
            .map_err(|_| anyhow::anyhow!("--eval-timeout {} is not a number of seconds", self.eval_timeout))?;
        Ok(EvalOptions {
            jobs: self.eval_jobs,
            timeout: Some(timeout),
            cache_dir: eval::default_cache_dir(),
            refresh: self.refresh,
            cache_impure: self.cache_impure,
            worker_memory: Some(self.eval_worker_memory << 20),
            ..EvalOptions::default()
        })
    }

    /// Reads the fleet, warning (through tracing, so `-q` silences it) about
    /// configurations without the lab module, except those the fleet's
    /// `lab.unmanaged` names as unmanaged on purpose. A fleet that manages
    /// no configuration ends lab with exit 1 (the fleet is not clean, see
    /// [`crate::exit::Exit::of_error`]), not 2 (lab could not run).
    pub fn load(&self) -> Result<Evaluation> {
        let mut options = self.options()?;
        let progress = Progress::on_terminal();
        options.observer = progress.as_ref().map(Progress::observer);
        let evaluation = eval::evaluate(&self.source()?, &options);
        drop(progress);
        let evaluation = evaluation?;
        for name in evaluation.unexpected_unmanaged() {
            tracing::warn!(
                "`{}` has no lab module (unmanaged); import nix/modules/lab-machine.nix to manage it, \
                 or list it in the fleet's lab.unmanaged if that is on purpose",
                lab_core::printable::printable(name)
            );
        }
        Ok(evaluation)
    }
}

/// "evaluating: 37 hosts read (last: web)" on one line of a terminal's
/// stderr while nix reads the fleet, erased when the read ends.
struct Progress(std::sync::Arc<std::sync::Mutex<usize>>);

impl Progress {
    fn on_terminal() -> Option<Progress> {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal().then(|| Progress(Default::default()))
    }

    fn observer(&self) -> eval::Observer {
        let count = self.0.clone();
        eval::Observer::new(move |name, _| {
            let Ok(mut count) = count.lock() else { return };
            *count += 1;
            let name = lab_core::printable::printable(name);
            eprint!("\r\x1b[2Kevaluating: {count} hosts read (last: {name})");
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.0.lock().is_ok_and(|count| *count > 0) {
            eprint!("\r\x1b[2K");
        }
    }
}
