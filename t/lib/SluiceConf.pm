# SluiceConf - configuration directories for tests of `sluice check` and
# `sluice conf`, which need no running server.
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use SluiceConf qw(conf_dir run_sluice slurp);
#   my $top = conf_dir(main => "...", master => "...");   # $top/conf/*.cf
#   my ($rc, $out, $err) = run_sluice($top, 'check');
#
# What it promises: each conf_dir() is a fresh temporary directory (removed
# at exit) holding conf/main.cf and conf/master.cf with exactly the text
# given (master.cf defaults to one clean listener; main => undef or
# master => undef leaves that file out); run_sluice() runs build/bin/sluice
# from that directory as `sluice -c conf ARGS`, so messages name the files
# as conf/main.cf and conf/master.cf, and returns the exit status, stdout
# and stderr.
package SluiceConf;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);

our @EXPORT_OK = qw(conf_dir run_sluice slurp spew $SLUICE $CLEAN_MAIN);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $SLUICE = $ENV{SLUICE_BIN} || "$ROOT/build/bin/sluice";

# The smallest main.cf that `sluice check` finds clean here: the queue in
# the temp dir, and (when run as root) an unprivileged mail_owner that
# exists on every Debian system.
our $CLEAN_MAIN = "queue_directory = ../spool\nmail_owner = nobody\n";

my $CLEAN_MASTER = "127.0.0.1:2525 inet - - - - - smtpd\n";

sub spew {
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh or die "$path: $!";
}

sub slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return undef;
	local $/;
	my $text = <$fh>;
	return $text;
}

sub conf_dir {
	my (%files) = @_;
	my $top = tempdir('sluice-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	mkdir "$top/conf" or die "$top/conf: $!";
	$files{main} = $CLEAN_MAIN unless exists $files{main};
	$files{master} = $CLEAN_MASTER unless exists $files{master};
	for my $f (qw(main master)) {
		spew("$top/conf/$f.cf", $files{$f}) if defined $files{$f};
	}
	return $top;
}

sub run_sluice {
	my ($top, @args) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		chdir $top or die "$top: $!";
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', "$top/.stdout" or die;
		open STDERR, '>', "$top/.stderr" or die;
		exec $SLUICE, '-c', 'conf', @args;
		exit 127;
	}
	waitpid $pid, 0;
	my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
	return ($rc, slurp("$top/.stdout") // '', slurp("$top/.stderr") // '');
}

1;
