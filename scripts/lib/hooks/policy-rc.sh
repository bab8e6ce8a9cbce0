#!/bin/sh
# mmdebstrap --essential-hook for scripts/base-images: never start services from maintainer
# scripts in an image (the official images ship this policy-rc.d). Installed after the essential
# packages, with mmdebstrap told not to manage policy-rc.d itself: mmdebstrap's own temporary
# one is removed again at its unmount stage, which would remove ours too.
# $1 = the chroot directory.
set -eu
printf '#!/bin/sh\nexit 101\n' > "$1/usr/sbin/policy-rc.d"
chmod 0755 "$1/usr/sbin/policy-rc.d"
