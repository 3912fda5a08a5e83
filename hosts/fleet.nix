# The example fleet as a Nix file lab reads without nixpkgs:
#   lab machines --file hosts/fleet.nix
# Each machine's lab.machine comes from the same hosts/<name>/lab.nix its
# NixOS configuration imports; the module's defaults are filled in here the
# way nix/modules/lab-machine.nix fills them (a test compares the two when
# LAB_NIXPKGS_LIB is set). The services lists mirror each configuration.nix.
#
# lab-core/tests/fixtures/fleets/example.json is this fleet in the JSON
# contract, for tests without nix; regenerate it after a change here:
#   nix-instantiate --eval --strict --json --arg f "$PWD/hosts/fleet.nix" \
#     --expr '{ f }: builtins.mapAttrs (n: c: c.config.lab.metadata) (import f).nixosConfigurations' \
#     | python3 -m json.tool --indent 2 > lab-core/tests/fixtures/fleets/example.json
let
  services = {
    desktop = [ "desktopManager" "displayManager" "openssh" "pipewire" "xserver" ];
    dns1 = [ "openssh" "unbound" ];
    dns2 = [ "openssh" "unbound" ];
    monitoring = [ "grafana" "openssh" "prometheus" ];
    nas = [ "openssh" "samba" ];
    router = [ "openssh" ];
    sleeper-service = [ "nginx" "openssh" "postgresql" ];
  };

  checkDefaults = {
    url = null; port = null; command = null; host = null; expectedStatus = [ "200-299" ];
    headers = { }; tlsVerify = true; timeout = 5; interval = 5; initialDelay = 0;
    successThreshold = 1; failureThreshold = 3; required = true; runOn = "target"; description = null;
  };
  orchestrationDefaults = {
    deployStrategy = "rolling"; rebootDelay = 600; criticalityLevel = "medium";
    healthyDeadline = 300; minHealthyTime = 10; rebootTimeout = 600; confirmTimeout = 30;
    activationTimeout = 240;
  };

  metadata = name: m: {
    inherit (m) role rebootOrder;
    groups = m.groups or [ ];
    dependencies = m.dependencies or [ ];
    healthChecks = map (c: checkDefaults // c) (m.healthChecks or [ ]);
    orchestration = orchestrationDefaults // (m.orchestration or { });
    targetHost = m.targetHost or name;
    targetUser = m.targetUser or "root";
    targetPort = m.targetPort or 22;
    hostname = name;
    services = services.${name};
  };

  machine = name: {
    config = {
      networking.hostName = name;
      lab.metadata = metadata name (import (./. + "/${name}/lab.nix"));
    };
  };
in
{
  nixosConfigurations = builtins.mapAttrs (name: _: machine name) services;
  lab = import ./lab.nix;
}
