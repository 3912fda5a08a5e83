# lab's fleet evaluation: reads every selected configuration's
# `config.lab.metadata` (defined once, by nix/modules/lab-machine.nix) in one
# nix process.
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
#   only      a JSON list of names to read instead of a chunk, unguarded, so
#             nix reports a failing host's own error and position
#   list      "1": only list the names
#
# Result: { NAME = { metadata = {...}; } | { unmanaged = true; } | { failed = true; }; }
# `failed` marks a host whose error builtins.tryEval caught (throw, assert);
# errors tryEval cannot catch (syntax errors, missing attributes) fail the
# whole process and lab falls back to reading hosts one by one.
{ kind, target, nixpkgs ? "", chunk ? "0", chunks ? "1", only ? "", list ? "" }:
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

  names = attrNames configurations;
  n = fromJSON chunks;
  k = fromJSON chunk;
  inChunk = i: i - (i / n) * n == k;
  chunkNames = map (elemAt names) (filter inChunk (genList (i: i) (length names)));

  read = name:
    let config = configurations.${name}.config; in
    if config ? lab.metadata then { metadata = config.lab.metadata; } else { unmanaged = true; };

  guarded = name:
    let r = tryEval (let v = read name; in deepSeq v v); in
    if r.success then r.value else { failed = true; };

  readAll = f: selected: listToAttrs (map (name: { inherit name; value = f name; }) selected);
in
if list == "1" then names
else if only != "" then readAll read (fromJSON only)
else readAll guarded chunkNames
