# The original design's machine: nginx + postgresql, rebooted first.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "sleeper-service";

  services.nginx = {
    enable = true;
    virtualHosts.default.locations."/health".return = "200 ok";
  };
  services.postgresql.enable = true;
  networking.firewall.allowedTCPPorts = [ 80 5432 ];

  lab.machine = import ./lab.nix;
}
