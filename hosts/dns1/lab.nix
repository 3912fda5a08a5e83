import ../resolver-lab.nix { rebootOrder = 1; }
