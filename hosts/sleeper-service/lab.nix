# lab.machine of sleeper-service, exactly as in the original design.
{
  role = "application-server";
  groups = [ "infrastructure" "database" ];
  rebootOrder = 1;
  dependencies = [ ];
  healthChecks = [
    { type = "http"; url = "http://localhost:80/health"; }
    { type = "tcp"; port = 5432; }
  ];
  orchestration = {
    deployStrategy = "rolling";
    rebootDelay = 0;
    criticalityLevel = "high";
  };
}
