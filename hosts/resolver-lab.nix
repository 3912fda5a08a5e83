# lab.machine of a DNS resolver: high criticality in group "dns", so the two
# are never down together; blue-green, so a bad config never goes live for good.
{ rebootOrder }:
{
  role = "dns";
  groups = [ "dns" ];
  inherit rebootOrder;
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
