# What every example machine shares: the lab module, ssh for lab, and the
# minimum a NixOS system needs to build.
{ lib, ... }:
{
  imports = [ ../nix/modules/lab-machine.nix ];

  services.openssh.enable = true;
  boot.loader.grub.device = lib.mkDefault "nodev";
  fileSystems."/" = lib.mkDefault { device = "/dev/disk/by-label/nixos"; fsType = "ext4"; };
  networking.domain = "lab.home";
  time.timeZone = "UTC";
  system.stateVersion = "24.11";
}
