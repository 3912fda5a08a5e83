{
  role = "workstation";
  groups = [ "clients" ];
  rebootOrder = 10;
  dependencies = [ "dns1" "nas" "sleeper-service" ];
  targetUser = "admin";
  healthChecks = [
    { type = "command"; command = "systemctl is-active display-manager"; required = false; }
  ];
  orchestration = {
    deployStrategy = "recreate";
    criticalityLevel = "low";
  };
}
