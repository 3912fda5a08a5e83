# services.lab-orchestrator: the original design's orchestrator loop as one
# command, `lab orchestrate`, run by a hardened oneshot service on a timer.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types optional optionals;
  cfg = config.services.lab-orchestrator;

  argv = [ "${cfg.package}/bin/lab" "orchestrate" "--flake" cfg.flake "--goal" cfg.goal ]
    ++ optional cfg.update "--update"
    ++ optionals (cfg.maxParallel != null) [ "--max-parallel" (toString cfg.maxParallel) ]
    ++ optionals (cfg.sshKeyFile != null) [ "--ssh-option" "IdentityFile=${toString cfg.sshKeyFile}" ]
    ++ cfg.extraArgs;

  # The hooks as lab reads them (the fleet's lab.notify shape; set fields
  # only), passed as LAB_NOTIFY_CONFIG: a file, not ExecStart text, which
  # systemd would expand (`%`, `$`).
  notify = lib.filterAttrs (_: v: v != null) cfg.notify;
  notifyFile = pkgs.writeText "lab-notify.json" (builtins.toJSON notify);
in
{
  options.services.lab-orchestrator = {
    enable = mkEnableOption "the lab orchestrator: deploy and reboot the fleet in dependency order on a schedule";

    package = mkOption {
      type = types.package;
      description = "The lab package (the flake's packages.<system>.default).";
    };

    flake = mkOption {
      type = types.str;
      example = "git+https://git.example.org/homelab";
      description = "The flake whose nixosConfigurations lab orchestrates.";
    };

    schedule = mkOption {
      type = types.str;
      default = "Sat 03:00";
      description = "When to run, as a systemd OnCalendar expression.";
    };

    update = mkOption {
      type = types.bool;
      default = false;
      description = "Run `nix flake update` before orchestrating.";
    };

    goal = mkOption {
      type = types.enum [ "boot" "switch" ];
      default = "boot";
      description = "Activation goal of the deploy; `boot` then reboots the machines that need it, in sequence.";
    };

    maxParallel = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      description = "Machines per wave; null keeps the fleet's setting (default 1).";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Further arguments to `lab orchestrate`.";
    };

    sshKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Private key the orchestrator uses to reach the machines (readable by the lab-orchestrator user).";
    };

    onFailure = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "curl -fsS -d 'lab run failed' https://ntfy.example.org/lab";
      description = "A shell command run when an orchestration run fails.";
    };

    notify = {
      command = mkOption {
        type = types.nullOr (types.listOf types.str);
        default = null;
        example = [ "/run/current-system/sw/bin/lab-notify-matrix" ];
        description = "A program (argv) told of a failed run or a rollback: one JSON event on its standard input. Overrides the fleet's lab.notify.command.";
      };
      webhook = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://ntfy.example.org/lab";
        description = "A URL the JSON event of a failed run or a rollback is POSTed to. Overrides the fleet's lab.notify.webhook.";
      };
      timeout = mkOption {
        type = types.nullOr types.ints.positive;
        default = null;
        description = "Seconds a hook may take before it is stopped (default 10); a hook never stops or slows the run.";
      };
    };

    user = mkOption {
      type = types.str;
      default = "lab-orchestrator";
      description = "The dedicated user the service runs as (DynamicUser cannot hold ssh keys).";
    };
  };

  config = mkIf cfg.enable {
    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.user;
      home = "/var/lib/lab-orchestrator";
      description = "lab orchestrator";
    };
    users.groups.${cfg.user} = { };

    systemd.services.lab-orchestrator = {
      description = "lab: deploy and reboot the fleet in dependency order";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      path = [ config.nix.package pkgs.openssh pkgs.git ];
      environment = {
        XDG_STATE_HOME = "/var/lib/lab-orchestrator";
        XDG_CACHE_HOME = "/var/cache/lab-orchestrator";
        HOME = "/var/lib/lab-orchestrator";
      } // lib.optionalAttrs (notify != { }) { LAB_NOTIFY_CONFIG = notifyFile; };
      onFailure = optional (cfg.onFailure != null) "lab-orchestrator-failure.service";
      serviceConfig = {
        Type = "oneshot";
        User = cfg.user;
        Group = cfg.user;
        ExecStart = lib.escapeShellArgs argv;
        StateDirectory = "lab-orchestrator";
        CacheDirectory = "lab-orchestrator";
        WorkingDirectory = "/var/lib/lab-orchestrator";
        # Least privilege: lab needs the network, the nix daemon socket and
        # its own state; nothing else of the host.
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictSUIDSGID = true;
        RestrictRealtime = true;
        RestrictNamespaces = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        CapabilityBoundingSet = "";
        UMask = "0077";
      };
    };

    systemd.timers.lab-orchestrator = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = cfg.schedule;
        Persistent = true;
      };
    };

    systemd.services.lab-orchestrator-failure = mkIf (cfg.onFailure != null) {
      description = "lab: notify that an orchestration run failed";
      serviceConfig = {
        Type = "oneshot";
        User = cfg.user;
        NoNewPrivileges = true;
      };
      script = cfg.onFailure;
    };

    nix.settings.trusted-users = [ cfg.user ];
  };
}
