{
  description = "lab: a NixOS-native orchestrator for fleets of NixOS machines";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # Every folder of hosts/ with a configuration.nix is a machine.
      hostNames = builtins.filter (name: builtins.pathExists (./hosts + "/${name}/configuration.nix"))
        (builtins.attrNames (lib.filterAttrs (_: type: type == "directory") (builtins.readDir ./hosts)));
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = "lab";
          version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.version;
          src = lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "lab-cli" ];
          nativeCheckInputs = [ pkgs.nix ];
          nativeBuildInputs = [ pkgs.installShellFiles ];
          postInstall = lib.optionalString (pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform) ''
            installShellCompletion --cmd lab \
              --bash <($out/bin/lab completions bash) \
              --zsh <($out/bin/lab completions zsh) \
              --fish <($out/bin/lab completions fish)
            $out/bin/lab man > lab.1
            installManPage lab.1
          '';
          # Tests that need ssh test hosts or network namespaces cannot run in the sandbox.
          doCheck = false;
          meta.mainProgram = "lab";
        };
      });

      nixosModules = {
        lab-machine = { pkgs, ... }: {
          imports = [ ./nix/modules/lab-machine.nix ];
          lab.machine.agent.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
        lab-orchestrator = { pkgs, ... }: {
          imports = [ ./nix/modules/lab-orchestrator.nix ];
          services.lab-orchestrator.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };
        default = { imports = [ self.nixosModules.lab-machine self.nixosModules.lab-orchestrator ]; };
      };

      nixosConfigurations = lib.genAttrs hostNames (name: lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ (./hosts + "/${name}/configuration.nix") { lab.machine.agent.package = self.packages.x86_64-linux.default; } ];
      });

      # `nix flake check`: every example host's configuration evaluates (its
      # module assertions included) and `lab check` finds the fleet clean.
      checks = forAllSystems (pkgs: {
        example-hosts = pkgs.writeText "example-hosts"
          (builtins.toJSON (lib.mapAttrs (_: c: c.config.system.build.toplevel.drvPath) self.nixosConfigurations));
        lab-check = pkgs.runCommand "lab-check" { nativeBuildInputs = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ]; } ''
          lab --json-file ${pkgs.writeText "fleet.json" (builtins.toJSON (lib.mapAttrs (_: c: c.config.lab.metadata) self.nixosConfigurations))} check
          touch $out
        '';
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.nix pkgs.guile_3_0 pkgs.guile-json pkgs.openssh ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
