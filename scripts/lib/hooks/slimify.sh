#!/bin/sh
# mmdebstrap --customize-hook for the -slim image: remove what the dpkg path-exclude options
# (base_images.SLIM_EXCLUDE/SLIM_INCLUDE, debuerreotype's slimify lists) keep out of later
# installs but mmdebstrap's first extraction of the essential packages already wrote.
# $1 = the chroot directory.
set -eu
cd "$1/usr/share"
for d in doc groff info linda lintian/overrides locale man; do
    [ -d "$d" ] || continue
    find "$d" -mindepth 1 ! -type d \
        ! -path 'doc/*/copyright' ! -path 'locale/locale.alias' -delete
    find "$d" -mindepth 1 -depth -type d -empty -delete
done
