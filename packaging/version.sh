#!/bin/sh
# version.sh [DIR]: the version of the git checkout DIR (default .), as both
# `preflight version` and the Debian package show it; it sorts in commit
# order under dpkg --compare-versions, so a newer build's .deb upgrades an
# older one. Reproducible: it depends on the commit, never on today's date.
#   tag vX.Y.Z on HEAD            X.Y.Z
#   N commits after tag vX.Y.Z    X.Y.Z+git<YYYYMMDD>.<N>.<hash>
#   no tag                        0.0.0~git<YYYYMMDD>.<commits>.<hash>
# YYYYMMDD is HEAD's commit date in UTC; a checkout with uncommitted changes
# adds .dirty. Outside git: dev.
set -eu
cd "${1:-.}"
hash=$(git rev-parse --short=12 HEAD 2>/dev/null) || { echo dev; exit 0; }
date=$(TZ=UTC0 git show -s --format=%cd --date=format-local:%Y%m%d HEAD)
dirty=
git update-index -q --refresh 2>/dev/null || true
git diff-index --quiet HEAD -- 2>/dev/null || dirty=.dirty
if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null); then
	base=${tag#v}
	n=$(git rev-list --count "$tag..HEAD")
	if [ "$n" -eq 0 ]; then
		echo "$base${dirty:++git$date.0.$hash$dirty}"
	else
		echo "$base+git$date.$n.$hash$dirty"
	fi
else
	echo "0.0.0~git$date.$(git rev-list --count HEAD).$hash$dirty"
fi
