{
  role = "dns";
  groups = [ "dns" ];
  rebootOrder = 1;
  dependencies = [ "router" ];
  healthChecks = [
    { type = "tcp"; port = 53; }
    { type = "command"; command = "systemctl is-active unbound"; }
  ];
  orchestration = {
    deployStrategy = "blue-green";
    rebootDelay = 60;
    criticalityLevel = "high";
    minHealthyTime = 30;
  };
}
