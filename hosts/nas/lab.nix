{
  role = "storage";
  groups = [ "storage" "backup" ];
  rebootOrder = 3;
  dependencies = [ "router" ];
  healthChecks = [
    { type = "tcp"; port = 2049; }
    { type = "command"; command = "zpool status -x"; timeout = 20; }
  ];
  orchestration = {
    deployStrategy = "rolling";
    rebootDelay = 300;
    criticalityLevel = "medium";
    rebootTimeout = 900;
  };
}
