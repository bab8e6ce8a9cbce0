#!/bin/sh
# mmdebstrap --customize-hook for scripts/base-images: the container tweaks the official Debian
# images carry (debuerreotype's minimizing config), plus host-independent network files.
# $1 = the chroot directory. Runs as root (or in mmdebstrap's user namespace).
set -eu
root="$1"

# (policy-rc.d: hooks/policy-rc.sh, an essential hook)

# dpkg: no fsync per file (an image build either completes or is thrown away)
echo 'force-unsafe-io' > "$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"

conf="$root/etc/apt/apt.conf.d"
clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
cat > "$conf/docker-clean" <<EOC
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOC
echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$conf/docker-autoremove-suggests"
echo 'Acquire::GzipIndexes "true";' > "$conf/docker-gzip-indexes"
echo 'Acquire::Languages "none";' > "$conf/docker-no-languages"
chmod 0644 "$conf"/docker-*
# the docker-clean config above hides these caches from mmdebstrap's own cleanup; drop them here
# (debuerreotype excludes them from its tarball the same way)
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*

# mmdebstrap copies the build host's resolv.conf and hostname; an image must not depend on the
# machine that built it. An empty resolv.conf stays as the runtime's bind-mount target.
: > "$root/etc/resolv.conf"
rm -f "$root/etc/hostname"
