# Resolver 1 of 2: never down together with its twin.
{ ... }:
{
  imports = [ ../common.nix ../resolver.nix ];
  networking.hostName = "dns1";
  lab.machine = import ./lab.nix;
}
