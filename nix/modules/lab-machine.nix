# lab.machine: a machine's orchestration metadata, read by `lab`.
#
# The options of the original design keep their names, types and defaults;
# everything else is additive. lab-core's `metadata` module is the typed twin
# of this file and a test keeps the two in step.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.lab.machine;

  seconds = description: default: mkOption {
    type = types.int;
    inherit default description;
  };

  healthCheck = types.submodule {
    options = {
      type = mkOption {
        type = types.enum [ "http" "tcp" "command" ];
        description = "Type of health check.";
      };
      url = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "URL for HTTP health checks.";
      };
      port = mkOption {
        type = types.nullOr types.int;
        default = null;
        description = "Port for TCP health checks.";
      };
      command = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Command for command-based health checks; passes on exit 0.";
      };
      host = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "tcp: host to connect to; null is the machine itself.";
      };
      expectedStatus = mkOption {
        type = types.listOf types.str;
        default = [ "200-299" ];
        description = "http: status codes (\"200\") or ranges (\"200-299\") that pass.";
      };
      headers = mkOption {
        type = types.attrsOf types.str;
        default = { };
        description = "http: extra request headers.";
      };
      tlsVerify = mkOption {
        type = types.bool;
        default = true;
        description = "http: verify TLS certificates.";
      };
      timeout = seconds "Seconds per attempt." 5;
      interval = seconds "Seconds between attempts." 5;
      initialDelay = seconds "Seconds to wait before the first attempt." 0;
      successThreshold = mkOption {
        type = types.int;
        default = 1;
        description = "Consecutive passes to count as passing.";
      };
      failureThreshold = mkOption {
        type = types.int;
        default = 3;
        description = "Consecutive failures, after a first pass, to count as failing.";
      };
      required = mkOption {
        type = types.bool;
        default = true;
        description = "A check that is not required is reported but never blocks.";
      };
      runOn = mkOption {
        type = types.enum [ "target" "controller" ];
        default = "target";
        description = "target: runs on the machine, so localhost is the machine; controller: runs from the orchestrating host.";
      };
      description = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Free text shown in reports.";
      };
    };
  };

  # The JSON form, built field by field: submodule values carry `_module`,
  # which toJSON cannot render.
  checkData = c: {
    inherit (c) type url port command host expectedStatus headers tlsVerify timeout
      interval initialDelay successThreshold failureThreshold required runOn description;
  };

  machineData = {
    inherit (cfg) role groups rebootOrder dependencies targetHost targetUser targetPort;
    healthChecks = map checkData cfg.healthChecks;
    orchestration = {
      inherit (cfg.orchestration) deployStrategy rebootDelay criticalityLevel
        healthyDeadline minHealthyTime rebootTimeout confirmTimeout activationTimeout;
    };
  };

  # Reading some services.* on a real NixOS system throws (removed or renamed
  # options); such a service counts as not enabled instead of aborting.
  isEnabled = name:
    let r = builtins.tryEval (
      let v = config.services.${name}; in builtins.isAttrs v && (v.enable or false) == true
    );
    in r.success && r.value;
  enabledServices = builtins.filter isEnabled (builtins.attrNames (config.services or { }));

  checkAssertions = i: c:
    let at = "lab.machine.healthChecks.${toString i} (${c.type})"; in [
      { assertion = c.type != "http" || c.url != null; message = "${at}: an http check needs `url`."; }
      { assertion = c.type != "tcp" || c.port != null; message = "${at}: a tcp check needs `port`."; }
      { assertion = c.type != "command" || c.command != null; message = "${at}: a command check needs `command`."; }
      { assertion = c.port == null || (c.port >= 1 && c.port <= 65535); message = "${at}: port ${toString c.port} is outside 1..65535."; }
      { assertion = c.timeout >= 1; message = "${at}: timeout must be at least 1 second."; }
      { assertion = c.interval >= 0 && c.initialDelay >= 0; message = "${at}: interval and initialDelay must not be negative."; }
      { assertion = c.successThreshold >= 1 && c.failureThreshold >= 1; message = "${at}: successThreshold and failureThreshold must be at least 1."; }
      { assertion = c.type == "http" || (c.url == null && c.headers == { } && c.tlsVerify && c.expectedStatus == [ "200-299" ]); message = "${at}: url, headers, tlsVerify and expectedStatus apply only to http checks."; }
      { assertion = c.type == "tcp" || c.host == null; message = "${at}: host applies only to tcp checks."; }
    ];

  indexed = lib.imap0 (i: c: { inherit i c; }) cfg.healthChecks;
