# The path-semantics probe of integration/test_run_paths.py: one line per call ("NAME: ok" or
# "NAME: errno N"), then the tree it left. Run by perl (perl-base is in every Debian image) under
# each engine; runc (the kernel, unchanged paths) is the reference.
use strict;
use warnings;
use Fcntl;
my $t = "/tmp/hpcbox-paths-probe";
sub r { my ($name, $ok) = @_; print "$name: ", ($ok ? "ok" : "errno " . ($! + 0)), "\n"; }
sub mk { open(my $h, ">", $_[0]) or die "$_[0]: $!"; close $h; }
mkdir $t or die "$t: $!";
chdir $t or die "chdir $t: $!";
mkdir $_ or die "$_: $!" for qw(d1 d2 d2/sub d3 d4 d5);
mk("f"); mk("g");
symlink("d2", "ld") or die; symlink("f", "lf") or die; symlink("$t/d3", "labs") or die;
symlink("nowhere", "dang") or die;
r("rmdir d1/.", rmdir("d1/."));
r("rmdir abs/d1/.", rmdir("$t/d1/."));
r("rmdir d1/./", rmdir("d1/./"));
r("rmdir d2/sub/..", rmdir("d2/sub/.."));
r("rmdir ld/", rmdir("ld/"));
r("rmdir labs/", rmdir("labs/"));
r("rmdir labs/.", rmdir("labs/."));
r("rmdir d4/", rmdir("d4/"));
r("rmdir /..", rmdir("/.."));
r("rmdir /", rmdir("/"));
r("rmdir .", rmdir("."));
r("unlink f/", unlink("f/"));
r("unlink lf/", unlink("lf/"));
r("unlink ld/", unlink("ld/"));
r("unlink d2/.", unlink("d2/."));
r("unlink /", unlink("/"));
r("mkdir new/", mkdir("new/"));
r("mkdir dang", mkdir("dang"));
r("mkdir dang/", mkdir("dang/"));
r("mkdir d2/..", mkdir("d2/.."));
r("mkdir /", mkdir("/"));
r("mkdir /..", mkdir("/.."));
r("rename f/ h", rename("f/", "h"));
r("rename ld/ x", rename("ld/", "x"));
r("rename d5/. x", rename("d5/.", "x"));
r("rename g d5/..", rename("g", "d5/.."));
r("rename / x", rename("/", "x"));
r("rename labs labs2", rename("labs", "labs2"));
r("symlink x d1/.", symlink("x", "d1/."));
r("symlink x lf", symlink("x", "lf"));
r("link f d2/", link("f", "d2/"));
r("link f d2/sub/.", link("f", "d2/sub/."));
my $h;
r("open f/", open($h, "<", "f/"));
r("open f/.", open($h, "<", "f/."));
r("open d2/sub/..", open($h, "<", "d2/sub/.."));
r("creat-excl dang", sysopen($h, "dang", O_CREAT | O_EXCL | O_WRONLY));
r("creat-excl ld/", sysopen($h, "ld/", O_CREAT | O_EXCL | O_WRONLY));
r("creat d2/.", sysopen($h, "d2/.", O_CREAT | O_WRONLY));
r("creat newfile/", sysopen($h, "newfile/", O_CREAT | O_WRONLY));
r("stat lf/", stat("lf/"));
r("lstat ld/ is a directory", (lstat("ld/"))[2] && -d _);
r("stat /.. is /", (stat("/.."))[1] == (stat("/"))[1]);
r("chdir /..", chdir("/.."));
opendir(my $dh, ".") or die; my @up = sort grep { !/^\.\.?$/ } readdir($dh); closedir $dh;
opendir($dh, "/") or die; my @root = sort grep { !/^\.\.?$/ } readdir($dh); closedir $dh;
r("ls /.. is ls /", "@up" eq "@root");
sub walk {
    my ($dir) = @_;
    opendir(my $d, $dir) or return;
    for my $n (sort grep { !/^\.\.?$/ } readdir($d)) {
        my $p = "$dir/$n";
        my $kind = -l $p ? "link " . readlink($p) : -d $p ? "dir" : "file";
        print "tree $p $kind\n";
        walk($p) if -d $p && !-l $p;
    }
    closedir $d;
}
walk($t);
