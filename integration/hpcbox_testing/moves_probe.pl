# The volume-root probe of integration/test_run_paths.py: rename, link, rmdir and unlink at and
# across the volumes /vol, /vol2 (directories), /volf (a file) and /volro (a read-only directory
# holding the file r), one line per call ("NAME: ok" or
# "NAME: errno N"). Each call starts from the same files, so one result never changes the next.
# Run by perl under each engine; runc (the kernel, real bind mounts) is the reference.
use strict;
use warnings;
use Fcntl qw(O_WRONLY O_CREAT);
my $t = "/tmp/hpcbox-moves-probe";
sub mk { open(my $h, ">", $_[0]) or die "$_[0]: $!"; close $h; }
sub fresh {
    mkdir $t; mkdir "$t/d";
    mk("$t/f") unless -e "$t/f";
    mk("/vol/a") unless -e "/vol/a";
    unlink "/vol/b", "/vol/f", "/vol/l", "/vol2/a", "$t/a", "$t/l", "$t/x", "$t/z", "/x", "/volro/l";
    rmdir "/x";
}
sub r {
    my ($name, $call) = @_;
    fresh();
    my $ok = $call->();
    print "$name: ", ($ok ? "ok" : "errno " . ($! + 0)), "\n";
}
r("rename /vol/a /tmp", sub { rename("/vol/a", "$t/a") });
r("rename /tmp /vol/f", sub { rename("$t/f", "/vol/f") });
r("rename /vol/a /vol2/a", sub { rename("/vol/a", "/vol2/a") });
r("rename /vol/nosuch /tmp", sub { rename("/vol/nosuch", "$t/z") });
r("rename /vol/. /tmp", sub { rename("/vol/.", "$t/x") });
r("rename /vol/.. /tmp", sub { rename("/vol/..", "$t/x") });
r("rename /tmp /vol/..", sub { rename("$t/f", "/vol/..") });
r("rename /vol/. /vol/b", sub { rename("/vol/.", "/vol/b") });
r("rename /vol/a /vol/b", sub { rename("/vol/a", "/vol/b") });
r("rename /vol /x", sub { rename("/vol", "/x") });
r("rename /vol/ /x", sub { rename("/vol/", "/x") });
r("rename /vol /nodir/x", sub { rename("/vol", "/nodir/x") });
r("rename /vol /vol2", sub { rename("/vol", "/vol2") });
r("rename file /vol", sub { rename("$t/f", "/vol") });
r("rename dir /vol", sub { rename("$t/d", "/vol") });
r("rename /vol/a /volf", sub { rename("/vol/a", "/volf") });
r("rename dir /volf", sub { rename("$t/d", "/volf") });
r("rename file /volf", sub { rename("$t/f", "/volf") });
r("rename /volf /volf", sub { rename("/volf", "/volf") });
r("rename /volf/ /x", sub { rename("/volf/", "/x") });
r("link /vol/a /tmp", sub { link("/vol/a", "$t/l") });
r("link /tmp /vol/l", sub { link("$t/f", "/vol/l") });
r("link /vol/a /vol/l", sub { link("/vol/a", "/vol/l") });
r("link /vol/nosuch /tmp", sub { link("/vol/nosuch", "$t/l") });
r("link /vol/a /tmp existing", sub { link("/vol/a", "$t/f") });
r("link /volf /tmp", sub { link("/volf", "$t/l") });
r("link nosuch file/x", sub { link("$t/nosuch", "$t/f/x") });
r("rename /volro/r /tmp", sub { rename("/volro/r", "$t/x") });
r("rename /tmp /volro/x", sub { rename("$t/f", "/volro/x") });
r("rename /volro/r /volro/x", sub { rename("/volro/r", "/volro/x") });
r("rename /volro/nosuch /volro/x", sub { rename("/volro/nosuch", "/volro/x") });
r("link /volro/r /tmp", sub { link("/volro/r", "$t/l") });
r("link /tmp /volro/l", sub { link("$t/f", "/volro/l") });
r("link /volro/r /volro/l", sub { link("/volro/r", "/volro/l") });
r("link /tmp /volro/r existing", sub { link("$t/f", "/volro/r") });
r("unlink /volro/r", sub { unlink("/volro/r") });
r("unlink /volro/nosuch", sub { unlink("/volro/nosuch") });
r("rmdir /volro/nosuch", sub { rmdir("/volro/nosuch") });
# open with O_CREAT and a trailing "/": EISDIR once the directory part resolves, whatever the name is
r("creat dir/", sub { sysopen(my $h, "$t/d/", O_WRONLY | O_CREAT) });
r("creat file/", sub { sysopen(my $h, "$t/f/", O_WRONLY | O_CREAT) });
r("creat new/", sub { sysopen(my $h, "$t/new/", O_WRONLY | O_CREAT) });
r("creat nodir/x/", sub { sysopen(my $h, "$t/nodir/x/", O_WRONLY | O_CREAT) });
r("rmdir /vol", sub { rmdir("/vol") });
r("rmdir /vol/.", sub { rmdir("/vol/.") });
r("rmdir /vol/..", sub { rmdir("/vol/..") });
r("unlink /vol", sub { unlink("/vol") });
r("unlink /volf", sub { unlink("/volf") });
r("rmdir /volf", sub { rmdir("/volf") });
fresh();
# mv copies across mounts when rename says EXDEV
print "mv /vol/a /tmp: ", (system("mv", "/vol/a", "$t/moved") == 0 && -f "$t/moved" && !-e "/vol/a" ? "moved" : "failed"), "\n";
fresh();
opendir(my $dh, "/vol") or die; print "in /vol: ", join(" ", sort grep { !/^\.\.?$/ } readdir($dh)), "\n";
