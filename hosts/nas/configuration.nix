# Storage for the desktop and the backups.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "nas";
  networking.hostId = "8425e349";

  boot.supportedFilesystems = [ "zfs" ];
  services.nfs.server = {
    enable = true;
    exports = "/srv/share 192.168.10.0/24(rw,sync,no_subtree_check)";
  };
  services.samba.enable = true;
  networking.firewall.allowedTCPPorts = [ 2049 445 ];

  lab.machine = import ./lab.nix;
}
