# Run inside a mount namespace of its own, in a project: a 1 MiB tmpfs over reports/ holding
# the reports, filled but for FREE_PAGES pages (or made read-only when FREE_PAGES is "ro");
# then the command STAGE, with its exit status, its stderr and the reports as it left them
# copied to the folder SAVE for the test to read.
set -e
saved=$(mktemp -d)
cp -a reports/. "$saved"/
mount -t tmpfs -o size=1m tmpfs reports
cp -a "$saved"/. reports/
if [ "$FREE_PAGES" = ro ]; then
    mount -o remount,bind,ro reports  # bind: this mount alone, as a user namespace may
else
    page=$(stat -f -c %S reports)
    head -c $(( $(stat -f -c %a reports) * page - FREE_PAGES * page )) /dev/zero >reports/.filler
fi
set +e
sh -c "$STAGE" 2>"$SAVE/stderr"
echo $? >"$SAVE/status"
rm -f reports/.filler
cp -a reports/. "$SAVE/reports/"
