{
  role = "router";
  groups = [ "network" ];
  rebootOrder = 0;
  targetHost = "192.168.10.1";
  healthChecks = [
    { type = "command"; command = "ip route show default"; description = "has a default route"; }
    { type = "tcp"; port = 22; host = "192.168.10.1"; runOn = "controller"; description = "reachable from the LAN"; }
  ];
  orchestration = {
    deployStrategy = "rolling";
    rebootDelay = 0;
    criticalityLevel = "critical";
    rebootTimeout = 300;
  };
}
