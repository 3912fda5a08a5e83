import ../resolver-lab.nix { rebootOrder = 2; }
