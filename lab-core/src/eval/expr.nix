# lab's fleet evaluation: reads every selected configuration's
# `config.lab.metadata` (defined once, by nix/modules/lab-machine.nix) in one
# nix process. A configuration without it but with `config.lab.machine` (the
# original design's module, which defines only that option, or lab.machine
# set directly) gives its `lab.machine` as plain data with the hostname and
# enabled services; lab applies the module's defaults and validation in Rust.
#
# Every argument is a string passed with --argstr, never text spliced into
# this file: names and paths are data.
#   kind      "flake" | "file" | "hosts"
#   target    the flake reference, the file, or the hosts directory (absolute)
#   nixpkgs   for "hosts": the nixpkgs whose nixos/lib/eval-config.nix builds a host
#   chunk, chunks
#             this process reads the hosts whose index in the sorted names is
#             chunk modulo chunks, so N processes split the fleet without a
#             prior listing
#   hosts     a JSON list of names to read as a chunk reads its own (guarded,
#             traced): what a replacement worker reads
#   only      a JSON list of names to read instead of a chunk, unguarded, so
#             nix reports a failing host's own error and position
#   list      "1": only list the names
#
# Result of `only`: { hosts = { NAME = RESULT; }; settings = null; }, where
#   RESULT = { metadata = {...}; }
#          | { machine = {...}; hostname = STR | null; services = [ STR ]; }
#          | { unmanaged = true; } | { failed = true; };
# of a chunk (or `hosts`): { hosts = the number read (each RESULT is traced,
# below);
#           settings = the fleet's `lab` settings (chunk 0 only, else null)
#                      | { failed = true; } when they throw;
#           inputs = a flake's direct inputs' names, with the settings
#                    (lab caches a flake only when flake.lock pins them all); }
# `failed` marks a host whose error builtins.tryEval caught (throw, assert);
# errors tryEval cannot catch (syntax errors, missing attributes) fail the
# whole process; the traces tell lab which host it was.
#
# Progress and results, on stderr (builtins.trace), as each host is read: a
# chunk first traces `lab-hosts [NAMES]`, then each host `lab-start "NAME"`
# as nix begins it and `lab-done ["NAME", RESULT]` once it is read (JSON).
# lab streams them: a process stopped at the timeout, replaced for its
# memory, or killed by an error tryEval cannot catch (a syntax error, a
# missing attribute, abort) has told which hosts it read, with their
# results, and which one it was reading: the broken one.
{ kind, target, nixpkgs ? "", chunk ? "0", chunks ? "1", hosts ? "", only ? "", list ? "" }:
let
  inherit (builtins) attrNames filter fromJSON genList length elemAt listToAttrs tryEval deepSeq;

  topFile = let v = import target; in if builtins.isFunction v then v { } else v;

  hostsDir =
    let
      entries = builtins.readDir target;
      configuration = name: /. + "${target}/${name}/configuration.nix";
      isHost = name: entries.${name} == "directory" && builtins.pathExists (configuration name);
      build = name: import (/. + "${nixpkgs}/nixos/lib/eval-config.nix") { modules = [ (configuration name) ]; };
    in
    listToAttrs (map (name: { inherit name; value = build name; }) (filter isHost (attrNames entries)));

  configurations =
    if kind == "flake" then (builtins.getFlake target).nixosConfigurations
    else if kind == "file" then topFile.nixosConfigurations
    else if kind == "hosts" then hostsDir
    else throw "lab: unknown source kind";

  # Fleet-wide settings: the flake's `lab` output, a file's top-level `lab`,
  # or hosts/lab.nix.
  settingsOf =
    if kind == "flake" then (builtins.getFlake target).lab or { }
    else if kind == "file" then topFile.lab or { }
    else let f = /. + "${target}/lab.nix"; in if builtins.pathExists f then import f else { };
  settings =
    let r = tryEval (deepSeq settingsOf settingsOf); in
    if r.success then r.value else { failed = true; };

  inputs =
    if kind != "flake" then [ ]
    else let r = tryEval (attrNames ((builtins.getFlake target).inputs or { })); in
    if r.success then r.value else [ ];

  names = attrNames configurations;
  n = fromJSON chunks;
  k = fromJSON chunk;
  inChunk = i: i - (i / n) * n == k;
  chunkNames =
    if hosts != "" then fromJSON hosts
    else map (elemAt names) (filter inChunk (genList (i: i) (length names)));

  # lab.machine as plain data: submodule values may carry the module
  # system's own `_module` (functions, which JSON cannot hold).
  plain = v:
    if builtins.isAttrs v then builtins.mapAttrs (_: plain) (removeAttrs v [ "_module" ])
    else if builtins.isList v then map plain v
    else v;

  # As nix/modules/lab-machine.nix computes `services`: reading some
  # services.* on a real NixOS system throws (removed or renamed options);
  # such a service counts as not enabled.
  enabledServices = config:
    let
      services = config.services or { };
      isEnabled = name:
        let r = tryEval (let v = services.${name}; in builtins.isAttrs v && (v.enable or false) == true); in
        r.success && r.value;
    in
    if builtins.isAttrs services then filter isEnabled (attrNames services) else [ ];

  read = name:
    let config = configurations.${name}.config; in
    if config ? lab.metadata then { metadata = config.lab.metadata; }
    else if config ? lab.machine then {
      machine = plain config.lab.machine;
      hostname = config.networking.hostName or null;
      services = enabledServices config;
    }
    else { unmanaged = true; };

  guarded = name:
    let r = tryEval (let v = read name; in deepSeq v v); in
    if r.success then r.value else { failed = true; };

  # `seq` forces the guarded host (its tryEval of a deepSeq: the whole
  # read) before `lab-done` is traced.
  traced = name:
    let v = guarded name; in
    builtins.trace "lab-start ${builtins.toJSON name}" (builtins.seq v (builtins.trace "lab-done ${builtins.toJSON [ name v ]}" v));

  readAll = f: selected: listToAttrs (map (name: { inherit name; value = f name; }) selected);
in
if list == "1" then names
# `only = "[]"` reads no host: the settings alone.
else if only == "[]" then { hosts = { }; inherit settings inputs; }
else if only != "" then { hosts = readAll read (fromJSON only); settings = null; }
else {
  # The results went to stderr; here only a count, so nothing is printed twice.
  hosts = builtins.trace "lab-hosts ${builtins.toJSON chunkNames}" (builtins.foldl' (count: name: builtins.seq (traced name) (count + 1)) 0 chunkNames);
  settings = if k == 0 && hosts == "" then settings else null;
  inputs = if k == 0 && hosts == "" then inputs else null;
}
