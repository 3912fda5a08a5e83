# Builds a test system for the systemd test hosts: the layout of a NixOS
# toplevel where lab looks (bin/switch-to-configuration, kernel, initrd,
# kernel-modules), the model of switch-to-configuration, its knobs, and the
# generation's units (an app on port 8080, socket-activated by systemd).
set -eu
PATH=/bin:/usr/bin
mkdir -p "$out/bin" "$out/etc/systemd/system" "$out/sw/bin"
# The system's own tools, where NixOS keeps them (/run/current-system/sw/bin:
# a system unit's PATH has no /usr/bin on NixOS, so lab must find them
# here); on the test hosts they are Debian's, at the host's own paths.
ln -s /bin/sh "$out/sw/bin/sh"
for t in nix-env systemd-run systemctl flock; do
  ln -s "/usr/bin/$t" "$out/sw/bin/$t"
done
ln -s "$kernel/bzImage" "$out/kernel"
ln -s "$initrd/initrd" "$out/initrd"
ln -s "$modules" "$out/kernel-modules"
# The packages lab plan --diff compares, when the test gave any.
[ -z "${packages:-}" ] || printf '%s\n' $packages > "$out/lab-packages"
cat > "$out/lab-test.conf" <<CONF
behaviour=$behaviour
generation=$generation
activation_delay_ms=$activationDelayMs
activation_exit=$activationExit
CONF
printf 'lab test system %s generation %s\n' "$hostName" "$generation" > "$out/nixos-version"
cp "$switchModel" "$out/bin/switch-to-configuration"
chmod +x "$out/bin/switch-to-configuration"
cat > "$out/etc/systemd/system/lab-app.socket" <<UNIT
[Unit]
Description=lab e2e app of $hostName generation $generation
[Socket]
ListenStream=8080
Accept=yes
UNIT
cat > "$out/etc/systemd/system/lab-app@.service" <<UNIT
[Unit]
Description=lab e2e app connection
[Service]
ExecStart=/bin/echo $hostName generation $generation
StandardInput=socket
StandardOutput=socket
UNIT
