# A lab-e2e test fleet, in the shape `lab --file` reads. Generated data
# (names, metadata, system knobs) comes from ./fleet.json; nothing from it is
# spliced into expression text. ./system-builder.sh is the stand-in hosts'
# builder or the systemd hosts' (which installs ./switch-to-configuration.sh).
let
  fleet = builtins.fromJSON (builtins.readFile ./fleet.json);
  system = builtins.currentSystem;

  # A store path holding one file, so kernels, initrds and module sets with
  # the same content share a store path, as on NixOS.
  part = name: file: content: derivation {
    inherit name system file content;
    builder = "/bin/sh";
    args = [ "-c" "PATH=/bin:/usr/bin; mkdir $out; printf '%s\\n' \"$content\" > $out/$file" ];
  };

  toplevel = name: h: derivation ({
    name = "nixos-system-${name}-gen${toString h.generation}";
    inherit system;
    builder = "/bin/sh";
    args = [ ./system-builder.sh ];
    hostName = name;
    switchModel = ./switch-to-configuration.sh;
    inherit (h) generation behaviour activationDelayMs activationExit;
    kernel = part "linux-lab-test" "bzImage" h.kernel;
    initrd = part "initrd-lab-test" "initrd" h.initrd;
    modules = part "kernel-modules-lab-test" "modules" h.kernelModules;
  } // (if (h.packages or [ ]) == [ ] then { } else {
    # Packages in the closure (for lab plan --diff), each NAME-VERSION;
    # the attribute is absent when a test gives none.
    packages = map (p: part "${p.name}-${p.version}" "README" "${p.name} ${p.version}") h.packages;
  }));
in
{
  nixosConfigurations = builtins.mapAttrs (name: h: {
    config = {
      networking.hostName = name;
      lab.metadata = h.metadata;
      system.build.toplevel = toplevel name h;
    };
  }) fleet.hosts;
}
