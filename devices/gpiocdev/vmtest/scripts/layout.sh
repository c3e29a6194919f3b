#!/bin/sh
# Runs inside the VM (busybox sh) with a fresh chip: checks the sysfs and
# configfs layout that tests rely on, without any Go. Exit 0 = pass.
set -e
fail() { echo "layout.sh: FAIL: $*"; exit 1; }
[ -c "$HALLGUARD_SIM_DEV" ] || fail "no char device $HALLGUARD_SIM_DEV"
[ "$(cat "$HALLGUARD_SIM_CONFIGFS/live")" = 1 ] || fail "chip not live"
[ "$(cat "$HALLGUARD_SIM_CONFIGFS/bank0/chip_name")" = "$HALLGUARD_SIM_CHIP" ] || fail "chip_name"
i=0
for n in $HALLGUARD_SIM_LINE_NAMES; do
	[ "$(cat "$HALLGUARD_SIM_CONFIGFS/bank0/line$i/name")" = "$n" ] || fail "line$i name"
	d="$HALLGUARD_SIM_BANK_SYSFS/sim_gpio$i"
	[ "$(cat "$d/pull")" = pull-down ] || fail "line$i pull not pull-down at start"
	echo pull-up > "$d/pull"
	[ "$(cat "$d/value")" = 1 ] || fail "line$i value after pull-up"
	echo pull-down > "$d/pull"
	[ "$(cat "$d/value")" = 0 ] || fail "line$i value after pull-down"
	i=$((i + 1))
done
[ "$i" = "$HALLGUARD_SIM_NUM_LINES" ] || fail "line count $i"
echo "layout.sh: ok ($i lines on $HALLGUARD_SIM_CHIP, sysfs $HALLGUARD_SIM_BANK_SYSFS)"
