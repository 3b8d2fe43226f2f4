# Sourced before the guest test script (which is then sourced too, in the same busybox sh).
# Busybox sh runs its built-in `ip` applet for a bare `ip` whatever PATH says, and that applet has
# no `netns`. This function makes `ip` mean iproute2 in the test script itself. It does not reach
# `sh -c '...'` children: there, write /usr/bin/ip (also in $HWSIM_IP).
ip() { /usr/bin/ip "$@"; }
