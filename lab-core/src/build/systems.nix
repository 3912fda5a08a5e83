# lab's build evaluation: each selected machine's system toplevel, as
# derivation and output paths, in one nix process.
#
# Every argument is a string passed with --argstr, never text spliced into
# this file: names and paths are data.
#   kind      "flake" | "file" | "hosts"
#   target    the flake reference, the file, or the hosts directory (absolute)
#   nixpkgs   for "hosts": the nixpkgs whose nixos/lib/eval-config.nix builds a host
#   names     a JSON list of machine names
#
# Result: { NAME = { drv = "..."; out = "..."; }; } (not drvPath/outPath: an
# attrset with outPath would be written as that string).
{ kind, target, names, nixpkgs ? "" }:
let
  topFile = let v = import target; in if builtins.isFunction v then v { } else v;
  host = name: import (/. + "${nixpkgs}/nixos/lib/eval-config.nix") {
    modules = [ (/. + "${target}/${name}/configuration.nix") ];
  };
  configuration = name:
    if kind == "flake" then (builtins.getFlake target).nixosConfigurations.${name}
    else if kind == "file" then topFile.nixosConfigurations.${name}
    else if kind == "hosts" then host name
    else throw "lab: unknown source kind";
  system = name: let t = (configuration name).config.system.build.toplevel; in {
    drv = t.drvPath;
    out = t.outPath;
  };
in
builtins.listToAttrs (map (name: { inherit name; value = system name; }) (builtins.fromJSON names))
