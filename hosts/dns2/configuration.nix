# Resolver 2 of 2: never down together with its twin.
{ ... }:
{
  imports = [ ../common.nix ../resolver.nix ];
  networking.hostName = "dns2";
  lab.machine = import ./lab.nix;
}
