{
  role = "monitoring";
  groups = [ "observability" ];
  rebootOrder = 5;
  dependencies = [ "dns1" "nas" ];
  healthChecks = [
    { type = "http"; url = "http://localhost:9090/-/healthy"; }
    { type = "http"; url = "http://localhost:3000/api/health"; required = false; description = "grafana"; }
  ];
  orchestration = {
    deployStrategy = "recreate";
    rebootDelay = 120;
    criticalityLevel = "low";
  };
}
