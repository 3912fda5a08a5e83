# Prometheus and Grafana watching the rest.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "monitoring";

  services.prometheus = {
    enable = true;
    scrapeConfigs = [{
      job_name = "nodes";
      static_configs = [{ targets = [ "router:9100" "dns1:9100" "dns2:9100" "nas:9100" "sleeper-service:9100" ]; }];
    }];
  };
  services.grafana = {
    enable = true;
    settings.server = { http_addr = "0.0.0.0"; http_port = 3000; };
  };
  networking.firewall.allowedTCPPorts = [ 3000 9090 ];

  lab.machine = import ./lab.nix;
}
