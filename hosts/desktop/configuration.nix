# A workstation: last in line, its downtime bothers nobody but its owner.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "desktop";

  services.xserver.enable = true;
  services.displayManager.sddm.enable = true;
  services.desktopManager.plasma6.enable = true;
  services.pipewire.enable = true;

  lab.machine = import ./lab.nix;
}
