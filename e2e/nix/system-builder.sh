# Builds a lab-e2e test system: the layout of a NixOS toplevel where lab
# looks (bin/switch-to-configuration, activate, kernel, initrd,
# kernel-modules), with scripts that hand over to the test host's tooling in
# /usr/local/bin (the host's stand-in directory), passing this store path.
set -eu
PATH=/bin:/usr/bin
mkdir -p "$out/bin"
ln -s "$kernel/bzImage" "$out/kernel"
ln -s "$initrd/initrd" "$out/initrd"
ln -s "$modules" "$out/kernel-modules"
# The packages lab plan --diff compares, when the test gave any.
[ -z "${packages:-}" ] || printf '%s\n' $packages > "$out/lab-packages"
cat > "$out/lab-test.conf" <<CONF
behaviour=$behaviour
generation=$generation
activation-delay-ms=$activationDelayMs
activation-exit=$activationExit
CONF
printf 'lab test system %s generation %s\n' "$hostName" "$generation" > "$out/nixos-version"
printf '#!/bin/sh\nexec /usr/local/bin/lab-test-host activate %s "$@"\n' "$out" > "$out/activate"
printf '#!/bin/sh\nexec /usr/local/bin/lab-test-host switch-to-configuration %s "$@"\n' "$out" > "$out/bin/switch-to-configuration"
chmod +x "$out/activate" "$out/bin/switch-to-configuration"
