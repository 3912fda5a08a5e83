# The edge router: everything else needs it, so it goes first and alone.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "router";

  boot.kernel.sysctl."net.ipv4.ip_forward" = 1;
  networking.nat = { enable = true; externalInterface = "wan0"; internalInterfaces = [ "lan0" ]; };
  services.kea.dhcp4 = {
    enable = true;
    settings = {
      interfaces-config.interfaces = [ "lan0" ];
      subnet4 = [{ id = 1; subnet = "192.168.10.0/24"; pools = [{ pool = "192.168.10.100 - 192.168.10.200"; }]; }];
    };
  };

  lab.machine = import ./lab.nix;
}
