# What both DNS resolvers run: unbound for the LAN.
{ ... }:
{
  services.unbound = {
    enable = true;
    settings.server = {
      interface = [ "0.0.0.0" ];
      access-control = [ "192.168.10.0/24 allow" ];
    };
  };
  networking.firewall.allowedUDPPorts = [ 53 ];
  networking.firewall.allowedTCPPorts = [ 53 ];
}