in
{
  options.lab.machine = {
    role = mkOption {
      type = types.str;
      description = "Machine role in the lab.";
      example = "web-server";
    };
    groups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Groups this machine belongs to.";
    };
    rebootOrder = mkOption {
      type = types.int;
      description = "Order in reboot sequence (lower = earlier) among machines ready at the same time.";
    };
    dependencies = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Machines this depends on.";
    };
    healthChecks = mkOption {
      type = types.listOf healthCheck;
      default = [ ];
      description = "Health check configurations.";
    };
    targetHost = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = lib.literalExpression "config.networking.hostName";
      description = "Host name or address lab connects to over ssh.";
    };
    targetUser = mkOption {
      type = types.str;
      default = "root";
      description = "User lab connects as.";
    };
    targetPort = mkOption {
      type = types.int;
      default = 22;
      description = "SSH port lab connects to.";
    };
    agent = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Install lab on the machine, so its health checks run natively (`lab health --local`) instead of through curl or bash.";
      };
      package = mkOption {
        type = types.nullOr types.package;
        default = null;
        description = "The lab package to install; the flake's nixosModules set it to its own package.";
      };
    };
    orchestration = mkOption {
      type = types.submodule {
        options = {
          deployStrategy = mkOption {
            type = types.enum [ "rolling" "blue-green" "recreate" ];
            default = "rolling";
            description = "Deployment strategy.";
          };
          rebootDelay = seconds "Delay in seconds before this machine reboots." 600;
          criticalityLevel = mkOption {
            type = types.enum [ "low" "medium" "high" "critical" ];
            default = "medium";
            description = "Service criticality level.";
          };
          healthyDeadline = seconds "Seconds after activation or boot to pass all checks." 300;
          minHealthyTime = seconds "Seconds all checks must keep passing to count as healthy." 10;
          rebootTimeout = seconds "Seconds to come back from a reboot." 600;
          confirmTimeout = seconds "Seconds after an activation within which lab must reach the machine again over a fresh connection; otherwise the machine rolls itself back to its previous generation." 30;
          activationTimeout = seconds "Seconds lab follows an activation (switch-to-configuration) on the machine, also across a dropped connection, before it gives up on it; the machine's own rollback watchdog fires this long plus confirmTimeout after the activation began." 240;
        };
      };
      default = { };
      description = "Orchestration configuration.";
    };
  };

  options.lab.metadata = mkOption {
    type = types.attrs;
    readOnly = true;
    internal = true;
    description = "The JSON-ready form of lab.machine plus hostname and services, as lab reads it.";
  };

  config = {
    lab.metadata = machineData // {
      hostname = config.networking.hostName;
      services = enabledServices;
    };

    environment.etc."lab-machine-metadata.json".text = builtins.toJSON config.lab.metadata;

    environment.systemPackages = lib.optional (cfg.agent.enable && cfg.agent.package != null) cfg.agent.package;

    assertions = [
      { assertion = cfg.targetPort >= 1 && cfg.targetPort <= 65535; message = "lab.machine.targetPort: ${toString cfg.targetPort} is outside 1..65535."; }
      { assertion = cfg.orchestration.rebootDelay >= 0; message = "lab.machine.orchestration.rebootDelay must not be negative."; }
      { assertion = cfg.orchestration.healthyDeadline >= 0; message = "lab.machine.orchestration.healthyDeadline must not be negative."; }
      { assertion = cfg.orchestration.minHealthyTime >= 0; message = "lab.machine.orchestration.minHealthyTime must not be negative."; }
      { assertion = cfg.orchestration.rebootTimeout >= 0; message = "lab.machine.orchestration.rebootTimeout must not be negative."; }
      { assertion = cfg.orchestration.confirmTimeout >= 1; message = "lab.machine.orchestration.confirmTimeout must be at least 1 second."; }
      { assertion = cfg.orchestration.activationTimeout >= 1; message = "lab.machine.orchestration.activationTimeout must be at least 1 second."; }
    ] ++ lib.concatMap ({ i, c }: checkAssertions i c) indexed;
  };
}
