# Fleet-wide lab settings for the example homelab (the flake's `lab` output).
# Command-line flags override them.
{
  maxParallel = 2;
  rebootWindow = "Sat 02:00-05:00";
  ssh.options = [ "ConnectTimeout=10" ];
}
