# services.lab-orchestrator: the original design's orchestrator loop as one
# command, `lab orchestrate`, run by a hardened oneshot service on a timer.
#
# What the service may do, and why that is enough:
#
# - It is NOT a trusted nix user (no nix.settings.trusted-users). A trusted
#   user can import unsigned store paths, choose substituters and set any
#   daemon option, which makes it root-equivalent on this host and would
#   undo the hardening below. lab does not need any of that here:
#   * evaluating the fleet (nix-instantiate, builtins.getFlake, fetching
#     flake inputs) and writing the systems' .drv files are allowed to every
#     user the daemon serves: sources enter the store content-addressed;
#   * building (`nix-store --realise`) is done by the daemon for any allowed
#     user, with the machine's own substituters and remote builders
#     (nix.buildMachines); lab passes no daemon option that needs trust;
#   * `nix copy --to ssh://TARGET` only reads this host's store. The writing
#     happens on the target, as the ssh user lab logs in as (targetUser,
#     root by default): trust is the target's business (root, or
#     trusted-users there for a non-root targetUser), never this host's.
#   * activation and reboots run over ssh with the key in sshKeyFile.
#   What it does need is to be an allowed daemon user (nix.settings.
#   allowed-users, "*" by default; an assertion below says so if a
#   narrower list leaves it out) and NIX_REMOTE=daemon, so nix never falls
#   back to a private store in its home when the daemon is unreachable.
# - `update = true` runs `nix flake update` in the flake's directory, which
#   rewrites flake.lock there (and, in a git checkout, stages it in .git).
#   That works only for a local flake (an absolute path, or path:/…); a
#   remote flake has no lock file here to rewrite, so lab refuses --update
#   for it, and this module refuses the combination when it is evaluated.
#   For a local flake the directory is the one path outside the service's
#   own state that it may write (ReadWritePaths); the directory must also
#   belong to the service user, as ReadWritePaths lifts only the read-only
#   mount, not file permissions.
#
# The same user can also run `lab serve` (serve.*: the dashboard, its JSON
# API and Prometheus metrics, probing the fleet on its own interval) and a
# timer writing `lab status --prometheus` into node_exporter's textfile
# collector directory (textfile.*). Both only read: neither needs more than
# the orchestrator's ssh key and the daemon, and each can be enabled without
# the scheduled orchestration (enable).
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types optional optionals;
  cfg = config.services.lab-orchestrator;

  sshArgs = optionals (cfg.sshKeyFile != null) [ "--ssh-option" "IdentityFile=${toString cfg.sshKeyFile}" ];
  argv = [ "${cfg.package}/bin/lab" "orchestrate" "--flake" cfg.flake "--goal" cfg.goal ]
    ++ optional cfg.update "--update"
    ++ optionals (cfg.maxParallel != null) [ "--max-parallel" (toString cfg.maxParallel) ]
    ++ sshArgs
    ++ cfg.extraArgs;

  isLoopback = a: a == "::1" || lib.hasPrefix "127." a;
  # The token reaches the service as a systemd credential (%d: its
  # credentials directory), so the file may stay readable by root only.
  serveArgv = [ "${cfg.package}/bin/lab" "serve" "--flake" cfg.flake
    "--address" cfg.serve.address "--port" (toString cfg.serve.port) "--interval" (toString cfg.serve.interval) ]
    ++ optionals (cfg.serve.tokenFile != null) [ "--token-file" "%d/token" ]
    ++ sshArgs
    ++ cfg.serve.extraArgs;

  textfileOut = "${cfg.textfile.directory}/lab.prom";
  textfileArgv = [ "${cfg.package}/bin/lab" "status" "--flake" cfg.flake "--prometheus" textfileOut ] ++ sshArgs;

  # The environment and hardening every lab unit of this module shares.
  environment = {
    XDG_STATE_HOME = "/var/lib/lab-orchestrator";
    XDG_CACHE_HOME = "/var/cache/lab-orchestrator";
    HOME = "/var/lib/lab-orchestrator";
    # Always through the daemon, as an untrusted user (see the top of
    # this file); never a private store under $HOME.
    NIX_REMOTE = "daemon";
  } // lib.optionalAttrs (notify != { }) { LAB_NOTIFY_CONFIG = notifyFile; };
  hardening = {
    User = cfg.user;
    Group = cfg.user;
    StateDirectory = "lab-orchestrator";
    CacheDirectory = "lab-orchestrator";
    WorkingDirectory = "/var/lib/lab-orchestrator";
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
  unitPath = [ config.nix.package pkgs.openssh pkgs.git ];

  # The hooks as lab reads them (the fleet's lab.notify shape; set fields
  # only), passed as LAB_NOTIFY_CONFIG: a file, not ExecStart text, which
  # systemd would expand (`%`, `$`).
  notify = lib.filterAttrs (_: v: v != null) cfg.notify;
  notifyFile = pkgs.writeText "lab-notify.json" (builtins.toJSON notify);

  # The flake's directory when the flake is local, as lab's `--update`
  # accepts it (an absolute path, optionally as path:/…, with no other
  # scheme, query or fragment); null for anything remote.
  flakePath = lib.removePrefix "path:" cfg.flake;
  localFlakeDir =
    if lib.hasPrefix "/" flakePath && !(lib.any (c: lib.hasInfix c flakePath) [ ":" "?" "#" ])
    then flakePath else null;
  # ProtectHome hides these from the service.
  hiddenByProtectHome = dir:
    lib.any (top: dir == top || lib.hasPrefix "${top}/" dir) [ "/home" "/root" "/run/user" ];

  # Whether the nix daemon serves the service user (`*`, the user, or its group).
  allowedUsers = config.nix.settings.allowed-users or [ "*" ];
  userGroups = [ cfg.user ] ++ (config.users.users.${cfg.user}.extraGroups or [ ]);
  daemonAllowed = lib.elem "*" allowedUsers || lib.elem cfg.user allowedUsers
    || lib.any (g: lib.elem "@${g}" allowedUsers) userGroups;
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
      description = "The flake whose nixosConfigurations lab orchestrates: a remote reference, or the absolute path of a local checkout (needed for `update`).";
    };

    schedule = mkOption {
      type = types.str;
      default = "Sat 03:00";
      description = "When to run, as a systemd OnCalendar expression.";
    };

    update = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Run `nix flake update` before orchestrating. Needs a local flake
        (an absolute path such as /var/lib/lab-orchestrator/fleet, or
        path:/…, owned by the service user and outside /home and /root):
        its flake.lock is rewritten, so the service may write that
        directory. A remote flake is refused; update it where it lives.
      '';
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

    serve = {
      enable = mkEnableOption "`lab serve`: the fleet's dashboard, JSON API and Prometheus metrics (/metrics), read-only";
      address = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "0.0.0.0";
        description = "IP address `lab serve` listens on. Any address other than loopback needs tokenFile (lab refuses to start without it).";
      };
      port = mkOption {
        type = types.port;
        default = 9184;
        description = "Port `lab serve` listens on (lab's default).";
      };
      tokenFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/secrets/lab-serve-token";
        description = "File holding the bearer token every request except the page itself must send (`Authorization: Bearer TOKEN`). Passed as a systemd credential: it may stay readable by root only, and never enters the store.";
      };
      interval = mkOption {
        type = types.ints.positive;
        default = 30;
        description = "Seconds between two probes of the fleet (one ssh round per machine); pages and scrapes read the last probe.";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open port in the firewall (for a non-loopback address).";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Further arguments to `lab serve`.";
      };
    };

    textfile = {
      enable = mkEnableOption "writing `lab status --prometheus` (the machine gauges) into node_exporter's textfile collector directory on a timer";
      directory = mkOption {
        type = types.str;
        default = "/var/lib/prometheus-node-exporter-text-files";
        description = "The textfile collector's directory; lab writes lab.prom there atomically (temporary file and rename). Created for the service user, readable by all.";
      };
      interval = mkOption {
        type = types.str;
        default = "1min";
        description = "How often to write it, as a systemd time span (OnUnitActiveSec).";
      };
      registerWithNodeExporter = mkOption {
        type = types.bool;
        default = true;
        description = "Point services.prometheus.exporters.node's textfile collector at directory (--collector.textfile.directory).";
      };
    };

    user = mkOption {
      type = types.str;
      default = "lab-orchestrator";
      description = "The dedicated user the service runs as (DynamicUser cannot hold ssh keys).";
    };
  };

  config = mkMerge [ (mkIf (cfg.enable || cfg.serve.enable || cfg.textfile.enable) {
    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.user;
      home = "/var/lib/lab-orchestrator";
      description = "lab orchestrator";
    };
    users.groups.${cfg.user} = { };
    assertions = [
      {
        assertion = daemonAllowed;
        message = "services.lab-orchestrator: nix.settings.allowed-users leaves out ${cfg.user}, so lab could neither evaluate nor build; add \"${cfg.user}\" to it (it needs no trusted-users).";
      }
      {
        assertion = localFlakeDir == null || !(hiddenByProtectHome localFlakeDir);
        message = "services.lab-orchestrator.flake: the service runs with ProtectHome, so it cannot read ${toString localFlakeDir}; keep the checkout outside /home, /root and /run/user (e.g. /var/lib/lab-orchestrator/fleet, owned by ${cfg.user}).";
      }
    ];
  })
  (mkIf cfg.enable {
    assertions = [
      {
        assertion = !cfg.update || localFlakeDir != null;
        message = "services.lab-orchestrator.update runs `nix flake update` in the flake's directory, so it needs a local flake (an absolute path such as /var/lib/lab-orchestrator/fleet, or path:/…); \"${cfg.flake}\" is not one. Update the flake where it lives and set update = false, or point flake at a local checkout owned by ${cfg.user}.";
      }
    ];

    systemd.services.lab-orchestrator = {
      description = "lab: deploy and reboot the fleet in dependency order";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      path = unitPath;
      inherit environment;
      onFailure = optional (cfg.onFailure != null) "lab-orchestrator-failure.service";
      serviceConfig = hardening // {
        Type = "oneshot";
        ExecStart = lib.escapeShellArgs argv;
        # Least privilege: lab needs the network, the nix daemon socket and
        # its own state; nothing else of the host. With `update`, also the
        # local flake's directory, where `nix flake update` writes flake.lock.
        ReadWritePaths = optional (cfg.update && localFlakeDir != null) localFlakeDir;
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
  })
  (mkIf cfg.serve.enable {
    assertions = [{
      assertion = isLoopback cfg.serve.address || cfg.serve.tokenFile != null;
      message = "services.lab-orchestrator.serve.address is ${cfg.serve.address}, not loopback: set serve.tokenFile (lab serve refuses to listen elsewhere without a bearer token), or keep the default 127.0.0.1 behind a reverse proxy.";
    }];
    systemd.services.lab-serve = {
      description = "lab: the fleet's dashboard and metrics (lab serve)";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      path = unitPath;
      inherit environment;
      serviceConfig = hardening // {
        Type = "simple";
        ExecStart = lib.escapeShellArgs serveArgv;
        Restart = "on-failure";
        RestartSec = 5;
        LoadCredential = optional (cfg.serve.tokenFile != null) "token:${toString cfg.serve.tokenFile}";
      };
    };
    networking.firewall.allowedTCPPorts = optional cfg.serve.openFirewall cfg.serve.port;
  })
  (mkIf cfg.textfile.enable {
    # The directory belongs to the lab user and is readable by node_exporter.
    systemd.tmpfiles.rules = [ "d ${cfg.textfile.directory} 0755 ${cfg.user} ${cfg.user} -" ];
    systemd.services.lab-textfile = {
      description = "lab: write the fleet's machine gauges for node_exporter (lab status --prometheus)";
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      path = unitPath;
      inherit environment;
      serviceConfig = hardening // {
        Type = "oneshot";
        ExecStart = lib.escapeShellArgs textfileArgv;
        ReadWritePaths = [ cfg.textfile.directory ];
        # node_exporter (another user) reads the file.
        UMask = "0022";
        # lab status exits 1 when a machine is down or unhealthy: the file
        # is written all the same, and the gauges say which.
        SuccessExitStatus = [ 1 ];
      };
    };
    systemd.timers.lab-textfile = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "1min";
        OnUnitActiveSec = cfg.textfile.interval;
      };
    };
    services.prometheus.exporters.node.extraFlags =
      optional cfg.textfile.registerWithNodeExporter "--collector.textfile.directory=${cfg.textfile.directory}";
  })
  ];
}
