# Resolver 1 of 2: never down together with its twin.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "dns1";

  services.unbound = {
    enable = true;
    settings.server = {
      interface = [ "0.0.0.0" ];
      access-control = [ "192.168.10.0/24 allow" ];
    };
  };
  networking.firewall.allowedUDPPorts = [ 53 ];
  networking.firewall.allowedTCPPorts = [ 53 ];

  lab.machine = import ./lab.nix;
}
