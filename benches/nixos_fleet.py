#!/usr/bin/env python3
"""Generates a fleet whose hosts each cost what a NixOS host costs to evaluate.

    benches/nixos_fleet.py OUT_DIR --hosts N [--modules M] [--broken NAME]

Every host is `lib.evalModules` (nixpkgs' real lib, $LAB_NIXPKGS_LIB or the
pinned copy beside the project) over the same generated module tree of M
modules (default 1,500, the size of NixOS's module list), lab's own module
(nix/modules/lab-machine.nix) and the few NixOS options it reads. Each
generated module declares typed options with defaults (bool, port, str,
nullOr, attrsOf oneOf, listOf) and sets config under `mkIf`, some of it into
its neighbours' options, so the module system merges, type-checks and
resolves priorities as it does for NixOS.

OUT_DIR gets:
  fleet.nix     { nixosConfigurations = ...; } for `lab --file`
  flake.nix     the same fleet as a flake whose inputs are local paths
                (nixpkgs' lib and lab's nix/ directory; `nix flake lock`
                pins them; nothing is fetched from the network)
  modules/      the module tree (list.nix lists it)
  hosts/NAME.nix  each host's own settings
  stub.nix      NixOS options lab's module reads
With --broken NAME, that host's file has a syntax error.
"""

import argparse
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def module(i, count):
    name = f"m{i:04d}"
    prev = f"m{(i - 1) % count:04d}"
    nxt = f"m{(i + 1) % count:04d}"
    return f"""{{ config, lib, ... }}:
let
  inherit (lib) mkOption mkIf mkDefault mkMerge types;
  cfg = config.gen.{name};
in
{{
  options.gen.{name} = {{
    enable = mkOption {{ type = types.bool; default = {"true" if i % 3 == 0 else "false"}; description = "Enable {name}."; }};
    port = mkOption {{ type = types.port; default = {1024 + i}; description = "Port of {name}."; }};
    user = mkOption {{ type = types.str; default = "{name}"; description = "User of {name}."; }};
    package = mkOption {{ type = types.nullOr types.str; default = null; }};
    settings = mkOption {{ type = types.attrsOf (types.oneOf [ types.str types.int types.bool ]); default = {{ }}; }};
    extraFlags = mkOption {{ type = types.listOf types.str; default = [ ]; }};
  }};
  config = mkMerge [
    (mkIf cfg.enable {{
      gen.{name}.settings = {{ listen = "0.0.0.0:${{toString cfg.port}}"; workers = {i % 8 + 1}; verbose = false; }};
      gen.{name}.extraFlags = [ "--user=${{cfg.user}}" "--port=${{toString cfg.port}}" ];
      gen.{nxt}.settings.peer{i} = "${{cfg.user}}";
      gen.{prev}.extraFlags = [ "--peer={name}" ];
    }})
    (mkIf (!cfg.enable) {{
      gen.{name}.package = mkDefault "{name}-disabled";
    }})
  ];
}}
"""


def host(i, broken):
    name = f"host-{i:03d}"
    if broken:
        return f"{{ ... }}: {{ networking.hostName = \"{name}\"; lab.machine = {{ role = ; }}; }}\n"
    enabled = " ".join(f"gen.m{(i * 7 + k * 13) % 1500:04d}.enable = true;" for k in range(20))
    deps = "[ ]" if i == 0 else '[ "host-000" ]'
    return f"""{{ config, ... }}:
{{
  networking.hostName = "{name}";
  services.openssh.enable = true;
  {enabled}
  lab.machine = {{
    role = "{["database", "web-server", "worker"][i % 3]}";
    groups = [ "{["core", "frontend", "batch"][i % 3]}" ];
    rebootOrder = {i};
    dependencies = {deps};
    targetHost = "{name}.lab.internal";
    # What a real host's toplevel does: depend on every option's value.
    healthChecks = [ {{ type = "tcp"; port = 22; description = "config ${{builtins.substring 0 12 config.system.checksum}}"; }} ];
  }};
}}
"""


STUB = """{ config, lib, ... }:
{
  # Stands for system.build.toplevel: a value that depends on every option.
  config.system.checksum = builtins.hashString "sha256" (builtins.toJSON config.gen);
  options = {
    system.checksum = lib.mkOption { type = lib.types.str; };
    networking.hostName = lib.mkOption { type = lib.types.str; default = "nixos"; };
    services = lib.mkOption { type = lib.types.attrsOf lib.types.anything; default = { }; };
    environment.etc = lib.mkOption {
      type = lib.types.attrsOf (lib.types.submodule { options.text = lib.mkOption { type = lib.types.str; }; });
      default = { };
    };
    environment.systemPackages = lib.mkOption { type = lib.types.listOf lib.types.package; default = [ ]; };
    assertions = lib.mkOption { type = lib.types.listOf lib.types.anything; default = [ ]; };
  };
}
"""

# The fleet, given nixpkgs' lib and lab's module: shared by fleet.nix and flake.nix.
FLEET = """{ lib, labModule }:
let
  modules = import ./modules/list.nix;
  names = builtins.map (f: builtins.replaceStrings [ ".nix" ] [ "" ] f)
    (builtins.filter (f: lib.hasSuffix ".nix" f) (builtins.attrNames (builtins.readDir ./hosts)));
  build = name: lib.evalModules { modules = [ ./stub.nix labModule (./hosts + "/${name}.nix") ] ++ modules; };
in
lib.genAttrs names build
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--hosts", type=int, required=True)
    parser.add_argument("--modules", type=int, default=1500)
    parser.add_argument("--broken")
    args = parser.parse_args()
    lib = pathlib.Path(os.environ.get("LAB_NIXPKGS_LIB") or ROOT.parent / "shared/nixpkgs-lib/lib").resolve()
    out = pathlib.Path(args.out)
    (out / "modules").mkdir(parents=True, exist_ok=True)
    (out / "hosts").mkdir(exist_ok=True)
    for i in range(args.modules):
        (out / "modules" / f"m{i:04d}.nix").write_text(module(i, args.modules))
    listing = "\n".join(f"  ./m{i:04d}.nix" for i in range(args.modules))
    (out / "modules/list.nix").write_text(f"[\n{listing}\n]\n")
    for i in range(args.hosts):
        name = f"host-{i:03d}"
        (out / "hosts" / f"{name}.nix").write_text(host(i, name == args.broken))
    (out / "stub.nix").write_text(STUB)
    (out / "fleet-of.nix").write_text(FLEET)
    lab_module = ROOT / "nix/modules/lab-machine.nix"
    (out / "fleet.nix").write_text(
        f"{{ nixosConfigurations = import ./fleet-of.nix {{ lib = import {lib}; labModule = {lab_module}; }}; }}\n"
    )
    (out / "flake.nix").write_text(
        f"""{{
  inputs.nixlib = {{ url = "path:{lib.parent}"; flake = false; }};
  inputs.lab = {{ url = "path:{ROOT / 'nix'}"; flake = false; }};
  outputs = {{ self, nixlib, lab }}: {{
    nixosConfigurations = import ./fleet-of.nix {{
      lib = import "${{nixlib}}/lib";
      labModule = "${{lab}}/modules/lab-machine.nix";
    }};
  }};
}}
"""
    )


if __name__ == "__main__":
    main()
