# Prometheus and Grafana watching the rest, and lab's view of the fleet:
# `lab serve` (dashboard and /metrics) on loopback, scraped by the
# Prometheus beside it, and `lab status --prometheus` written every minute
# for this host's node_exporter (its textfile collector), so the machine
# gauges survive a stopped server. Read-only: this host deploys nothing
# (services.lab-orchestrator.enable, the scheduled deploys, stays off).
{ config, ... }:
{
  imports = [ ../common.nix ../../nix/modules/lab-orchestrator.nix ];
  networking.hostName = "monitoring";

  services.lab-orchestrator = {
    package = config.lab.machine.agent.package;
    flake = "git+https://git.lab.home/homelab";
    sshKeyFile = "/var/lib/lab-orchestrator/id_ed25519";
    serve = {
      enable = true;
      # The default; any other address needs serve.tokenFile.
      address = "127.0.0.1";
      port = 9184;
      interval = 30;
    };
    textfile.enable = true;
  };

  services.prometheus = {
    enable = true;
    exporters.node.enable = true;
    scrapeConfigs = [
      {
        job_name = "nodes";
        static_configs = [{ targets = [ "router:9100" "dns1:9100" "dns2:9100" "nas:9100" "sleeper-service:9100" "localhost:9100" ]; }];
      }
      {
        # lab serve's per-machine and per-run metrics.
        job_name = "lab";
        scrape_interval = "30s";
        metrics_path = "/metrics";
        static_configs = [{ targets = [ "127.0.0.1:9184" ]; }];
      }
    ];
  };
  services.grafana = {
    enable = true;
    settings.server = { http_addr = "0.0.0.0"; http_port = 3000; };
  };
  networking.firewall.allowedTCPPorts = [ 3000 9090 ];

  lab.machine = import ./lab.nix;
}
